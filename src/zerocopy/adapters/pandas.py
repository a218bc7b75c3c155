"""pandas Series (columns) and DataFrames (tables).

pandas 3 hands out read-only NumPy views (copy-on-write). A frame whose columns sit in one
consolidated block becomes a 2-D array without a copy. Tables cross to Arrow column by
column: numeric columns as zero-copy buffers (NaN stays NaN: no NaN-to-null scan), nullable
ones with their mask.

Copy-on-write policy: other pandas objects (shallow copies, lazy copies, slices) may share a
frame's memory, so a shared result must not be writable. Targets with a read-only flag or
immutable memory (NumPy, JAX, TensorFlow, Arrow, Polars) share read-only. torch has no
read-only tensors: under ``copy=None`` it gets a stated copy; only ``copy=False`` shares, and
then writes through the tensor change the frame and every object sharing its memory (the
plan's caveat says so), as they would after ``df.to_numpy().setflags(write=True)``.

Nulls (masked ``Int32``/``Float32``/``boolean`` and Arrow-backed columns) never reach an
array: ``NullValuesError`` names the columns and the fill. Facts are read from the block
manager once per call, so a frame's cost grows with its blocks, not its columns.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES, name_of_numpy
from zerocopy.adapters import pyarrow as arrow
from zerocopy.adapters._common import check_flat_columns, repeated_names, require
from zerocopy.adapters.numpy import aligned_copy, columns_to_array
from zerocopy.adapters.pyarrow import (
    arrow_dtype_name,
    chunk_pointer,
    column_copy,
    deep_copy,
    table_to_f_order,
)
from zerocopy.adapters.pyarrow import dtypes as arrow_dtypes
from zerocopy.errors import (
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)
from zerocopy.exchange import checks
from zerocopy.exchange.blocks import block_edge, copy_refused, no_nulls, not_numeric
from zerocopy.exchange.edges import Edge, Options, Refusal, moved_info
from zerocopy.exchange.info import ARRAY, COLUMN, TABLE, Info, size_class

NAME = "pandas"
IMPORT_NAME = "pandas"
PIP = "pandas"
PROTOCOLS = {"exports": ("array interface (to_numpy)", "Arrow PyCapsule stream"),
             "imports": ("array interface (copy=False)", "Arrow arrays (ArrowDtype)")}


def _pd() -> Any:
    return require("pandas")


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES)


def version() -> str:
    return str(_pd().__version__)


def devices() -> list[str]:
    return ["cpu"]


# --------------------------------------------------------------- facts

_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    """Canonical name of a pandas dtype (NumPy, masked or Arrow-backed), cached per dtype."""
    try:
        return _NAMES[dtype]
    except (KeyError, TypeError):
        pass
    name = _compute_name(dtype)
    try:
        if len(_NAMES) < 1024:
            _NAMES[dtype] = name
    except TypeError:  # an unhashable extension dtype: not cached
        pass
    return name


def _compute_name(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return name_of_numpy(dtype) or f"pandas:{dtype}"  # NaN in a float column is a value
    pyarrow_dtype = getattr(dtype, "pyarrow_dtype", None)
    if pyarrow_dtype is not None:
        return arrow_dtype_name(pyarrow_dtype)
    if _masked(dtype):  # Int32, Float32, boolean...: values plus a byte mask
        return name_of_numpy(np.dtype(dtype.numpy_dtype)) or f"pandas:{dtype}"
    return f"pandas:{dtype}"


def _masked(dtype: Any) -> bool:
    try:
        from pandas.core.dtypes.dtypes import BaseMaskedDtype
    except ImportError:  # internal path moved: recognise masked arrays by their mask instead
        return False
    return isinstance(dtype, BaseMaskedDtype)


def _nulls(array: Any) -> int:
    """Nulls of an extension array (masked or Arrow-backed); NumPy data has none."""
    mask = getattr(array, "_mask", None)
    if mask is not None:
        return int(np.count_nonzero(mask))
    pa_array = getattr(array, "_pa_array", None)
    if pa_array is not None:
        return int(pa_array.null_count)
    return 0


def _chunks(array: Any) -> int:
    pa_array = getattr(array, "_pa_array", None)
    return pa_array.num_chunks if pa_array is not None else 1


def _itemsize(name: str) -> int:
    return np.dtype(name).itemsize if name in _NUMPY_NAMES else 8


_NUMPY_NAMES = frozenset(SHARED_DTYPES) - {"bfloat16"}
# Why a shared result must stay read-only: torch and MXNet have no read-only flag, so the
# planner copies for them under copy=None (checks.write_guard).
_COW = ("pandas' copy-on-write forbids writes to this memory: other pandas objects "
        "(shallow and lazy copies, slices) may share it")


def _series_info(s: Any) -> Info:
    array = s.array
    name = _dtype_name(s.dtype)
    numpy_backed = isinstance(s.dtype, np.dtype)
    bits = name == "bool" and hasattr(array, "_pa_array")  # Arrow bool is bits; masked bool is bytes
    # A Series over a step-sliced array keeps the step: its strides are those of its values.
    if numpy_backed:
        strides = s.to_numpy().strides
    elif getattr(array, "_mask", None) is not None:
        strides = array._data.strides
    else:
        strides = None
    # Arrow-backed columns (read_parquet(dtype_backend="pyarrow")) may sit in several chunks.
    chunks = _chunks(array)
    nulls = 0 if numpy_backed else _nulls(array)
    return Info(NAME, s, kind=COLUMN, dtype=name, shape=(len(s),), strides=strides,
                itemsize=s.dtype.itemsize if numpy_backed else _itemsize(name),
                pointer=lambda: _pointer(s), readonly=True, nulls=nulls,
                extra={"signature": (str(s.dtype), chunks > 1), "bits": bits, "chunks": chunks,
                       "masked_nulls": bool(nulls) and getattr(array, "_mask", None) is not None,
                       "arrow_foreign": () if _arrow_buffer(name, array) else (name,),
                       "write_guard": _COW, "null_columns": (s.name,)})


def _pointer(s: Any) -> int:
    if hasattr(s.array, "_pa_array"):
        # The first chunk with data (as pyarrow's inspect): an empty chunk's buffer says
        # nothing about where the data lives.
        chunks = s.array._pa_array.chunks
        first = next((c for c in chunks if len(c)), chunks[0] if chunks else None)
        try:
            return chunk_pointer(first) if first is not None else 0
        except ValueError:  # strings, lists...: no fixed-width data buffer to point at
            return 0
    array = s.array
    if not isinstance(s.dtype, np.dtype) and not isinstance(getattr(array, "_data", None), np.ndarray):
        return 0  # categorical, periods, time zones...: to_numpy() builds a new array each time
    return int(_values(s).__array_interface__["data"][0])


def _blocks(df: Any) -> list[tuple[Any, Any, Any]]:
    """(dtype, values, column positions) per block, read from pandas' block manager once.
    NumPy blocks hold a 2-D (columns, rows) array, extension blocks one 1-D array. If the
    (internal) block manager moves, every column becomes its own block: slower, still right."""
    try:
        return [(b.dtype, b.values, b.mgr_locs.as_array) for b in df._mgr.blocks]
    except AttributeError:
        parts = []
        for i in range(df.shape[1]):
            s = df.iloc[:, i]
            values = s.to_numpy()[None, :] if isinstance(s.dtype, np.dtype) else s.array
            parts.append((s.dtype, values, np.array([i])))
        return parts


def _frame_info(df: Any) -> Info:
    """A frame's facts from its blocks: the cost grows with the number of blocks (one for a
    frame built from one 2-D array), never with a per-column ``iloc``."""
    blocks = _blocks(df)
    names: list[str] = []
    null_at: list[int] = []
    nulls, chunks, masked_nulls = 0, 1, False
    contiguous, bits, plain = True, False, True
    foreign: set[str] = set()
    for dtype, values, locs in blocks:
        name = _dtype_name(dtype)
        names.append(name)
        if not _arrow_buffer(name, values):
            foreign.add(name)
        if isinstance(values, np.ndarray):  # (columns, rows): a column is one row of it
            if values.shape[-1] > 1 and values.strides[-1] != values.itemsize:
                contiguous = False
            continue
        plain = False
        data = getattr(values, "_data", None)
        if isinstance(data, np.ndarray) and len(data) > 1 and data.strides[0] != data.itemsize:
            contiguous = False
        bits = bits or (name == "bool" and hasattr(values, "_pa_array"))
        chunks = max(chunks, _chunks(values))
        found = _nulls(values)
        if found:
            nulls += found
            masked_nulls = masked_nulls or getattr(values, "_mask", None) is not None
            null_at.extend(int(i) for i in locs)
    kinds = frozenset(names)
    dtype = names[0] if len(kinds) == 1 else None
    single = len(blocks) == 1 and plain and dtype is not None
    # One NumPy block: df.to_numpy() is a read-only view of values.T; its strides decide
    # what importers can take, and its start is the pointer JAX's alignment check reads.
    stacked = tuple(reversed(blocks[0][1].strides)) if single else None
    # Names held twice (pandas allows them; Polars refuses them): read once, the index caches it.
    repeated = () if df.columns.is_unique else repeated_names(df.columns)
    return Info(NAME, df, kind=TABLE, dtype=dtype, shape=df.shape, strides=None,
                itemsize=_itemsize(dtype) if dtype else 8, readonly=True, nulls=nulls,
                pointer=_frame_pointer(blocks) if plain and blocks else None,
                extra={"signature": (tuple(names), plain, contiguous, stacked, bits, chunks > 1,
                                     repeated),
                       "repeated_names": repeated,
                       "blocks": len(blocks) if plain else -1,
                       "has_bool": "bool" in kinds, "column_dtypes": kinds, "bits": bits,
                       "chunks": chunks, "masked_nulls": masked_nulls, "write_guard": _COW,
                       "arrow_foreign": tuple(sorted(foreign)),
                       "contiguous_columns": contiguous, "stacked_strides": stacked,
                       "null_columns": tuple(df.columns[i] for i in sorted(null_at)[:5])})


def _frame_pointer(blocks: list[tuple[Any, Any, Any]]) -> Any:
    """Where a (rows, columns) view of the frame starts: its first column's data."""
    def pointer() -> int:
        for _, values, locs in blocks:
            hits = np.flatnonzero(locs == 0)
            if len(hits):
                return int(values[hits[0]].__array_interface__["data"][0])
        return 0

    return pointer


def _columns_in_order(df: Any, *, copied: bool = False) -> list[np.ndarray]:
    """Every column's values as NumPy in column order: views of the blocks, or with
    ``copied``, new buffers for extension columns (chunks combined, bits unpacked)."""
    out: list[Any] = [None] * df.shape[1]
    for _, values, locs in _blocks(df):
        if isinstance(values, np.ndarray):
            for j, loc in enumerate(locs):
                out[loc] = values[j]
        else:
            out[locs[0]] = _copied_values(values) if copied else _array_values(values)
    return out


def column_views(df: Any) -> list[np.ndarray | None]:
    """Each column's NumPy view where a NumPy block holds it (None for extension columns), in
    column order, read from the block manager once (zerocopy.layout's tables use it)."""
    out: list[np.ndarray | None] = [None] * df.shape[1]
    for _, values, locs in _blocks(df):
        if isinstance(values, np.ndarray):
            for j, loc in enumerate(locs):
                view = values[j].view()
                view.flags.writeable = False  # copy-on-write: never a writable view
                out[loc] = view
    return out


# --------------------------------------------------------------- tables <-> columns
# zerocopy.layout reads and writes tables through these two (the pyarrow module has the
# same pair), and the column-block edge reads them too.

def columns(df: Any, *, copy: bool | None = None) -> list[tuple[str, np.ndarray]]:
    """A frame's columns as (name, NumPy array): read-only views of the NumPy blocks (the
    block manager read once, no ``iloc`` per numeric column), the values of masked and
    Arrow-backed columns, copies only where pandas has no view (Arrow chunks or bits;
    NotZeroCopyError under ``copy=False``). Nulls, objects and strings raise typed errors."""
    views = column_views(df)
    pairs = [(str(name), view if view is not None and view.dtype.kind in "biufcmM"
              else _column_values(df.iloc[:, i], str(name), copy))
             for i, (name, view) in enumerate(zip(df.columns, views, strict=True))]
    return [(name, values.copy()) for name, values in pairs] if copy else pairs


def _column_values(s: Any, name: str, copy: bool | None) -> np.ndarray:
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            raise UnsupportedObjectError(message(
                f"column {name!r} holds Python objects", expected="a numeric dtype",
                got="object", hint="convert it with astype() to a numeric dtype first"))
        return s.to_numpy(copy=False)  # datetimes and timedeltas: a view of their values
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is None or numpy_dtype.kind not in "biufmM":
        raise not_numeric(name, dtype)
    no_nulls(int(s.isna().sum()), name)
    try:
        return _array_values(s.array)
    except (BufferError, ValueError, TypeError) as exc:  # Arrow chunks or bits: no view
        if copy is False:
            raise copy_refused(name, "is Arrow-backed in several chunks or as bits") from exc
        return _copied_values(s.array)


def table_from_columns(names: Sequence[str], arrays: Sequence[np.ndarray], *, rows: int = 0,
                       kind: str | None = None, copy: bool | None = None) -> Any:
    """A DataFrame over NumPy ``arrays`` (``copy=False`` in pandas' sense: views of them);
    ``rows``: the row count kept when there are no columns. Array columns have no pandas
    form: a typed error names the targets that hold them."""
    pd = _pd()
    check_flat_columns("pandas", kind, names, arrays)
    if not arrays:
        return pd.DataFrame(index=pd.RangeIndex(rows))
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


def inspect(x: Any) -> Info:
    pd = _pd()
    if isinstance(x, pd.Series):
        return _series_info(x)
    if isinstance(x, pd.DataFrame):
        return _frame_info(x)
    raise UnsupportedObjectError(message(f"pandas {type(x).__name__} holds no array data",
                                         expected="Series or DataFrame"))


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a NumPy-backed Series or a frame of one NumPy block (no nulls
    possible), read cheaply; nullable and Arrow-backed columns and other frames take the slow
    lane. (A frame's ``getattr(df, "dtype")`` would search its columns: never asked.)"""
    if x.ndim == 2:
        return _frame_key(x)
    # The Series' own array, read without the read-only view to_numpy() makes (a quarter of
    # its cost): an extension array (nullable, Arrow, datetimes) is no ndarray.
    values = getattr(x, "_values", None)
    if type(values) is not np.ndarray or values.dtype.kind not in "biufc":
        return None
    return (values.dtype, size_class(values.shape), values.strides)


def fast_pointer(x: Any) -> int | None:
    """Where the data of a Series with a fast key starts (Info.ptr); a frame's start
    depends on its blocks, so frames planned by alignment take the slow lane (None)."""
    return _pointer(x) if x.ndim == 1 else None


def _frame_key(df: Any) -> tuple[Any, ...] | None:
    try:
        blocks = df._mgr.blocks
    except AttributeError:
        return None
    if len(blocks) != 1:
        return None
    values = blocks[0].values  # (columns, rows): its strides decide every check a frame meets
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "biufc":
        return None
    return ("frame", values.dtype, size_class(values.shape[::-1]), values.strides)


def make(values: np.ndarray) -> Any:
    """A probe over a 64-byte aligned buffer, like the matrix's sources, so that
    ``zerocopy explain`` and ``zerocopy matrix`` see the same kind of object."""
    pd = _pd()
    values = aligned_copy(values)
    return pd.Series(values, copy=False) if values.ndim == 1 else pd.DataFrame(values, copy=False)


def to_host(x: Any) -> np.ndarray:
    return x.to_numpy()


# --------------------------------------------------------------- edges

def _values(s: Any) -> np.ndarray:
    """The column's data as NumPy without copying (no nulls: checked by the plan)."""
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    return _array_values(s.array)


def _array_values(array: Any) -> np.ndarray:
    pa_array = getattr(array, "_pa_array", None)
    if pa_array is not None:
        chunks = pa_array.chunks
        if len(chunks) != 1:  # the plan copies chunked columns; a view would lose rows
            raise BufferError(f"an Arrow-backed column in {len(chunks)} chunks has no single buffer")
        return chunks[0].to_numpy(zero_copy_only=True)
    data = getattr(array, "_data", None)
    if isinstance(data, np.ndarray):
        return data  # masked array: values without the mask (the plan refused nulls)
    return np.asarray(array)


def _copied_values(array: Any) -> np.ndarray:
    """A column's values in a new NumPy buffer (chunks combined, Arrow bits unpacked)."""
    pa_array = getattr(array, "_pa_array", None)
    if pa_array is not None:
        return pa_array.to_numpy()
    data = getattr(array, "_data", None)
    return data if isinstance(data, np.ndarray) else np.asarray(array)


def _aligned(values: np.ndarray) -> np.ndarray:
    return aligned_copy(values)


def _series_to_numpy(s: Any, options: Options) -> np.ndarray:
    return _values(s)


def _series_to_numpy_copy(s: Any, options: Options) -> np.ndarray:
    if isinstance(s.dtype, np.dtype):
        return _aligned(s.to_numpy())
    pa_array = getattr(s.array, "_pa_array", None)
    if pa_array is not None:  # chunks straight into one aligned buffer: one copy
        return column_copy(pa_array)
    return _aligned(_copied_values(s.array))


def _numpy_to_series(x: np.ndarray, options: Options) -> Any:
    return _pd().Series(x, copy=False)


def _numpy_to_frame(x: np.ndarray, options: Options) -> Any:
    return _pd().DataFrame(x, copy=False)


def _frame_to_numpy(df: Any, options: Options) -> np.ndarray:
    return df.to_numpy()


def _frame_to_numpy_copy(df: Any, options: Options) -> np.ndarray:
    blocks = _blocks(df)
    if len(blocks) == 1 and isinstance(blocks[0][1], np.ndarray):
        return aligned_copy(df.to_numpy())  # one block: to_numpy() is a view, one copy
    columns = _columns_in_order(df, copied=True)
    return columns_to_array(columns, df.shape[0], np.dtype(_dtype_name(blocks[0][0])))


def _rows_only(df: Any) -> Any:
    """An Arrow table with the frame's rows and no columns (pa.table([]) would have none)."""
    pa = require("pyarrow")
    return pa.table({"_": pa.nulls(df.shape[0])}).drop_columns(["_"])


def _frame_to_arrow(df: Any, options: Options) -> Any:
    pa = require("pyarrow")
    if not df.shape[1]:
        return _rows_only(df)
    columns = [_column_to_arrow(df.iloc[:, i]) for i in range(df.shape[1])]
    return pa.table(columns, names=[str(n) for n in df.columns])


def _frame_to_arrow_copy(df: Any, options: Options) -> Any:
    pa = require("pyarrow")
    if not df.shape[1]:
        return _rows_only(df)
    columns = [_column_to_arrow_copy(df.iloc[:, i]) for i in range(df.shape[1])]
    return pa.table(columns, names=[str(n) for n in df.columns])


def _column_to_arrow(s: Any) -> Any:
    """Zero-copy: NumPy-backed and masked columns without nulls as one Arrow buffer over
    their values, Arrow-backed ones as they are (the plan refused bool and strided ones)."""
    array = s.array
    if hasattr(array, "_pa_array"):
        return array._pa_array
    return arrow.numpy_to_column(_values(s), Options())


def _column_to_arrow_copy(s: Any) -> Any:
    """New Arrow buffers: values copied, masks become a validity bitmap, bool becomes bits."""
    pa = require("pyarrow")
    array = s.array
    if hasattr(array, "_pa_array"):
        return deep_copy(array._pa_array)
    mask = getattr(array, "_mask", None)
    if mask is None and _dtype_name(s.dtype) not in SHARED_DTYPES:
        return _converted_to_arrow(s)
    values = np.array(_values(s) if mask is None else array._data, copy=True)
    # pa.array over NumPy numbers wraps the buffer: ``values`` is ours alone, so that is fine.
    return pa.array(values, mask=mask if mask is not None and mask.any() else None)


def _converted_to_arrow(s: Any) -> Any:
    """pyarrow's own pandas converter for what has no Arrow buffer of its own (categorical,
    time zones, periods, objects...), into new buffers; a typed error where it fails."""
    pa = require("pyarrow")
    try:
        return deep_copy(pa.array(s, from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise UnsupportedDtypeError(message(
            f"column {s.name!r} ({s.dtype}) has no Arrow form: {exc}",
            hint="convert it to one type first (astype(str), pd.to_numeric(...))")) from exc


def _arrow_to_frame(t: Any, options: Options) -> Any:
    pd = _pd()
    # A RecordBatch's columns are Arrays, a Table's ChunkedArrays: both become Series.
    names = t.schema.names
    # Keyed by position: a name Arrow holds twice would otherwise keep one of its columns.
    columns = {i: _arrow_column_to_series(t.column(i), options) for i in range(len(names))}
    if not columns:  # rows without columns keep their count
        return pd.DataFrame(index=pd.RangeIndex(t.num_rows))
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = pd.Index(names)
    return frame


def _arrow_to_series(column: Any) -> Any:
    pd = _pd()
    if column.num_chunks == 1 and column.null_count == 0 and str(column.type) != "bool":
        values = arrow_dtype_name(column.type)
        if not values.startswith("arrow:"):
            return pd.Series(column.chunk(0).to_numpy(zero_copy_only=True), copy=False)
    # Nulls, strings, bits: keep Arrow's own memory behind pandas' ArrowDtype.
    return pd.Series(pd.arrays.ArrowExtensionArray(column), copy=False)


def _arrow_column_to_series(column: Any, options: Options) -> Any:
    pa = require("pyarrow")
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    return _arrow_to_series(column)


def _series_to_arrow(s: Any, options: Options) -> Any:
    return _column_to_arrow(s)


def _series_to_arrow_copy(s: Any, options: Options) -> Any:
    return _column_to_arrow_copy(s)


def _deep_copy(x: Any, options: Options) -> Any:
    """copy=True within pandas: ``copy(deep=True)`` keeps an Arrow-backed column's (immutable)
    buffers, so those are copied through Arrow."""
    pd = _pd()
    out = x.copy(deep=True)
    if isinstance(x, pd.Series):
        if hasattr(x.array, "_pa_array"):
            return pd.Series(_arrow_copy(x.array), index=out.index, name=x.name, copy=False)
        return out
    for _, values, locs in _blocks(x):
        if hasattr(values, "_pa_array"):
            out.isetitem(int(locs[0]), _arrow_copy(values))
    return out


def _arrow_copy(array: Any) -> Any:
    return _pd().arrays.ArrowExtensionArray(deep_copy(array._pa_array))


# --------------------------------------------------------------- checks

def _one_block(info: Info, options: Options) -> Refusal | None:
    if info.extra.get("blocks") == 1 and info.dtype is not None:
        return None
    return Refusal("the frame's columns are not one consolidated block of one dtype",
                   "build it from one 2-D array, or use zerocopy.layout's column block")


def _not_bits(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bool" and info.extra.get("bits"):
        return Refusal("this bool column is Arrow-backed, stored as bits", "bool columns copy")
    return None


def _shared_numeric(info: Info, options: Options) -> Refusal | None:
    if info.kind == TABLE and not info.shape[1]:
        return Refusal("a DataFrame without columns has no values to make a tensor of",
                       "select the numeric columns first", fixable=False, error=_unsupported())
    if info.dtype not in SHARED_DTYPES:
        what = info.dtype or "columns of different dtypes"
        hint = ("select numeric columns of one dtype first (df.select_dtypes, astype)"
                if info.kind == TABLE else _series_hint(info.dtype or ""))
        if _OBJECTS & (info.extra.get("column_dtypes") or {info.dtype}):
            what = f"{what} (Python objects or strings, maybe <NA>)"
            hint = ("convert to a numeric dtype first: pd.to_numeric(s) or s.astype('Int64'), then "
                    "fill nulls: s.fillna(value) / s.to_numpy(dtype=..., na_value=value); a column "
                    "of lists is ragged: np.concatenate(s.to_list()) flattens it (a copy)")
        return Refusal(f"{what} cannot become one tensor", hint, fixable=False, error=_unsupported())
    return None


_OBJECTS = frozenset({"pandas:object", "pandas:str"})


def _series_hint(dtype: str) -> str:
    """What a Series of this dtype becomes a tensor through (a DataFrame's hint is about
    selecting its columns)."""
    kind = dtype.removeprefix("pandas:")
    if kind == "category":
        return "its integer codes, s.cat.codes, become a tensor"
    if kind.startswith(("datetime64", "timedelta64", "period")):
        return "s.astype('int64') gives them as integers (in the dtype's unit; periods as ordinals)"
    if kind.startswith("Sparse"):
        return "s.sparse.to_dense() gives the dense values (a copy)"
    if kind.startswith("interval"):
        return "its bounds, s.array.left and s.array.right, are numeric"
    return "cast the Series to a numeric dtype first: s.astype('float32'), pd.to_numeric(s)"


def _arrow_can_hold(info: Info, options: Options) -> Refusal | None:
    names = info.extra.get("column_dtypes", frozenset({info.dtype}))
    lacking = sorted(n for n in names if n in SHARED_DTYPES and n not in arrow_dtypes())
    if lacking:
        return Refusal(f"Arrow has no {', '.join(lacking)}", "cast those columns first",
                       fixable=False, error=UnsupportedDtypeError)
    return None


def _arrow_shares(info: Info, options: Options) -> Refusal | None:
    """A pandas column is one Arrow buffer as it is unless it is bool (bytes vs bits),
    strided, or masked with nulls (a byte mask vs a validity bitmap)."""
    if info.extra.get("has_bool") or info.dtype == "bool":
        return Refusal("bool is bit-packed in Arrow", "bool columns copy; use uint8 to share")
    foreign = info.extra.get("arrow_foreign", ())
    if foreign:
        return Refusal(f"{', '.join(map(str, foreign))} has no Arrow buffer of its own: pyarrow "
                       "converts it (a copy)")
    if not info.extra.get("contiguous_columns", info.layout == "C"):
        return Refusal("the columns are strided (a row-major block or a step slice); "
                       "an Arrow column is one contiguous buffer")
    return None


def _arrow_buffer(name: str, values: Any) -> bool:
    """Do these values hold an Arrow-compatible buffer (numbers, Arrow-backed arrays incl.
    pandas 3 strings, tz-naive NumPy times), rather than something pyarrow must convert?"""
    if name in SHARED_DTYPES or hasattr(values, "_pa_array"):
        return True
    return name.startswith(("pandas:datetime64[", "pandas:timedelta64[")) and "," not in name


def _masked_nulls(info: Info, options: Options) -> Refusal | None:
    if info.extra.get("masked_nulls"):
        return Refusal("pandas masks nulls with bytes, Arrow with a bitmap",
                       "the copy builds the bitmap")
    return None


def _has_columns(info: Info, options: Options) -> Refusal | None:
    if info.shape[1] > 0:
        return None
    return Refusal("a DataFrame without columns has no dtype, so the round trip would lose it",
                   "keep zero-column data as an array", fixable=False)


def _unsupported() -> type[Exception]:
    return UnsupportedDtypeError


def _ndim(n: int) -> Any:
    def check(info: Info, options: Options) -> Refusal | None:
        return None if len(info.shape) == n else Refusal(f"needs {n}-D data", fixable=False)

    return check


_READONLY = ("pandas 3 hands out read-only views (copy-on-write): the NumPy view is read-only, "
             "and other pandas objects may share its memory")


def block_view(df: Any) -> np.ndarray | None:
    """The read-only ``(rows, k)`` view of a frame whose columns are one NumPy block in
    column order, read from the block manager without a look at each column; None where
    the frame is not so plainly one block (the column-block edge then asks the columns)."""
    try:
        (block,) = df._mgr.blocks
    except (AttributeError, ValueError):  # several blocks, or the block manager moved
        return None
    values = block.values  # (columns, rows)
    if (not isinstance(values, np.ndarray) or values.ndim != 2 or 0 in values.shape
            or values.dtype.kind not in "biufcmM"
            or not np.array_equal(block.mgr_locs.as_array, np.arange(values.shape[0]))):
        return None
    view = values.T
    view.flags.writeable = False  # copy-on-write: never a writable view
    return view


def _typed_block_edge() -> Edge:
    """The column-block edge, refusing dtypes no tensor holds first (no copy fixes those)."""
    edge = block_edge(NAME, columns, table_to_f_order, _READONLY, known_block=block_view)
    return replace(edge, check=checks.all_of(_shared_numeric, edge.check))


def _array_as_frame(info: Info, framework: str, kind: str | None) -> Info:
    """A (rows, k) array seen as a frame: column j is x[:, j], so the columns are contiguous
    only when the array is column-major (or has one row or one column)."""
    new = moved_info(info, framework, kind)
    rows, columns = info.shape
    row_step = info.strides[0] if info.strides is not None else info.itemsize * columns
    new.extra = {**info.extra, "contiguous_columns": rows <= 1 or row_step == info.itemsize,
                 "blocks": 1, "column_dtypes": frozenset({info.dtype}),
                 "has_bool": info.dtype == "bool"}
    return new

EDGES = (
    Edge(NAME, "numpy", "array interface", "s.to_numpy()", _series_to_numpy, cost=0.9,
         # In the fast lane only NumPy-backed Series arrive (fast_key): to_numpy itself.
         fast=lambda info, source: _pd().Series.to_numpy,
         kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(checks.no_nulls("NumPy"), _shared_numeric, _not_bits),
         caveat=lambda info: _READONLY),
    Edge(NAME, "numpy", "copy", "s.to_numpy(copy=True)", _series_to_numpy_copy,
         copies=True, cost=9.0, kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(checks.no_nulls("NumPy"), _shared_numeric)),
    Edge("numpy", NAME, "array interface", "pd.Series(x, copy=False)", _numpy_to_series, cost=9.0,
         fast=lambda info, source: functools.partial(_pd().Series, copy=False),
         result_kind=COLUMN, check=_ndim(1)),
    Edge("numpy", NAME, "array interface", "pd.DataFrame(x, copy=False)", _numpy_to_frame, cost=15.0,
         result_kind=TABLE, check=checks.all_of(_ndim(2), _has_columns), project=_array_as_frame),
    Edge(NAME, "numpy", "array interface (one block)", "df.to_numpy()", _frame_to_numpy, cost=2.0,
         project=table_to_f_order,
         kinds=frozenset({TABLE}), result_kind=ARRAY,
         check=checks.all_of(_shared_numeric, _one_block), caveat=lambda info: _READONLY),
    _typed_block_edge(),
    Edge(NAME, "numpy", "copy", "aligned C-order array filled block by block", _frame_to_numpy_copy,
         copies=True, cost=12.0, kinds=frozenset({TABLE}), result_kind=ARRAY, check=_shared_numeric),
    Edge(NAME, "pyarrow", "Arrow buffers, column by column",
         "pa.table([pa.Array.from_buffers(...) per column])", _frame_to_arrow, cost=30.0,
         kinds=frozenset({TABLE}), check=checks.all_of(_arrow_can_hold, _arrow_shares, _masked_nulls)),
    Edge(NAME, "pyarrow", "copy", "pa.table(...) over new buffers (bool packed into bits)",
         _frame_to_arrow_copy, copies=True, immutable_result=True,
         cost=40.0, kinds=frozenset({TABLE}), check=_arrow_can_hold),
    Edge("pyarrow", NAME, "Arrow buffers, column by column",
         "pd.DataFrame({name: Series(zero-copy column)}, copy=False)", _arrow_to_frame, cost=40.0,
         kinds=frozenset({TABLE})),
    Edge(NAME, "pyarrow", "Arrow buffer", "pa.Array.from_buffers(...) over s.to_numpy()",
         _series_to_arrow, cost=3.0, kinds=frozenset({COLUMN}),
         check=checks.all_of(_arrow_can_hold, _arrow_shares, _masked_nulls)),
    Edge(NAME, "pyarrow", "copy", "pa.array(s) over a new buffer (bool packed into bits)",
         _series_to_arrow_copy, copies=True, immutable_result=True,
         cost=6.0, kinds=frozenset({COLUMN}), check=_arrow_can_hold),
    # copy=True within pandas. Its result keeps pandas' own layout (Arrow bits, unaligned
    # blocks), not a fresh aligned buffer, so it costs more than every copy edge out of
    # pandas plus the shared hops after it: the planner takes it only to stay in pandas.
    Edge(NAME, NAME, "copy", "x.copy(deep=True)", _deep_copy, copies=True, immutable_result=True,
         cost=15.0, kinds=frozenset({COLUMN, TABLE})),
    Edge("pyarrow", NAME, "Arrow buffer", "pd.Series(zero-copy column)", _arrow_column_to_series,
         cost=12.0, kinds=frozenset({COLUMN})),
)
