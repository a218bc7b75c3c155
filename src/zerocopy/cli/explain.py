"""``zerocopy explain SRC DST``: the plan for a probe array of SRC converted to DST."""

from __future__ import annotations

import argparse

import numpy as np

from zerocopy._display import plan_rich
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.adapters.numpy import empty
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
                        help="memory layout of a numpy or torch probe (T: transposed view, step: x[::2])")
    parser.add_argument("--copy", choices=("none", "true", "false"), default="none")


# Frameworks whose arrays can be strided views of host memory: their probe is built over
# our 64-byte aligned buffer, in the layout --order asks for. The others hold their data
# compact in memory of their own, so a layout other than C has no object of theirs to show.
_VIEWS_OVER_OUR_BUFFER = ("numpy", "torch")
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
    if source == "numpy":  # the probe itself, in the layout asked for
        return data
    if source == "torch":
        return _torch_over(data)
    if order != "C":
        raise InvalidArgumentError(message(
            f"--order {order}: a {source} probe cannot be {_ORDERS[order]}",
            got=f"{source}, whose objects hold their data compact in memory of their own",
            hint=f"drop --order for {source}, or take a {' or '.join(_VIEWS_OVER_OUR_BUFFER)} "
                 f"source to see how a {_ORDERS[order]} view converts"))
    # Every other framework's make() copies into memory of its own, laid out as it chooses
    # (pandas, Polars and Arrow keep our aligned buffer).
    return adapter(source).make(data)


def _torch_over(data: np.ndarray) -> object:
    """A torch tensor over the probe's own memory, with its strides (torch's allocations are
    64-byte aligned too). torch has no negative strides: a reversed view is no tensor."""
    if any(stride < 0 for stride in data.strides):
        raise InvalidArgumentError(message(
            "--order reverse: torch tensors cannot have negative strides",
            got="torch", hint="torch.flip(x, dims) makes a reversed copy; take a numpy source "
                              "to see how a reversed view converts"))
    return adapter("torch").view_of(data)


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
