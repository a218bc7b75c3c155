"""``zerocopy bench exchange``: per-call time of ``zerocopy.to`` against the best native
one-liner of each ordered pair, at 1 KiB and a large size, and whether each copied.

Sources are allocated by each framework itself (as users have them, so NumPy's are
16-byte aligned). Native one-liners are the fastest ones measured in
../shared/reference/cpu-anchors-2026-11-26.md. Both run side by side in one process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import zerocopy
from zerocopy._detect import framework_of
from zerocopy.bench import exchange_gpu
from zerocopy.bench._timing import machine, paired_per_call_seconds, per_call_seconds
from zerocopy.cli import args as cli_args
from zerocopy.errors import InvalidArgumentError, message
from zerocopy.exchange import dlpack
from zerocopy.exchange.dlpack import backend as dlpack_backend
from zerocopy.registry import adapter, names

# The frameworks of the main environment whose objects live in host memory (the registry
# says which); each pair needs its native one-liner in _native() below.
CPU = names(memory=("host", "both"), main_env=True)


def _native() -> dict[tuple[str, str], tuple[str, Callable[[Any], Any]]]:
    """(source, target) -> (one-liner text, function). Frameworks imported here only.

    The frameworks' own one-liners are the baseline this benchmark measures against, so
    they name their frameworks; they are data (one entry per pair), looked up, never
    branched on."""
    import jax.numpy as jnp
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import tensorflow as tf
    import torch

    tf_from = tf.experimental.dlpack.from_dlpack
    np_of: dict[str, Callable[[Any], Any]] = {
        "numpy": lambda x: x, "torch": lambda x: x.numpy(), "jax": np.asarray,
        "tensorflow": np.asarray, "pyarrow": lambda x: x.to_numpy(),
        "pandas": lambda x: x.to_numpy(), "polars": lambda x: x.to_numpy()}
    table: dict[tuple[str, str], tuple[str, Callable[[Any], Any]]] = {
        ("numpy", "jax"): ("jnp.from_dlpack(x)", jnp.from_dlpack),
        ("numpy", "tensorflow"): ("tf.experimental.dlpack.from_dlpack(x.__dlpack__())",
                                  lambda x: tf_from(x.__dlpack__())),
        ("numpy", "pyarrow"): ("pa.array(x)", pa.array),
        ("torch", "jax"): ("jnp.from_dlpack(x)", jnp.from_dlpack),
        ("torch", "tensorflow"): ("tf...from_dlpack(torch.utils.dlpack.to_dlpack(x))",
                                  lambda x: tf_from(torch.utils.dlpack.to_dlpack(x))),
        ("jax", "torch"): ("torch.as_tensor(np.asarray(x))", lambda x: torch.as_tensor(np.asarray(x))),
        ("jax", "tensorflow"): ("tf...from_dlpack(x.__dlpack__())", lambda x: tf_from(x.__dlpack__())),
        ("tensorflow", "torch"): ("torch.from_dlpack(tf...to_dlpack(x))",
                                  lambda x: torch.from_dlpack(tf.experimental.dlpack.to_dlpack(x))),
        ("tensorflow", "jax"): ("jnp.from_dlpack(x)", jnp.from_dlpack),
        ("pyarrow", "numpy"): ("np.from_dlpack(x)", np.from_dlpack),
        ("pyarrow", "jax"): ("jnp.from_dlpack(x)", jnp.from_dlpack),
        ("pyarrow", "tensorflow"): ("tf...from_dlpack(x.__dlpack__())", lambda x: tf_from(x.__dlpack__())),
        ("pyarrow", "polars"): ("pl.Series(x)", pl.Series),
        ("pandas", "jax"): ("jnp.asarray(x)", jnp.asarray),
        ("pandas", "tensorflow"): ("tf.convert_to_tensor(x)", tf.convert_to_tensor),
        ("pandas", "pyarrow"): ("pa.Array.from_pandas(x)", pa.Array.from_pandas),
        ("pandas", "polars"): ("pl.from_pandas(x)", pl.from_pandas),
        ("polars", "jax"): ("jnp.asarray(x.to_numpy())", lambda x: jnp.asarray(x.to_numpy())),
        ("polars", "tensorflow"): ("tf.convert_to_tensor(x)", tf.convert_to_tensor),
        ("polars", "pyarrow"): ("x.to_arrow()", lambda x: x.to_arrow()),
    }
    via_numpy: dict[str, tuple[str, Callable[[Any], Any]]] = {"numpy": ("{}", lambda a: a),
                 "torch": ("torch.from_numpy({})", torch.from_numpy),
                 "pandas": ("pd.Series({}, copy=False)", lambda a: pd.Series(a, copy=False)),
                 "polars": ("pl.Series({})", pl.Series),
                 "pyarrow": ("pa.array({})", pa.array)}
    texts = {"numpy": "x", "torch": "x.numpy()", "jax": "np.asarray(x)", "tensorflow": "np.asarray(x)",
             "pyarrow": "x.to_numpy()", "pandas": "x.to_numpy()", "polars": "x.to_numpy()"}
    for source, target in itertools.permutations(CPU, 2):
        if (source, target) not in table and target in via_numpy:
            text, make = via_numpy[target]
            table[(source, target)] = (text.format(texts[source]), partial(_via, np_of[source], make))
    return table


def _via(to_numpy: Callable[[Any], Any], make: Callable[[Any], Any], x: Any) -> Any:
    """The frameworks' own two-step hand-off: ``x`` to NumPy, then NumPy to the target."""
    return make(to_numpy(x))


def _source(name: str, n: int) -> Any:
    values = np.random.default_rng(0).random(n, dtype=np.float32)
    if framework_of(values) == name:  # NumPy: the values themselves, as NumPy allocated them
        return values
    return adapter(name).make(values)


def _ready(result: Any) -> Any:
    """JAX copies asynchronously: a call is done when its result is ready."""
    wait = getattr(result, "block_until_ready", None)
    if wait is not None:
        wait()
    return result


def _ours(x: Any, target: str) -> Any:
    return _ready(zerocopy.to(x, target))


def _native_ready(fn: Callable[[Any], Any], x: Any) -> Any:
    return _ready(fn(x))


def _pointer(obj: Any) -> int:
    try:
        return zerocopy.inspect(obj).ptr
    except Exception:
        return -1


def run(sizes: list[int], pairs: list[tuple[str, str]],
        step: Callable[..., None] | None = None, *, quick: bool = False,
        pure_python: bool = False) -> list[dict[str, Any]]:
    """One row per (size, pair); ``step(label)`` after each (the CLI's progress bar).
    ``quick``: a tenth of the timing budget and three samples per call (rougher medians)."""
    timing: dict[str, Any] = {"budget": 0.005, "samples": 3} if quick else {}
    if step is not None:
        step("importing the frameworks", advance=0)
    native = _native()
    rows = []
    for nbytes in sizes:
        needed = {source for source, _ in pairs}
        sources = {name: _source(name, nbytes // 4) for name in CPU if name in needed}
        for source_name, target in pairs:
            x = sources[source_name]
            text, fn = native[(source_name, target)]
            row: dict[str, Any] = {"pair": f"{source_name}->{target}", "bytes": nbytes,
                                   "native": text}
            ours = zerocopy.to(x, target)
            row["ours_copies"] = zerocopy.explain(x, target).copies
            try:
                result = fn(x)
                row["native_copies"] = _pointer(result) != _pointer(x)
            except Exception as exc:
                row["native_error"] = f"{type(exc).__name__}: {str(exc)[:80]}"
            try:  # a call that fails on a later repeat is the row's error, not the run's end
                if "native_error" in row:
                    row["ours_s"] = per_call_seconds(partial(_ours, x, target), **timing)
                else:  # side by side: their samples alternate
                    row["ours_s"], row["native_s"] = paired_per_call_seconds(
                        partial(_ours, x, target), partial(_native_ready, fn, x), **timing)
            except Exception as exc:
                row["timing_error"] = f"{type(exc).__name__}: {str(exc)[:80]}"
            if pure_python:  # the same calls with DLPack capsules built by ctypes, not C
                with dlpack.pure_python():
                    row["ours_pure_python_s"] = per_call_seconds(partial(_ours, x, target), **timing)
            del ours
            rows.append(row)
            if step is not None:
                step(f"{row['pair']} {_size(nbytes)}")
    return rows


def _size(nbytes: int) -> str:
    return f"{nbytes // 1024} KiB" if nbytes < 1 << 20 else f"{nbytes >> 20} MiB"


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.1f} ms"


def _delta(row: dict[str, Any]) -> str:
    """ours - native, or why a side has no time."""
    ours, native = row.get("ours_s"), row.get("native_s")
    if ours is not None and native is not None:
        return f"{(ours - native) * 1e6:+.1f} us"
    return row.get("timing_error") or row.get("native_error", "")


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| pair | size | ours | copies | native one-liner | native | copies | ours - native |",
             "|---|---|---|---|---|---|---|---|"]
    if rows and "ours_pure_python_s" in rows[0]:
        lines = [lines[0] + " ours, pure-Python DLPack |", lines[1] + "---|"]
    for r in rows:
        size = _size(r["bytes"])
        native = r.get("native_s")
        delta = _delta(r)
        if "ours_pure_python_s" in r:  # --pure-python: the ctypes DLPack path, last column
            delta += f" | {_fmt(r['ours_pure_python_s'])}"
        ours = _fmt(r.get("ours_s"))
        lines.append(f"| {r['pair']} | {size} | {ours} | {'C' if r['ours_copies'] else 'Z'} | "
                     f"`{r['native']}` | {_fmt(native)} | "
                     f"{'-' if native is None else ('C' if r['native_copies'] else 'Z')} | {delta} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    both = [r for r in rows if r.get("native_s") is not None and r.get("ours_s") is not None
            and not r["ours_copies"] and not r["native_copies"]]
    over = sorted((r["ours_s"] - r["native_s"]) * 1e6 for r in both)
    saved = [r for r in rows if r.get("native_copies") and not r["ours_copies"]]
    worse = [r for r in rows if r["ours_copies"] and r.get("native_copies") is False]
    text = [f"machine: {machine()}"]
    if over:
        text.append(f"zero-copy on both sides: {len(both)} cells; ours - native median "
                    f"{over[len(over) // 2]:+.1f} us, max {over[-1]:+.1f} us")
    if over and "ours_pure_python_s" in both[0]:
        pure = sorted((r["ours_pure_python_s"] - r["native_s"]) * 1e6 for r in both)
        text.append(f"  (DLPack: {dlpack_backend()}); on the pure-Python DLPack path: "
                    f"median {pure[len(pure) // 2]:+.1f} us, max {pure[-1]:+.1f} us")
    text.append(f"native copies but zerocopy shares: {len(saved)} cells "
                f"({', '.join(sorted({r['pair'] for r in saved}))})")
    text.append(f"zerocopy copies but native shares: {len(worse)} cells "
                f"({', '.join(sorted({r['pair'] for r in worse})) or 'none'})")
    return "\n".join(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="1KiB,256MiB",
                        help="comma-separated sizes: bytes or with a unit (1024, 64KiB, 1MB, 256MiB)")
    parser.add_argument("--pairs", default="all", help="e.g. numpy->torch,pandas->jax")
    parser.add_argument("--quick", action="store_true",
                        help="1 KiB and 1 MiB, short timing loops (rough figures in seconds, "
                             "not a minute)")
    parser.add_argument("--format", choices=("table", "markdown"), default=None,
                        help="a table with the summary first, or markdown for notes "
                             "(default: table on a terminal, markdown in a pipe or a log)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--gpu", action="store_true", help="GPU pairs (on a CUDA machine)")
    parser.add_argument("--pure-python", action="store_true",
                        help="also time ours with DLPack capsules built in Python (ctypes), not by the "
                             "C extension: one more column, side by side")


def _pairs(text: str) -> list[tuple[str, str]]:
    if text == "all":
        return list(itertools.permutations(CPU, 2))
    found = []
    for part in text.split(","):
        source, arrow, target = part.strip().partition("->")
        if not arrow or source not in CPU or target not in CPU or source == target:
            raise InvalidArgumentError(message(
                "--pairs: not a pair of two different CPU frameworks", got=repr(part),
                expected=f"SRC->DST with names from {', '.join(CPU)}",
                hint="e.g. --pairs 'numpy->torch,pandas->jax' (quoted: > is a shell redirection)"))
        found.append((source, target))
    return found


def main(args: argparse.Namespace) -> int:
    if args.gpu:
        return exchange_gpu.main(args)
    from zerocopy.cli.console import progress

    sizes = [1024, 1 << 20] if args.quick else cli_args.sizes(args.sizes)
    pairs = _pairs(args.pairs)
    with warnings.catch_warnings(), progress(len(sizes) * len(pairs), "bench exchange") as step:
        warnings.simplefilter("ignore")  # pyarrow's legacy-capsule DeprecationWarning, etc.
        rows = run(sizes, pairs, step, quick=args.quick, pure_python=args.pure_python)
    if (args.format or ("table" if sys.stdout.isatty() else "markdown")) == "markdown":
        print(summary(rows))
        print()
        print(render(rows))
    else:
        _show(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)
    return 0


def _show(rows: list[dict[str, Any]]) -> None:
    from zerocopy.cli.console import out, table

    console = out()
    for i, line in enumerate(summary(rows).splitlines()):
        console.print(line, style="bold" if i else "dim", markup=False)
    body = []
    for r in rows:
        native = r.get("native_s")
        body.append((r["pair"], _size(r["bytes"]), _fmt(r.get("ours_s")), "C" if r["ours_copies"] else "Z",
                     r["native"], _fmt(native),
                     "-" if native is None else ("C" if r["native_copies"] else "Z"), _delta(r)))
    from zerocopy.cli.console import status_style

    console.print()
    console.print(table(("pair", "size", "ours", "", "native one-liner", "native", "", "ours - native"),
                        body, styles={3: status_style, 6: status_style}))
