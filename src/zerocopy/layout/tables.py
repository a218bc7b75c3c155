"""Tables <-> 2-D tensors.

:func:`stack` turns a table into one ``(N, k)`` tensor: in F order it is free whenever the
columns already sit back to back in memory (a :class:`ColumnBlock`, a consolidated
pandas block, a table built over an F-order array); in C order it is the columns ->
records kernel with ``k`` equal fields. :func:`unstack` is the way back: free for F-order
tensors, the records -> columns kernel otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import LayoutError, NotZeroCopyError, message
from . import _interop
from ._layout import check_column_dtype
from .block import ColumnBlock
from .records import to_columns, to_records

__all__ = ["stack", "unstack"]


def stack(table: object, order: str = "C", dtype: object = None, *, out: object = None,
          to: str | None = None, copy: bool | None = None):
    """Table -> 2-D ``(N, k)`` tensor in ``order`` "C" (row-major) or "F" (column-major).

    ``table``: pyarrow Table/RecordBatch, pandas/polars/cuDF DataFrame, ColumnBlock, or a
    mapping name -> 1-D array. ``dtype``: the tensor's type (default: the columns' common
    type, NumPy promotion rules). ``out``: an ``(N, k)`` array to fill. ``to``: framework
    of the result (default NumPy on CPU, CuPy on GPU). ``copy``: None copies only when
    needed, False raises :class:`NotZeroCopyError` instead of copying.
    Nulls, strings and nested columns raise typed errors (see ``zerocopy.errors``).
    """
    if order not in {"C", "F"}:
        raise LayoutError(message("unknown order", expected="'C' or 'F'", got=repr(order)))
    if order == "C" and copy is not False and isinstance(table, ColumnBlock) and table.names:
        # A block's columns and common dtype are fixed: found once, then to_records'
        # plan for the block (a few microseconds a call).
        key = ("stack", dtype if isinstance(dtype, np.dtype) or dtype is None else str(dtype))
        target = table.plans.get(key)
        if target is None:
            target = table.plans[key] = _tensor_dtype(list(table.names), list(table.views()),
                                                      dtype)
        return to_records(table, dtype=target, out=out, structured=False,
                          to=to or ("cupy" if table.device == "cuda" else "numpy"))
    names, cols = _interop.table_columns(table)
    gpu = bool(cols) and not isinstance(cols[0], np.ndarray)
    target = _tensor_dtype(names, cols, dtype)
    framework = to or ("cupy" if gpu else "numpy")
    if not cols and out is None:  # rows without columns: an (N, 0) tensor keeps N
        return _convert(np.empty((_interop.table_rows(table), 0), target, order=order), framework, gpu)
    if order == "F" and out is None and copy is not True:
        view = _adjacent_view(cols, target, gpu)
        if view is not None:
            return _convert(view, framework, gpu)
    if copy is False:
        raise NotZeroCopyError(message(
            f"the columns do not form one {order}-order tensor in memory",
            expected="columns back to back (F order) of one dtype", got=f"order={order!r}",
            hint="allocate tables with zerocopy.layout.column_block to stack them for free"))
    if order == "C":
        return to_records(dict(zip(names, cols, strict=True)), dtype=target, out=out,
                          structured=False, to=framework)
    return _convert(_stack_f(cols, target, out, gpu), framework, gpu)


def _tensor_dtype(names: list[str], cols: list, dtype: object) -> np.dtype:
    for n, c in zip(names, cols, strict=True):
        check_column_dtype(np.dtype(c.dtype), n)
        if c.ndim != 1:
            raise LayoutError(message(
                f"column {n!r} is a fixed-size array column", expected="1-D columns",
                got=f"shape {tuple(c.shape)}", hint="use to_records() to keep it whole"))
    if dtype is not None:
        return check_column_dtype(np.dtype(dtype), "(dtype)")
    if not cols:
        return np.dtype(np.float64)
    return np.result_type(*[np.dtype(c.dtype) for c in cols])


def _adjacent_view(cols: list, dtype: np.dtype, gpu: bool):
    """An F-order view over columns that already lie back to back, or None."""
    if not cols or any(np.dtype(c.dtype) != dtype or not c.flags.c_contiguous for c in cols):
        return None
    n, size = int(cols[0].shape[0]), dtype.itemsize
    ptr = (lambda c: c.data.ptr) if gpu else (lambda c: c.ctypes.data)
    start = ptr(cols[0])
    if n == 0 or any(ptr(c) != start + j * n * size for j, c in enumerate(cols)):
        return None
    if gpu:
        return _gpu_span(cols, start, n, dtype)
    return np.asarray(_Span(cols, start, n, dtype)).T


class _Span:
    """Array interface over back-to-back columns; holding it keeps every column alive.

    The span covers exactly the columns' own bytes (column j ends where j+1 starts), so
    the view never reaches memory that the columns do not own.
    """

    def __init__(self, cols: list, start: int, n: int, dtype: np.dtype) -> None:
        self.columns = cols
        readonly = any(not c.flags.writeable for c in cols)
        self.__array_interface__ = {"shape": (len(cols), n), "typestr": dtype.str,
                                    "data": (start, readonly), "version": 3}


def _gpu_span(cols: list, start: int, n: int, dtype: np.dtype):
    import cupy

    mem = cupy.cuda.UnownedMemory(start, len(cols) * n * dtype.itemsize, cols)
    flat = cupy.ndarray((len(cols), n), dtype, cupy.cuda.MemoryPointer(mem, 0))
    return flat.T


def _stack_f(cols: list, dtype: np.dtype, out: object, gpu: bool):
    n, k = (int(cols[0].shape[0]) if cols else 0), len(cols)
    if out is None:
        if gpu:
            import cupy

            res = cupy.empty((n, k), dtype, order="F")
        else:
            res = np.empty((n, k), dtype, order="F")
    else:
        res = _interop.as_cupy(out) if gpu else _interop.as_numpy(out)
        if tuple(res.shape) != (n, k) or np.dtype(res.dtype) != dtype:
            raise LayoutError(message("out= does not fit", expected=f"({n}, {k}) {dtype}",
                                      got=f"{tuple(res.shape)} {res.dtype}"))
    for j, c in enumerate(cols):  # contiguous column copies already run at memcpy speed
        res[:, j] = c
    return res


def _convert(arr, framework: str, gpu: bool):
    return _interop.from_cupy(arr, framework) if gpu else _interop.from_numpy(arr, framework)


def unstack(tensor: object, names: Sequence[str] | None = None, *, to: str | None = None,
            copy: bool | None = None):
    """2-D ``(N, k)`` tensor -> table (default pyarrow RecordBatch on CPU, cuDF on GPU).

    Free when each column is already contiguous (F order): the table's columns are views
    of the tensor, and a write to one is seen by the other. A C-order tensor is split by
    the records -> columns kernel into one new :class:`ColumnBlock` (``copy=False``
    raises :class:`NotZeroCopyError` instead).
    """
    target = to or ("cudf" if _interop.is_gpu(tensor) else "pyarrow")
    arr_ndim = getattr(tensor, "ndim", None)
    if arr_ndim != 2:
        raise LayoutError(message("unstack needs a 2-D tensor", expected="shape (N, k)",
                                  got=f"ndim {arr_ndim}"))
    if copy is False:
        return _unstack_views(tensor, names, target)
    return to_columns(tensor, names=names, to=target, copy=copy)


def _unstack_views(tensor: object, names, target: str):
    try:
        return to_columns(tensor, names=names, to=target, copy=False)
    except NotZeroCopyError as exc:
        raise NotZeroCopyError(message(
            "the tensor's columns are not contiguous, so the table needs a copy",
            expected="an F-order (column-major) tensor", got="C order or strided",
            hint="pass copy=None, or keep such data in a ColumnBlock")) from exc
