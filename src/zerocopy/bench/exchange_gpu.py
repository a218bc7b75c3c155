"""``zerocopy bench exchange --gpu``: per-call time of ``zerocopy.to`` against the native
one-liner of every GPU pair (CuPy, torch CUDA, JAX GPU, Numba CUDA) at 1 KiB and 1 GiB,
whether each copied (device pointer kept or not), and the ratio ours / native.

Native one-liners are the ones in ../shared/reference/gpu-anchors-2026-11-26.txt. Both
run side by side in one process, on the default streams, after a device sync.
"""

from __future__ import annotations

import argparse
import itertools
import json
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import zerocopy
from zerocopy.bench._timing import machine, paired_per_call_seconds, per_call_seconds
from zerocopy.cli import args as cli_args
from zerocopy.registry import adapter, installed

# The frameworks' own calls are this benchmark's baseline, so their names live here, as
# data: one function per framework returns its own calls, importing it when called.
GPU = ("cupy", "torch", "jax", "numba")
SIZES = (1024, 1 << 30)

OneLiner = tuple[str, Callable[[Any], Any]]  # (the text shown, the call timed)


def _available() -> list[str]:
    return [n for n in GPU if installed(n)]  # find_spec of the record's import_name


def _cupy_calls() -> tuple[OneLiner, dict[tuple[str, str], OneLiner]]:
    import cupy

    return ("cupy.from_dlpack(x)", cupy.from_dlpack), {("numba", "cupy"): ("cupy.asarray(x)", cupy.asarray)}


def _torch_calls() -> tuple[OneLiner, dict[tuple[str, str], OneLiner]]:
    import torch

    return ("torch.from_dlpack(x)", torch.from_dlpack), {
        ("numba", "torch"): ("torch.as_tensor(x, device='cuda')",
                             lambda x: torch.as_tensor(x, device="cuda"))}


def _jax_calls() -> tuple[OneLiner, dict[tuple[str, str], OneLiner]]:
    import jax.numpy as jnp

    return ("jnp.from_dlpack(x)", jnp.from_dlpack), {}


def _numba_calls() -> tuple[OneLiner, dict[tuple[str, str], OneLiner]]:
    import numba.cuda

    return ("numba.cuda.as_cuda_array(x)", numba.cuda.as_cuda_array), {}


# target -> (its import of any DLPack/CAI producer, the pairs into it that have a better one)
_NATIVE: dict[str, Callable[[], tuple[OneLiner, dict[tuple[str, str], OneLiner]]]] = {
    "cupy": _cupy_calls, "torch": _torch_calls, "jax": _jax_calls, "numba": _numba_calls}


def _native(names: list[str]) -> dict[tuple[str, str], OneLiner]:
    table: dict[tuple[str, str], OneLiner] = {}
    into: dict[str, OneLiner] = {}
    for name in [n for n in _NATIVE if n in names]:  # the table's order: the import order
        into[name], pairs = _NATIVE[name]()
        table.update(pairs)
    for source, target in itertools.permutations(names, 2):
        if (source, target) not in table and target in into:
            table[(source, target)] = into[target]
    return table


def _cupy_arange(n: int) -> Any:
    import cupy

    return cupy.arange(n, dtype=cupy.float32)


def _torch_arange(n: int) -> Any:
    import torch

    return torch.arange(n, dtype=torch.float32, device="cuda")


def _jax_arange(n: int) -> Any:
    import jax.numpy as jnp

    return jnp.arange(n, dtype=jnp.float32).block_until_ready()


# source -> its own device arange; the others are their adapter's make() of zeros
_SOURCES: dict[str, Callable[[int], Any]] = {"cupy": _cupy_arange, "torch": _torch_arange, "jax": _jax_arange}


def _source(name: str, nbytes: int) -> Any:
    n = nbytes // 4
    own = _SOURCES.get(name)
    if own is not None:
        return own(n)
    return adapter(name).make(np.zeros(n, dtype=np.float32))


def _pointer(obj: Any) -> int:
    try:
        return zerocopy.inspect(obj).ptr
    except Exception:
        return -1


def _sync() -> None:
    import cupy

    cupy.cuda.runtime.deviceSynchronize()


def run(sizes: list[int], pairs: list[tuple[str, str]],
        step: Callable[..., None] | None = None) -> list[dict[str, Any]]:
    """One row per (size, pair); ``step(label)`` after each (the CLI's progress bar)."""
    names = sorted({n for p in pairs for n in p})
    native = _native(names)
    rows = []
    for nbytes in sizes:
        sources = {name: _source(name, nbytes) for name in names}
        _sync()
        for source_name, target in pairs:
            x = sources[source_name]
            text, fn = native[(source_name, target)]
            row: dict[str, Any] = {"pair": f"{source_name}->{target}", "bytes": nbytes, "native": text}
            try:
                plan = zerocopy.explain(x, target)
                row["route"] = " > ".join(plan.protocols)
                ours = zerocopy.to(x, target)
                row["ours_copies"] = plan.copies or _pointer(ours) != _pointer(x)
                del ours
            except Exception as exc:
                row["ours_error"] = f"{type(exc).__name__}: {str(exc)[:100]}"
            try:
                result = fn(x)
                row["native_copies"] = _pointer(result) != _pointer(x)
                del result
            except Exception as exc:
                row["native_error"] = f"{type(exc).__name__}: {str(exc)[:100]}"
            _time(row, partial(zerocopy.to, x, target), partial(fn, x))
            _sync()
            rows.append(row)
            if step is not None:
                step(f"{row['pair']} {nbytes >> 20} MiB" if nbytes >= 1 << 20 else row["pair"])
        del sources
    return rows


def _time(row: dict[str, Any], ours: Callable[[], Any], native: Callable[[], Any]) -> None:
    """Both sides' per-call times, side by side (samples in turn, the device idle before
    each) where both ran; a call that fails on a later repeat is the row's error."""
    try:
        if "ours_error" not in row and "native_error" not in row:
            row["ours_s"], row["native_s"] = paired_per_call_seconds(ours, native, between=_sync)
        elif "ours_error" not in row:
            row["ours_s"] = per_call_seconds(ours)
        elif "native_error" not in row:
            row["native_s"] = per_call_seconds(native)
    except Exception as exc:
        row["timing_error"] = f"{type(exc).__name__}: {str(exc)[:100]}"


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| pair | size | route | ours | copies | native one-liner | native | copies | ours / native |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['bytes'] // 1024} KiB" if r["bytes"] < 1 << 20 else f"{r['bytes'] >> 20} MiB"
        ours, native = r.get("ours_s"), r.get("native_s")
        ratio = (f"{ours / native:.2f}" if ours is not None and native is not None
                 else r.get("ours_error") or r.get("native_error") or r.get("timing_error", ""))
        def flag(key: str, ok: bool, r: dict[str, Any] = r) -> str:
            return "-" if not ok else ("C" if r[key] else "Z")

        lines.append(f"| {r['pair']} | {size} | {r.get('route', '')} | {_fmt(ours)} | "
                     f"{flag('ours_copies', ours is not None)} | `{r['native']}` | {_fmt(native)} | "
                     f"{flag('native_copies', native is not None)} | {ratio} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    both = [r for r in rows if r.get("ours_s") and r.get("native_s")]
    ratios = sorted(r["ours_s"] / r["native_s"] for r in both)
    slower = [f"{r['pair']}@{r['bytes']}" for r in both if r["ours_s"] > r["native_s"] * 1.05]
    copies = [f"{r['pair']}@{r['bytes']}" for r in rows if r.get("ours_copies")]
    text = [f"machine: {machine()}"]
    if ratios:
        median = ratios[len(ratios) // 2]
        text.append(f"pairs timed on both sides: {len(both)}; ours / native median {median:.2f}, "
                    f"min {ratios[0]:.2f}, max {ratios[-1]:.2f}")
    text.append(f"ours more than 5% slower than native: {', '.join(slower) or 'none'}")
    text.append(f"ours copies: {', '.join(copies) or 'none'}")
    errors = [f"{r['pair']}: {r.get('ours_error') or r['timing_error']}" for r in rows
              if r.get("ours_error") or r.get("timing_error")]
    if errors:
        text.append("errors (ours): " + "; ".join(errors))
    return "\n".join(text)


def main(args: argparse.Namespace) -> int:
    names = _available()
    sizes = list(SIZES) if getattr(args, "sizes", "") in ("", "1KiB,256MiB", None) else (
        cli_args.sizes(args.sizes))
    pairs = (list(itertools.permutations(names, 2)) if getattr(args, "pairs", "all") == "all"
             else [tuple(p.split("->")) for p in args.pairs.split(",")])
    from zerocopy.cli.console import progress

    with warnings.catch_warnings(), progress(len(sizes) * len(pairs), "GPU bench exchange") as step:
        warnings.simplefilter("ignore")
        rows = run(sizes, pairs, step)
    print(render(rows))
    print()
    print(summary(rows))
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)
    return 0
