"""``zerocopy explain SRC DST``: the plan for a probe array of SRC converted to DST."""

from __future__ import annotations

import argparse

import numpy as np

from zerocopy._dtypes import numpy_dtype
from zerocopy.adapters import adapter, resolve
from zerocopy.exchange.convert import explain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="framework of the probe (numpy, torch, pandas, ...)")
    parser.add_argument("target", help="framework to convert to")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--shape", default="1024", help="e.g. 1024 or 64,32")
    parser.add_argument("--order", choices=("C", "F", "T", "step", "reverse"), default="C",
                        help="memory layout of the probe (T: transposed view, step: x[::2])")
    parser.add_argument("--copy", choices=("none", "true", "false"), default="none")


def probe(source: str, dtype: str, shape: tuple[int, ...], order: str) -> object:
    data = np.zeros(shape, dtype=numpy_dtype(dtype), order="F" if order == "F" else "C")
    data = {"T": lambda a: a.T, "step": lambda a: a[::2], "reverse": lambda a: a[::-1]}.get(
        order, lambda a: a)(data)
    if source == "numpy":
        return data
    return adapter(source).make(np.ascontiguousarray(data) if source != "torch" else data)


def main(args: argparse.Namespace) -> int:
    shape = tuple(int(s) for s in args.shape.split(",") if s)
    obj = probe(resolve(args.source), args.dtype, shape, args.order)
    copy = {"none": None, "true": True, "false": False}[args.copy]
    print(explain(obj, args.target, copy=copy))
    return 0
