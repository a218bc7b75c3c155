"""Reusable edge checks: small functions of (Info, Options) -> Refusal | None.

Framework modules compose them (``all_of``) into the ``check`` of their edges.
"""

from __future__ import annotations

from collections.abc import Callable

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.errors import DeviceError, NullValuesError, UnsupportedDtypeError
from zerocopy.exchange.edges import Check, Options, Refusal
from zerocopy.exchange.info import Info

__all__ = [
    "aligned",
    "all_of",
    "dtype_in",
    "layouts",
    "max_ndim",
    "no_nulls",
    "on_cpu",
    "one_dtype",
    "writable",
    "write_guard",
]


def all_of(*checks: Check) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        for one in checks:
            refusal = one(info, options)
            if refusal is not None:
                return refusal
        return None

    return check


def dtype_in(framework: str, dtypes: Callable[[], frozenset[str]], hint: str = "") -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if info.dtype is None or info.dtype in dtypes():
            return None
        return Refusal(f"{framework} has no {info.dtype} dtype",
                       hint or f"cast explicitly first (zerocopy never changes a dtype silently); "
                               f"{framework} holds {', '.join(sorted(dtypes()))}",
                       fixable=False, error=UnsupportedDtypeError)

    return check


def layouts(framework: str, allowed: frozenset[str], what: str) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if info.layout in allowed or (info.size <= 1 and info.layout != "negative"):
            return None
        return Refusal(f"{framework} {what} (this one is {info.layout})",
                       "make the array contiguous first, or let zerocopy copy (copy=None)")

    return check


def aligned(framework: str, alignment: int) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if info.size == 0 and info.extra.get("copied") != "numpy":
            # Empty data has no buffer of its own: exporters hand out whatever pointer they
            # like (0, a shared sentinel), so its alignment cannot be known before the hop;
            # only zerocopy's own NumPy copies (zerocopy.empty) are aligned even when empty.
            return Refusal(f"{framework} shares only {alignment}-byte aligned buffers and empty "
                           "data has no buffer whose alignment could be known",
                           "nothing to share: let zerocopy make the empty array (copy=None)")
        if info.ptr % alignment == 0:
            return None
        return Refusal(
            f"{framework} shares only {alignment}-byte aligned buffers; this one starts "
            f"{info.ptr % alignment} bytes past a boundary",
            "allocate with zerocopy.empty(...) or zerocopy.aligned(x), which every framework can share")

    return check


def writable(framework: str, why: str) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if not info.readonly:
            return None
        return Refusal(f"the source is read-only and {framework} {why}",
                       "use a writable source, or let zerocopy copy (copy=None)")

    return check


def write_guard(framework: str) -> Check:
    """For targets without a read-only flag (torch): a source whose owner forbids writes
    (``extra["write_guard"]`` says why: pandas copy-on-write, Arrow and Polars buffers,
    read-only NumPy arrays) is shared only when the caller asked ``copy=False``; under
    ``copy=None`` the planner copies instead. JAX and TensorFlow arrays are immutable only
    by their API (their memory is the framework's own and writable) and set no guard: they
    are shared with a caveat, as torch.from_dlpack shares them."""
    def check(info: Info, options: Options) -> Refusal | None:
        why = info.extra.get("write_guard") if info.readonly and info.extra else None
        if why is None or options.copy is False:
            return None
        return Refusal(f"{framework} tensors cannot be read-only and {why}",
                       "pass copy=False to share anyway: writes through the result then change "
                       "the source and every object sharing its memory")

    return check


def no_nulls(framework: str) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if not info.nulls:
            return None
        return Refusal(f"the data has {info.nulls} nulls and {framework} has no null mask",
                       "fill them first (e.g. polars fill_null / pandas fillna / pyarrow "
                       "pc.fill_null), or keep the data in a table framework",
                       fixable=False, error=NullValuesError)

    return check


def on_cpu(framework: str) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if info.device[0] == "cpu":
            return None
        return Refusal(f"{framework} holds host memory and the data is on {info.device[0]}:{info.device[1]}",
                       "pass device='cpu' to copy it to the host on purpose",
                       fixable=False, error=DeviceError)

    return check


def max_ndim(framework: str, ndim: int) -> Check:
    def check(info: Info, options: Options) -> Refusal | None:
        if len(info.shape) <= ndim:
            return None
        return Refusal(f"{framework} takes at most {ndim}-D data, this is {len(info.shape)}-D",
                       "reshape first, or pick a tensor framework", fixable=False)

    return check


def one_dtype(info: Info, options: Options) -> Refusal | None:
    """A table becomes one tensor only if all its columns share one numeric dtype:
    anything else would be a silent cast."""
    if info.dtype in SHARED_DTYPES and (len(info.shape) < 2 or info.shape[1] > 0):
        return None
    what = info.dtype or "mixed dtypes"
    if len(info.shape) == 2 and not info.shape[1]:
        what = "no columns"
    return Refusal(f"a tensor needs columns of one numeric dtype; this table has {what}",
                   "select (and cast) the numeric columns first", fixable=False,
                   error=UnsupportedDtypeError)
