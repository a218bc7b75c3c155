"""NumPy: the host hub. Every CPU framework reaches NumPy without a copy, and NumPy speaks
the array interface, the buffer protocol and DLPack."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES, name_of_numpy, numpy_dtype
from zerocopy.errors import (
    InvalidArgumentError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)
from zerocopy.exchange import checks
from zerocopy.exchange.dlpack import DLPackExporter, data_pointer
from zerocopy.exchange.dlpack import to_numpy as dlpack_to_numpy
from zerocopy.exchange.edges import DLPACK, SAME, Edge, Options, moved_info
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "numpy"
IMPORT_NAME = "numpy"
PIP = "numpy"
ALIGNMENT = 64  # what JAX needs to share a host buffer; a cache line elsewhere
PROTOCOLS = {"exports": ("DLPack v1", "array interface", "buffer protocol"),
             "imports": ("DLPack v1", "array interface", "buffer protocol")}


def dtypes() -> frozenset[str]:
    return _DTYPES


_DTYPES = frozenset(SHARED_DTYPES)


def version() -> str:
    return np.__version__


def devices() -> list[str]:
    return ["cpu"]


def pointer(x: np.ndarray) -> int:
    return data_pointer(x)


def dtype_name(dtype: np.dtype) -> str:
    name = name_of_numpy(dtype)
    if name is not None:
        return name
    raise UnsupportedDtypeError(message(
        f"NumPy dtype {dtype} has no counterpart in the other frameworks",
        expected="bool, (u)int8-64, float16/32/64, bfloat16 (ml_dtypes), complex64/128",
        got=str(dtype), hint=_dtype_hint(dtype)))


def _dtype_hint(dtype: np.dtype) -> str:
    if dtype.names is not None:
        return "records: zerocopy.layout.to_columns(x) turns them into columns"
    if dtype.byteorder == ">":
        return "big-endian data: x.astype(x.dtype.newbyteorder('='))"
    if dtype.kind == "O":
        return ("objects cannot be tensors: keep them in pandas, Polars or Arrow; an array of "
                "arrays of different lengths is ragged: np.concatenate(x) flattens it (a copy)")
    if dtype.kind in "US":
        return "strings cannot be tensors; keep them in pandas, Polars or Arrow"
    return "cast explicitly with x.astype(...)"


# A read-only array may be a view of memory nobody may write (a file mapped read-only, an
# Arrow buffer, bytes): targets that cannot mark a result read-only (torch) copy it under
# copy=None instead of handing out a writable view (checks.write_guard).
_READ_ONLY = {"write_guard": "the NumPy array is read-only (flags.writeable is False): its "
                             "memory may be a read-only file mapping, bytes or an Arrow buffer"}


def inspect(x: np.ndarray) -> Info:
    if not isinstance(x, np.ndarray):  # NumPy scalars: no buffer anyone could share
        raise UnsupportedObjectError(message(
            f"A NumPy scalar ({type(x).__name__}) has no buffer to share", expected="an array",
            hint="wrap it: np.asarray(x) (a 0-d array) or np.array([x])"))
    if isinstance(x, np.ma.MaskedArray):
        return _masked_info(x)
    flags = x.flags
    # C-contiguous (the common case) needs no stride walk.
    layout = "C" if flags.c_contiguous and min(x.strides, default=0) >= 0 else None
    readonly = not flags.writeable
    return Info(NAME, x, kind=ARRAY, dtype=dtype_name(x.dtype), shape=x.shape,
                strides=x.strides, itemsize=x.itemsize, pointer=lambda: pointer(x),
                readonly=readonly, layout=layout, extra=_READ_ONLY if readonly else None)


def _masked_info(x: np.ma.MaskedArray) -> Info:
    """A masked array is its data plus nulls: the masked places must never become values."""
    data = x.data
    info = inspect(data)
    info.obj, info.nulls = x, int(np.ma.count_masked(x))
    return info


def fast_key(x: np.ndarray) -> tuple[Any, ...] | None:
    """What decides a route for a C-ordered array, read cheaply (see convert's fast lane)."""
    if type(x) is not np.ndarray:  # masked arrays and other subclasses: the slow lane
        return None
    flags = x.flags
    if not flags.c_contiguous:
        return None
    shape = x.shape
    if len(shape) == 1 and shape[0] > 1:  # C-contiguous with 2+ items: a positive stride
        return (x.dtype, 2, flags.writeable)  # size_class((n,)) without the call
    if min(x.strides, default=0) < 0:
        return None
    return (x.dtype, size_class(shape), flags.writeable)


def fast_pointer(x: np.ndarray) -> int:
    """Where the data of an array with a fast key starts (Info.ptr; the fast lane's
    alignment question)."""
    return pointer(x)


def make(values: np.ndarray) -> np.ndarray:
    return values


def to_host(x: np.ndarray) -> np.ndarray:
    return x


# --------------------------------------------------------------- aligned host memory

def empty(shape: int | tuple[int, ...], dtype: Any = np.float32, *, order: Literal["C", "F"] = "C",
          align: int = ALIGNMENT) -> np.ndarray:
    """An uninitialised array whose data starts on an ``align``-byte boundary.

    NumPy and Polars allocate on 16-byte boundaries; JAX shares only 64-byte aligned host
    buffers and copies the rest. Arrays from here can be shared by every framework.
    """
    shape, dtype = _checked_request(shape, dtype, align)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(max(count, 1) * dtype.itemsize + align, dtype=np.uint8)
    start = (-pointer(raw)) % align
    # A view built straight over the raw buffer: reshaping an empty slice would allocate anew.
    return np.ndarray(shape, dtype=dtype, buffer=raw, offset=start, order=order)


def _checked_request(shape: Any, dtype: Any, align: Any) -> tuple[tuple[int, ...], np.dtype]:
    """``empty``'s arguments, or a typed error: a negative size would otherwise give an
    array over the alignment padding (garbage of a size nobody asked for)."""
    if isinstance(align, bool) or not isinstance(align, int) or align < 1 or align & (align - 1):
        raise InvalidArgumentError(message("align is a power of two in bytes", got=repr(align),
                                           hint="the default, 64, suits every framework"))
    dims = (shape,) if isinstance(shape, int | np.integer) else shape
    if not isinstance(dims, tuple | list) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise InvalidArgumentError(message("shape is a non-negative int or a tuple of them",
                                           got=repr(shape), hint="e.g. empty((rows, 4), 'float32')"))
    try:
        kind = numpy_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise UnsupportedDtypeError(message("not a dtype", got=repr(dtype),
                                            hint="a NumPy dtype or its name, e.g. 'float32'")) from exc
    return tuple(int(d) for d in dims), kind


def columns_to_array(columns: list[Any], rows: int, dtype: Any) -> np.ndarray:
    """One fresh C-order, aligned (rows, k) array from k columns (anything np.copyto takes):
    the copy edges of tables all produce what ``fresh_copy_info`` promises."""
    out = empty((rows, len(columns)), dtype)
    for i, column in enumerate(columns):
        np.copyto(out[:, i], column, casting="no")
    return out


def aligned_copy(x: Any) -> np.ndarray:
    """A fresh C-order, 64-byte aligned, writable copy of an array-like view (no cast)."""
    view = np.asarray(x)
    out = empty(view.shape, view.dtype)
    np.copyto(out, view, casting="no")
    return out


def aligned(x: np.ndarray, *, align: int = ALIGNMENT) -> np.ndarray:
    """``x`` itself when it is C-contiguous and aligned, else an aligned C-order copy."""
    if not isinstance(x, np.ndarray):
        raise UnsupportedObjectError(message(
            "zerocopy.aligned takes a NumPy array", got=f"{type(x).__module__}.{type(x).__qualname__}",
            hint="for other objects, zerocopy.to(x, target) copies into an aligned buffer where the "
                 "target needs one; or build the data in zerocopy.empty(...) from the start"))
    if x.flags.c_contiguous and pointer(x) % align == 0:
        return x
    out = empty(x.shape, x.dtype, align=align)
    np.copyto(out, x, casting="no")
    return out


# --------------------------------------------------------------- edges

def _exporter(x: np.ndarray, options: Options) -> DLPackExporter:
    itemsize = x.itemsize
    return DLPackExporter(x, pointer(x), x.shape, tuple(s // itemsize for s in x.strides),
                          dtype_name(x.dtype), readonly=not x.flags.writeable)


def _export(x: np.ndarray) -> DLPackExporter:
    return _exporter(x, _PLAIN)


_PLAIN = Options()


def _from_dlpack(x: Any, options: Options) -> np.ndarray:
    return np.from_dlpack(x)


def _aligned_copy(x: np.ndarray, options: Options) -> np.ndarray:
    return aligned_copy(x)


def _strides_in_elements(info: Info, options: Options) -> Any:
    strides = info.strides or ()
    if all(s % info.itemsize == 0 for s in strides):
        return None
    return checks.Refusal("the strides are not whole elements (unaligned records)",
                          "copy it (copy=None) or use zerocopy.layout for record data")


def _python_deleter(info: Info, framework: str, kind: str | None) -> Info:
    # NumPy's deleter and ours take the GIL; a consumer that frees tensors without it
    # (MXNet, at interpreter exit) must not get such capsules.
    new = moved_info(info, framework, kind)
    new.extra = {**info.extra, "python_deleter": True}
    return new


def _readonly_caveat(info: Info) -> str | None:
    if info.readonly:
        return ("read-only flag: DLPack legacy capsules cannot carry it; importers that "
                "allow writes (torch) would write into read-only memory")
    return None


EDGES = (
    # NumPy's own exporter is the cheapest, but refuses read-only arrays and bfloat16.
    Edge(NAME, DLPACK, "DLPack (NumPy exporter)", "x  (ndarray.__dlpack__)",
         lambda x, o: x, cost=0.3, project=_python_deleter, fast=lambda info, source: SAME,
         check=checks.all_of(
             checks.writable("NumPy", "refuses to export read-only arrays through DLPack"),
             lambda info, o: checks.Refusal("NumPy's DLPack exporter has no bfloat16")
             if info.dtype == "bfloat16" else None,
             _strides_in_elements)),
    # Ours takes both, and keeps the array alive until the consumer lets go.
    Edge(NAME, DLPACK, "DLPack (zerocopy exporter)", "zerocopy DLPackExporter(x)",
         _exporter, cost=1.0, check=_strides_in_elements, caveat=_readonly_caveat,
         project=_python_deleter, fast=lambda info, source: _export),
    Edge(DLPACK, NAME, "DLPack", "np.from_dlpack(x)", _from_dlpack, cost=0.8,
         fast=lambda info, source: np.from_dlpack,
         check=checks.all_of(checks.on_cpu("NumPy"),
                             lambda info, o: checks.Refusal(
                                 "np.from_dlpack cannot import bfloat16")
                             if info.dtype == "bfloat16" else None)),
    # Ours reads any capsule: bfloat16, and NumPy versions without a versioned importer.
    Edge(DLPACK, NAME, "DLPack (zerocopy importer)", "zerocopy DLPack import (array interface)",
         lambda x, o: dlpack_to_numpy(x), cost=1.0, check=checks.on_cpu("NumPy"),
         fast=lambda info, source: dlpack_to_numpy),
    # The planner's way to fix what sharing cannot: a fresh, aligned, C-order, writable copy.
    Edge(NAME, NAME, "copy", "aligned C-order copy (np.copyto)", _aligned_copy,
         copies=True, cost=1.0),
)
