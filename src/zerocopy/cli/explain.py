"""``zerocopy explain SRC DST``: the plan for a probe array of SRC converted to DST."""

from __future__ import annotations

import argparse

import numpy as np

from zerocopy._detect import framework_of
from zerocopy._display import plan_rich
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.adapters.numpy import empty
from zerocopy.cli import args as cli_args
from zerocopy.errors import FrameworkNotInstalledError, InvalidArgumentError, message
from zerocopy.exchange.convert import explain
from zerocopy.registry import FRAMEWORKS, adapter, installed, names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="framework of the probe (numpy, torch, pandas, ...)")
    parser.add_argument("target", help="framework to convert to")
    parser.add_argument("--dtype", default="float32", help=f"one of {', '.join(SHARED_DTYPES)}")
    parser.add_argument("--shape", default="1024", help="e.g. 1024, 64,32 or 3x4")
    parser.add_argument("--order", choices=("C", "F", "T", "step", "reverse"), default="C",
                        help="memory layout of a numpy or torch probe (T: transposed view, step: x[::2])")
    parser.add_argument("--copy", choices=("none", "true", "false"), default="none")


_ORDERS = {"C": "C-contiguous", "F": "Fortran-ordered", "T": "transposed (x.T)",
           "step": "step-sliced (x[::2])", "reverse": "reversed (x[::-1])"}


def probe(source: str, dtype: str, shape: tuple[int, ...], order: str) -> object:
    """A zero-filled probe of ``source`` in the layout ``order`` names. Its buffer starts on
    a 64-byte boundary, as zerocopy.empty's and the frameworks' own allocations do (NumPy's
    plain 16-byte aligned arrays made JAX's alignment check refuse by chance)."""
    data = empty(shape, numpy_dtype(dtype), order="F" if order == "F" else "C")
    data[...] = 0
    data = {"T": lambda a: a.T, "step": lambda a: a[::2], "reverse": lambda a: a[::-1]}.get(
        order, lambda a: a)(data)
    if framework_of(data) == source:  # the probe itself (NumPy), in the layout asked for
        return data
    view_of = getattr(adapter(source), "view_of", None)
    if view_of is not None:  # its arrays can be strided views of our buffer (torch)
        try:
            return view_of(data)
        except InvalidArgumentError as exc:  # a layout it has no view for (torch: reversed)
            raise InvalidArgumentError(f"--order {order}: {exc}") from exc
    if order != "C":
        raise InvalidArgumentError(message(
            f"--order {order}: a {source} probe cannot be {_ORDERS[order]}",
            got=f"{source}, whose objects hold their data compact in memory of their own",
            hint=f"drop --order for {source}, or take a {' or '.join(_views_over(data))} "
                 f"source to see how a {_ORDERS[order]} view converts"))
    # Every other framework's make() copies into memory of its own, laid out as it chooses
    # (pandas, Polars and Arrow keep our aligned buffer).
    return adapter(source).make(data)


def _views_over(data: np.ndarray) -> list[str]:
    """Frameworks whose probe is built over our 64-byte aligned buffer in the layout --order
    asks for: the probe's own (NumPy) and those whose adapter has ``view_of`` (torch). The
    others hold their data compact in memory of their own: only C has an object of theirs."""
    own = framework_of(data)
    return [*([own] if own else []), *(n for n in names() if n != own and hasattr(adapter(n), "view_of"))]


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
