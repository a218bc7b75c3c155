"""Tables <-> 2-D tensors.

:func:`stack` turns a table into one ``(N, k)`` tensor. It is free whenever the columns
are one block (``zerocopy.exchange.blocks.one_block``: one allocation, one dtype, a
constant distance; the rule ``zerocopy.to`` follows too) laid out in the order asked for:
F (column-major) for a :class:`ColumnBlock`, a consolidated pandas block or a table built
over an F-order array or a block, C (row-major) for a pandas frame over a C-order array.
Otherwise C order is the columns -> records kernel with ``k`` equal fields, F order one
contiguous copy per column. :func:`unstack` is the way back: free for F-order tensors, the
records -> columns kernel otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zerocopy.errors import LayoutError, NotZeroCopyError, message
from zerocopy.exchange.blocks import is_ordered, one_block
from zerocopy.exchange.convert import checked_copy
from zerocopy.layout import _interop
from zerocopy.layout._layout import check_column_dtype
from zerocopy.layout.block import ColumnBlock
from zerocopy.layout.records import to_columns, to_records

__all__ = ["stack", "unstack"]


def stack(table: object, order: str = "C", dtype: object = None, *, out: object = None,
          to: str | None = None, copy: bool | None = None) -> Any:
    """Table -> 2-D ``(N, k)`` tensor in ``order`` "C" (row-major) or "F" (column-major).

    ``table``: pyarrow Table/RecordBatch, pandas/polars/cuDF DataFrame, ColumnBlock, or a
    mapping name -> 1-D array. ``dtype``: the tensor's type (default: the columns' common
    type, NumPy promotion rules). ``out``: an ``(N, k)`` array to fill. ``to``: framework
    of the result (any target ``zerocopy.to`` takes; default NumPy on CPU, CuPy on GPU).
    ``copy``: None copies only when needed, False raises :class:`NotZeroCopyError` instead
    of copying. Without a copy the result is a view of the columns' block: column-major
    ("F") means each column contiguous and row-major ("C") each row contiguous, whatever
    the distance between them (a sliced block keeps its pitch).
    Nulls, strings and nested columns raise typed errors (see ``zerocopy.errors``).
    """
    copy = checked_copy(copy)
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
                          to=to or (_interop.DEVICE if table.device == "cuda" else _interop.HOST))
    names, cols = _interop.table_columns(table, copy)
    gpu = bool(cols) and not isinstance(cols[0], np.ndarray)
    target = _tensor_dtype(names, cols, dtype)
    framework = to or (_interop.DEVICE if gpu else _interop.HOST)
    if not cols and out is None:  # rows without columns: an (N, 0) tensor keeps N
        empty = np.empty((_interop.table_rows(table), 0), target, order="C" if order == "C" else "F")
        return _interop.result(empty, framework, copy)
    view = None
    if out is None and copy is not True:
        view = one_block(cols)
        if view is not None and view.dtype == target and is_ordered(view, order):
            return _interop.result(view, framework, copy)
    if copy is False:
        raise NotZeroCopyError(message(
            f"the columns do not form one {order}-order tensor in memory, so stack(..., "
            f"order={order!r}) must copy",
            expected=f"columns of one dtype in one block, {_ORDERS[order]}",
            got=_not_a_block(view, target, order) if out is None else "out= (filled by a copy)",
            hint=_STACK_HINTS[order]))
    if order == "C":
        return to_records(dict(zip(names, cols, strict=True)), dtype=target, out=out,
                          structured=False, to=framework)
    return _interop.result(_stack_f(cols, target, out, gpu), framework, copy)


_ORDERS = {"F": "each column contiguous", "C": "each row contiguous"}
# What would work instead, per order asked for (a hint names the calls, not the rule).
_STACK_HINTS = {
    "F": "pass copy=None (one contiguous copy per column); to stack for free, keep the table "
         "in zerocopy.column_block(n_rows, names) and fill its columns, or build it over an "
         "F-order array (pd.DataFrame(np.asfortranarray(x), copy=False))",
    "C": "pass copy=None (the columns -> records kernel); to stack for free, ask for order='F' "
         "of a table kept in zerocopy.column_block(n_rows, names), or build the table over a "
         "C-order array (pd.DataFrame(x, copy=False))",
}


def _not_a_block(view: Any, target: np.dtype, order: str) -> str:
    """What the columns are, where they are not the tensor asked for."""
    if view is None:
        return "columns in separate buffers (or of different dtypes or strides)"
    if view.dtype != target:
        return f"one block of {view.dtype}, where the tensor is {target} (dtype=)"
    other = "F" if order == "C" else "C"
    return f"one block, laid out in {other} order ({_ORDERS[other]})"


def _tensor_dtype(names: list[str], cols: list[Any], dtype: Any) -> np.dtype:
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


def _stack_f(cols: list[Any], dtype: np.dtype, out: object, gpu: bool) -> Any:
    n, k = (int(cols[0].shape[0]) if cols else 0), len(cols)
    if out is None:
        if gpu:
            import cupy

            res = cupy.empty((n, k), dtype, order="F")
        else:
            res = np.empty((n, k), dtype, order="F")
    else:
        # Written in place: a copy of ``out`` would lose the writes, so the hop must share.
        res = _interop.as_device(out, copy=False) if gpu else _interop.as_host(out, copy=False)
        if tuple(res.shape) != (n, k) or np.dtype(res.dtype) != dtype:
            raise LayoutError(message("out= does not fit", expected=f"({n}, {k}) {dtype}",
                                      got=f"{tuple(res.shape)} {res.dtype}"))
    for j, c in enumerate(cols):  # contiguous column copies already run at memcpy speed
        res[:, j] = c
    return res


def unstack(tensor: object, names: Sequence[str] | None = None, *, to: str | None = None,
            copy: bool | None = None) -> Any:
    """2-D ``(N, k)`` tensor -> table (default pyarrow RecordBatch on CPU, cuDF on GPU).

    Free when each column is already contiguous (F order): the table's columns are views
    of the tensor, and a write to one is seen by the other. A C-order tensor is split by
    the records -> columns kernel into one new :class:`ColumnBlock` (``copy=False``
    raises :class:`NotZeroCopyError` instead).
    """
    copy = checked_copy(copy)
    target = to or _DEFAULT_TABLE[_interop.is_gpu(tensor)]
    arr_ndim = getattr(tensor, "ndim", None)
    if arr_ndim != 2:
        raise LayoutError(message("unstack needs a 2-D tensor", expected="shape (N, k)",
                                  got=f"ndim {arr_ndim}"))
    if copy is False:
        return _unstack_views(tensor, names, target)
    return to_columns(tensor, names=names, to=target, copy=copy)


# The default table of unstack: Arrow on the host, cuDF on the device (by memory kind).
_DEFAULT_TABLE = {False: "pyarrow", True: "cudf"}


def _unstack_views(tensor: object, names: Sequence[str] | None, target: str) -> Any:
    try:
        return to_columns(tensor, names=names, to=target, copy=False)
    except NotZeroCopyError as exc:
        raise NotZeroCopyError(message(
            "the tensor's columns are not contiguous, so the table needs a copy",
            expected="an F-order (column-major) tensor", got="C order or strided",
            hint="pass copy=None, or keep such data in a ColumnBlock")) from exc
