"""Reading files into memory every framework can share.

A Parquet file read by pyarrow comes back with each column split into one chunk per row
group (separate buffers), so no column, and no table, can become a tensor without a copy.
:func:`read_parquet` pays that copy once, while reading: numeric null-free columns land
in one :func:`~zerocopy.column_block` (64-byte aligned, registered), so the returned table
and every tensor made from it with ``zerocopy.to(..., copy=False)`` share one buffer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import require
from zerocopy.adapters.pyarrow import arrow_dtype_name
from zerocopy.errors import InvalidArgumentError, PathNotFoundError, UnsupportedObjectError, message
from zerocopy.exchange.convert import to as convert
from zerocopy.layout import column_block
from zerocopy.registry import names

__all__ = ["read_parquet"]

# The host table frameworks (pyarrow, pandas, polars), or the column block itself.
_TABLE_TARGETS = (*names(kind="table", memory="host"), "block")


def read_parquet(path: str | PathLike[str], columns: Sequence[str] | None = None, *,
                 to: str = "pyarrow") -> Any:
    """Read a Parquet file into one shared buffer; return it as a ``to`` table.

    ``to``: ``"pyarrow"`` (a Table), ``"pandas"``, ``"polars"``, or ``"block"`` (the
    :class:`~zerocopy.layout.block.ColumnBlock` itself). Numeric columns without nulls are
    copied once, chunk by chunk, into one column block; when they all share one dtype the
    whole table is also an F-order 2-D tensor: ``zerocopy.to(table, "torch", copy=False)``
    shares it. Other columns (strings, nulls, bool bits) stay Arrow columns, combined into
    one chunk each.
    """
    if to not in _TABLE_TARGETS:
        raise InvalidArgumentError(message("Unknown table target for read_parquet", got=repr(to),
                                           expected=", ".join(map(repr, _TABLE_TARGETS))))
    pq = require("pyarrow.parquet", "pyarrow")
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except Exception as exc:  # FileNotFoundError, ArrowInvalid and friends: ours, the cause kept
        raise _read_error(pq, path, columns, exc) from exc
    if table.num_columns == 0 and isinstance(path, str | PathLike) and os.path.isdir(path):
        raise _empty_folder(os.fspath(path))  # pyarrow reads it as a table of nothing
    in_block = [name for name, column in zip(table.schema.names, table.columns, strict=True)
                if _fits_block(column)]
    if to == "block":
        if len(in_block) != table.num_columns:
            rest = sorted(set(table.schema.names) - set(in_block))
            raise InvalidArgumentError(message(
                "Only numeric columns without nulls fit a column block", got=f"also {rest}",
                hint="pass columns=[...] with the numeric ones, or to='pyarrow'"))
        return _fill_block(table, in_block)
    block = _fill_block(table, in_block) if in_block else None
    return _as_table(table, block, in_block, to)


def _empty_folder(where: str) -> PathNotFoundError:
    """A folder with no Parquet file in it: pyarrow returns an empty table without a word
    (a wrong path or a write that never happened would pass unnoticed)."""
    entries = sorted(os.listdir(where))
    count = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
    seen = (f"{count}, none read as Parquet (pyarrow skips names starting with '_' or '.'): "
            f"{', '.join(entries[:5])}{' ...' if len(entries) > 5 else ''}"
            if entries else "an empty folder")
    return PathNotFoundError(message(
        "No Parquet file in this folder", got=f"{where!r}: {seen}",
        hint="pass the folder that holds the .parquet files (or one file's path)"), filename=where)


def _read_error(pq: Any, path: str | PathLike[str], columns: Sequence[str] | None,
                exc: Exception) -> Exception:
    """Why ``pq.read_table`` failed, as a typed error (read on the error path only)."""
    where = os.fspath(path) if isinstance(path, str | PathLike) else repr(path)
    if isinstance(exc, FileNotFoundError):
        parent = os.path.dirname(os.path.abspath(where))
        return PathNotFoundError(message(
            "No Parquet file at this path", got=repr(where),
            hint=f"the folder {parent!r} does not exist either" if not os.path.isdir(parent)
            else "check the name; a relative path starts at the working directory "
                 f"{os.getcwd()!r}"), filename=where)
    if columns is not None:
        try:
            present = pq.read_schema(where).names
        except Exception:  # not a Parquet file at all: said below
            present = None
        unknown = [c for c in columns if present is not None and c not in present]
        if unknown:
            return InvalidArgumentError(message(
                f"columns= names {', '.join(map(repr, unknown))}, which {where!r} does not have",
                expected=f"names from {', '.join(map(repr, present or ()))}",
                got=repr(list(columns)), hint="pq.read_schema(path).names lists them"))
    first_line = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else "no message"
    return UnsupportedObjectError(message(
        f"Could not read {where!r} as Parquet", got=f"{type(exc).__name__}: {first_line}",
        hint="a Parquet file ends in the bytes PAR1; read CSV or Feather with pyarrow's own "
             "reader (pyarrow.csv.read_csv, pyarrow.feather.read_table) and pass the table "
             "to zerocopy.to"))


def _fits_block(column: Any) -> bool:
    name = arrow_dtype_name(column.type)
    return name in SHARED_DTYPES and name != "bool" and column.null_count == 0


def _fill_block(table: Any, names: list[str]) -> Any:
    block = column_block(table.num_rows, {n: table.schema.field(n).type.to_pandas_dtype()
                                          for n in names})
    for name, out in zip(names, block.column_arrays(), strict=True):
        start = 0
        for chunk in table.column(name).chunks:
            np.copyto(out[start:start + len(chunk)], chunk.to_numpy(zero_copy_only=True), casting="no")
            start += len(chunk)
    return block


def _as_table(table: Any, block: Any, in_block: list[str], to: str) -> Any:
    pa = require("pyarrow")
    views = dict(zip(in_block, block.column_arrays(), strict=True)) if block is not None else {}
    arrays = [_shared_column(pa, views[name], table.schema.field(name).type, block)
              if name in views else table.column(name).combine_chunks()
              for name in table.schema.names]
    whole = pa.table(arrays, names=table.schema.names)
    return convert(whole, to)  # to pyarrow: the table as it is


def _shared_column(pa: Any, view: np.ndarray, arrow_type: Any, block: Any) -> Any:
    # The Arrow buffer names the block as its base: the block (and its registration, which
    # lets the columns become one tensor) lives as long as any column does.
    address = int(view.__array_interface__["data"][0])
    data = pa.foreign_buffer(address, view.nbytes, base=block)
    return pa.Array.from_buffers(arrow_type, len(view), [None, data])
