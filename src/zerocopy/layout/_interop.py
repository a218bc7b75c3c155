"""Every hop between a framework object and the NumPy/CuPy arrays the kernels work on.

The layout engine computes on NumPy (host) and CuPy (device) arrays only. Arrays cross in
and out through ``zerocopy.to``: the same plans, checks, caveats and typed errors as any
conversion, and under the caller's ``copy=False`` the same ``NotZeroCopyError``. Tables
cross through their framework module's ``columns(table, copy=)`` and
``table_from_columns(names, arrays, rows=, kind=, copy=)``. Target names are resolved by
the resolver ``zerocopy.to`` uses (``zerocopy.registry``), so layout accepts exactly its
names (and aliases); a
qualified name picks the table type (``"pyarrow.Table"``; ``"pyarrow"`` is a RecordBatch).
No framework is named here, and none is imported: importing the layout package imports
none of them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zerocopy._detect import framework_of
from zerocopy.errors import NotZeroCopyError, UnsupportedObjectError, message
from zerocopy.exchange.convert import inspect, resolve_target, to
from zerocopy.layout._layout import check_unique_names
from zerocopy.registry import adapter, record

__all__ = [
    "DEVICE",
    "HOST",
    "array_framework",
    "as_array",
    "as_device",
    "as_host",
    "is_gpu",
    "is_table_framework",
    "make_table",
    "result",
    "table_columns",
    "table_rows",
    "target",
]

HOST = "numpy"  # what the CPU kernels read and write
DEVICE = "cupy"  # what the GPU kernels read and write


def _hop(copy: bool | None) -> bool | None:
    """The ``copy`` a hop runs with. The kernels make every copy a layout call promises, so
    a hop never copies on purpose (True -> None); under ``copy=False`` it must not copy at
    all, and raises ``NotZeroCopyError`` as ``zerocopy.to`` does."""
    return False if copy is False else None


@functools.lru_cache(maxsize=256)
def target(name: Any) -> tuple[str, str | None]:
    """(framework, table type or None) of a target as ``zerocopy.to`` reads it: a name, an
    alias or the module; ``"pyarrow.Table"`` names pyarrow and the type Table."""
    kind = name.partition(".")[2] or None if isinstance(name, str) else None
    return resolve_target(name), kind


def array_framework(obj: object) -> str:
    """Framework name used for results that should look like ``obj``."""
    return framework_of(obj) or HOST


def is_table_framework(name: str) -> bool:
    """Does framework ``name`` hold tables (its module then reads and writes columns)?"""
    return "table" in record(name).kinds


def is_gpu(obj: object) -> bool:
    """True for data in GPU memory, as ``zerocopy.inspect`` reads it."""
    name = framework_of(obj)
    if type(obj) is np.ndarray or name is None:
        return False
    if name == DEVICE:  # the kernels' own device arrays, whatever their dtype (datetime too)
        return True
    return inspect(obj).device[0] != "cpu"


# ------------------------------------------------------------------------ arrays in


def as_host(obj: object, copy: bool | None = None) -> np.ndarray:
    """A NumPy view of host data of any framework (a copy only where it has none and
    ``copy`` is not False)."""
    if type(obj) is np.ndarray:
        return obj
    if framework_of(obj) is None:
        return _python_object(obj, copy)
    return to(obj, HOST, copy=_hop(copy))


def as_device(obj: object, copy: bool | None = None) -> Any:
    """A CuPy view of device data of any framework (DLPack or CUDA Array Interface)."""
    if array_framework(obj) == DEVICE:
        return obj
    return to(obj, DEVICE, copy=_hop(copy))


def as_array(obj: object, copy: bool | None = None) -> Any:
    """``obj`` as the array the kernels work on: CuPy for device data, NumPy otherwise."""
    if type(obj) is np.ndarray:  # the common case, without the framework questions
        return obj
    if array_framework(obj) == DEVICE:  # CuPy: the kernels' own, any dtype CuPy holds
        return obj
    return as_device(obj, copy) if is_gpu(obj) else as_host(obj, copy)


def _python_object(obj: object, copy: bool | None) -> np.ndarray:
    """Bytes-likes (record bytes) as uint8 views; other Python objects through NumPy."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return np.frombuffer(obj, np.uint8)
    try:
        arr = np.asarray(obj)
    except Exception as exc:
        raise UnsupportedObjectError(message(
            "cannot read this object as an array", expected="an array of a supported "
            "framework, a table, or a bytes-like object", got=type(obj).__name__)) from exc
    if copy is False and arr.flags.owndata:  # NumPy built a new array: the data was copied
        raise NotZeroCopyError(message(
            f"a {type(obj).__name__} is read into a new array", expected="an array or a buffer",
            got=type(obj).__name__, hint="pass copy=None, or an array of a supported framework"))
    if arr.dtype.kind == "O":
        raise UnsupportedObjectError(message(
            "the object holds Python objects", expected="fixed-width numbers", got="object",
            hint="convert it to a numeric array first"))
    return arr


# ----------------------------------------------------------------------- arrays out


def result(arr: Any, like: Any, copy: bool | None = None) -> Any:
    """``arr`` (NumPy or CuPy) as an array of framework ``like``, sharing its memory unless
    the target cannot (``copy=False``: NotZeroCopyError then)."""
    if like == HOST and type(arr) is np.ndarray:
        return arr
    if target(like)[0] == array_framework(arr):
        return arr
    return to(arr, like, copy=_hop(copy))


# ------------------------------------------------------------------------ tables in


def table_columns(table: Any, copy: bool | None = None) -> tuple[list[str], list[Any]]:
    """Names and arrays (NumPy, or CuPy for GPU tables) of a table or a mapping of columns.

    The table's framework module reads them (views where it has them); it refuses, with a
    typed error, what a numeric column cannot hold: nulls, strings, nested or object data.
    """
    if hasattr(table, "column_arrays"):  # our ColumnBlock
        return list(table.names), list(table.column_arrays())
    if isinstance(table, Mapping):
        return [str(k) for k in table], [as_array(v, copy) for v in table.values()]
    name = framework_of(table)
    reader = getattr(adapter(name), "columns", None) if name is not None else None
    if reader is None:
        raise UnsupportedObjectError(message(
            "not a table", expected="a pyarrow Table/RecordBatch, pandas or polars DataFrame, "
            "cuDF DataFrame, ColumnBlock, or a mapping of name -> array",
            got=type(table).__name__))
    pairs = reader(table, copy=_hop(copy))
    return check_unique_names([n for n, _ in pairs], f"the {name} table"), [a for _, a in pairs]


def table_rows(table: object) -> int:
    """The row count of a table, which its columns cannot give when it has none."""
    if isinstance(table, Mapping):
        return _rows([as_array(v) for v in table.values()][:1])
    for attribute in ("num_rows", "height"):  # Arrow's and Polars' names
        n = getattr(table, attribute, None)
        if isinstance(n, int):
            return n
    shape = getattr(table, "shape", None)  # pandas, cuDF, ColumnBlock
    return int(shape[0]) if shape else 0


# --------------------------------------------------------------------------- tables out


def make_table(names: Sequence[str], columns: Sequence[Any], to_: Any, rows: int | None = None,
               copy: bool | None = None) -> Any:
    """Build target ``to_`` (a table, or a dict of framework arrays) over ``columns``.
    ``rows``: the row count, which a table without columns keeps (default: the columns')."""
    rows = _rows(columns) if rows is None or columns else rows
    name, kind = target(to_)
    if not is_table_framework(name):
        return {n: result(c, to_, copy) for n, c in zip(names, columns, strict=True)}
    columns = [_on_side_of(name, c, copy) for c in columns]
    return adapter(name).table_from_columns(list(names), columns, rows=rows, kind=kind,
                                            copy=_hop(copy))


def _on_side_of(name: str, column: Any, copy: bool | None) -> Any:
    """``column`` where table framework ``name`` keeps its memory: on the host for host-only
    tables, on the device for device-only ones (a move is a copy: refused under False)."""
    on_device, memory = type(column) is not np.ndarray, record(name).memory
    if on_device and memory == "host":
        return to(column, HOST, copy=_hop(copy))
    if not on_device and memory == "device":
        return to(column, DEVICE, copy=_hop(copy))
    return column


def _rows(columns: Sequence[Any]) -> int:
    return int(columns[0].shape[0]) if columns else 0
