"""``zerocopy explain SRC DST``: the plan for a probe array of SRC converted to DST."""

from __future__ import annotations

import argparse

import numpy as np

from zerocopy._display import plan_rich
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.cli import args as cli_args
from zerocopy.errors import FrameworkNotInstalledError, InvalidArgumentError, message
from zerocopy.exchange.convert import explain
from zerocopy.registry import FRAMEWORKS, adapter, installed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="framework of the probe (numpy, torch, pandas, ...)")
    parser.add_argument("target", help="framework to convert to")
    parser.add_argument("--dtype", default="float32", help=f"one of {', '.join(SHARED_DTYPES)}")
    parser.add_argument("--shape", default="1024", help="e.g. 1024, 64,32 or 3x4")
    parser.add_argument("--order", choices=("C", "F", "T", "step", "reverse"), default="C",
                        help="memory layout of the probe (T: transposed view, step: x[::2])")
    parser.add_argument("--copy", choices=("none", "true", "false"), default="none")


def probe(source: str, dtype: str, shape: tuple[int, ...], order: str) -> object:
    data = np.zeros(shape, dtype=numpy_dtype(dtype), order="F" if order == "F" else "C")
    data = {"T": lambda a: a.T, "step": lambda a: a[::2], "reverse": lambda a: a[::-1]}.get(
        order, lambda a: a)(data)
    if source == "numpy":  # the probe itself, in the layout asked for
        return data
    # Every other framework's make() copies into memory of its own, laid out as it chooses.
    return adapter(source).make(np.ascontiguousarray(data))


def _framework(text: str, role: str) -> str:
    return cli_args.frameworks(text, FRAMEWORKS, option=role, one=True)[0]


def main(args: argparse.Namespace) -> int:
    from zerocopy.cli.console import out

    source, target = _framework(args.source, "SRC"), _framework(args.target, "DST")
    if args.dtype not in SHARED_DTYPES:
        raise InvalidArgumentError(message("--dtype: unknown dtype", got=repr(args.dtype),
                                           expected=", ".join(SHARED_DTYPES)))
    if not installed(source):
        raise FrameworkNotInstalledError(message(
            f"The source {source} is not installed here", hint=f"pip install {adapter(source).PIP}"))
    obj = probe(source, args.dtype, cli_args.shape(args.shape), args.order)
    copy = {"none": None, "true": True, "false": False}[args.copy]
    out().print(plan_rich(explain(obj, target, copy=copy)))
    return 0
