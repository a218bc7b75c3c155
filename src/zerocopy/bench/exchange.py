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
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from zerocopy.bench._timing import machine, per_call_seconds

CPU = ("numpy", "torch", "jax", "tensorflow", "pyarrow", "pandas", "polars")


def _native() -> dict[tuple[str, str], tuple[str, Callable[[Any], Any]]]:
    """(source, target) -> (one-liner text, function). Frameworks imported here only."""
    import jax.numpy as jnp
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import tensorflow as tf
    import torch

    tf_from = tf.experimental.dlpack.from_dlpack
    np_of = {"numpy": lambda x: x, "torch": lambda x: x.numpy(), "jax": np.asarray,
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
    via_numpy = {"numpy": ("{}", lambda a: a),
                 "torch": ("torch.from_numpy({})", torch.from_numpy),
                 "pandas": ("pd.Series({}, copy=False)", lambda a: pd.Series(a, copy=False)),
                 "polars": ("pl.Series({})", pl.Series),
                 "pyarrow": ("pa.array({})", pa.array)}
    texts = {"numpy": "x", "torch": "x.numpy()", "jax": "np.asarray(x)", "tensorflow": "np.asarray(x)",
             "pyarrow": "x.to_numpy()", "pandas": "x.to_numpy()", "polars": "x.to_numpy()"}
    for source, target in itertools.permutations(CPU, 2):
        if (source, target) not in table and target in via_numpy:
            text, make = via_numpy[target]
            table[(source, target)] = (text.format(texts[source]),
                                       lambda x, f=np_of[source], m=make: m(f(x)))
    return table


def _source(name: str, n: int) -> Any:
    values = np.random.default_rng(0).random(n, dtype=np.float32)
    if name == "numpy":
        return values
    from zerocopy.adapters import adapter

    return adapter(name).make(values)


def _ready(result: Any) -> Any:
    """JAX copies asynchronously: a call is done when its result is ready."""
    wait = getattr(result, "block_until_ready", None)
    if wait is not None:
        wait()
    return result


def _pointer(obj: Any) -> int:
    import zerocopy

    try:
        return zerocopy.inspect(obj).ptr
    except Exception:
        return -1


def run(sizes: list[int], pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    import zerocopy

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
            row["ours_s"] = per_call_seconds(lambda x=x, t=target: _ready(zerocopy.to(x, t)))
            try:
                result = fn(x)
                row["native_copies"] = _pointer(result) != _pointer(x)
                row["native_s"] = per_call_seconds(lambda x=x, f=fn: _ready(f(x)))
            except Exception as exc:
                row["native_error"] = f"{type(exc).__name__}: {str(exc)[:80]}"
            del ours
            rows.append(row)
    return rows


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.1f} ms"


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| pair | size | ours | copies | native one-liner | native | copies | ours - native |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['bytes'] // 1024} KiB" if r["bytes"] < 1 << 20 else f"{r['bytes'] >> 20} MiB"
        native = r.get("native_s")
        delta = f"{(r['ours_s'] - native) * 1e6:+.1f} us" if native is not None else r.get("native_error", "")
        lines.append(f"| {r['pair']} | {size} | {_fmt(r['ours_s'])} | {'C' if r['ours_copies'] else 'Z'} | "
                     f"`{r['native']}` | {_fmt(native)} | "
                     f"{'-' if native is None else ('C' if r['native_copies'] else 'Z')} | {delta} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    both = [r for r in rows
            if r.get("native_s") is not None and not r["ours_copies"] and not r["native_copies"]]
    over = sorted((r["ours_s"] - r["native_s"]) * 1e6 for r in both)
    saved = [r for r in rows if r.get("native_copies") and not r["ours_copies"]]
    worse = [r for r in rows if r["ours_copies"] and r.get("native_copies") is False]
    text = [f"machine: {machine()}"]
    if over:
        text.append(f"zero-copy on both sides: {len(both)} cells; ours - native median "
                    f"{over[len(over) // 2]:+.1f} us, max {over[-1]:+.1f} us")
    text.append(f"native copies but zerocopy shares: {len(saved)} cells "
                f"({', '.join(sorted({r['pair'] for r in saved}))})")
    text.append(f"zerocopy copies but native shares: {len(worse)} cells "
                f"({', '.join(sorted({r['pair'] for r in worse})) or 'none'})")
    return "\n".join(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="1024,268435456", help="bytes, comma-separated")
    parser.add_argument("--pairs", default="all", help="e.g. numpy->torch,pandas->jax")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--gpu", action="store_true", help="GPU pairs (on a CUDA machine)")


def main(args: argparse.Namespace) -> int:
    if args.gpu:
        from zerocopy.bench import exchange_gpu

        return exchange_gpu.main(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    pairs = (list(itertools.permutations(CPU, 2)) if args.pairs == "all"
             else [tuple(p.split("->")) for p in args.pairs.split(",")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyarrow's legacy-capsule DeprecationWarning, etc.
        rows = run(sizes, pairs)  # type: ignore[arg-type]
    print(render(rows))
    print()
    print(summary(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)
    return 0
