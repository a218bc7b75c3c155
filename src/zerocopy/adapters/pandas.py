"""pandas Series (columns) and DataFrames (tables).

pandas 3 hands out read-only NumPy views (copy-on-write). A frame whose columns sit in one
consolidated block becomes a 2-D array without a copy. Tables cross to Arrow column by
column: numeric columns as zero-copy buffers (NaN stays NaN: no NaN-to-null scan), nullable
ones with their mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES, name_of_numpy
from zerocopy.adapters._common import require
from zerocopy.adapters.pyarrow import arrow_dtype_name, table_to_f_order
from zerocopy.exchange import checks
from zerocopy.exchange.blocks import block_edge
from zerocopy.exchange.edges import Edge, Options, Refusal
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


def _series_parts(s: Any) -> tuple[str, int]:
    """(canonical dtype, null count) without converting the data."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        name = name_of_numpy(dtype)
        if name is None:
            return f"pandas:{dtype}", 0
        return name, 0  # NaN in a float column is a value, not a null
    pyarrow_dtype = getattr(dtype, "pyarrow_dtype", None)
    if pyarrow_dtype is not None:
        return arrow_dtype_name(pyarrow_dtype), int(s.array._pa_array.null_count)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    mask = getattr(s.array, "_mask", None)
    if numpy_dtype is not None and mask is not None:  # masked (Int64, Float32, boolean...)
        return name_of_numpy(np.dtype(numpy_dtype)) or f"pandas:{dtype}", int(mask.sum())
    return f"pandas:{dtype}", 0


def _series_info(s: Any) -> Info:
    dtype, nulls = _series_parts(s)
    itemsize = s.dtype.itemsize if isinstance(s.dtype, np.dtype) else 8
    bits = dtype == "bool" and not isinstance(s.dtype, np.dtype)  # Arrow/masked bool
    # A Series over a step-sliced array keeps the step: its strides are those of its values.
    strides = s.to_numpy().strides if isinstance(s.dtype, np.dtype) else None
    # Arrow-backed columns (read_parquet(dtype_backend="pyarrow")) may sit in several chunks.
    chunks = s.array._pa_array.num_chunks if hasattr(s.array, "_pa_array") else 1
    return Info(NAME, s, kind=COLUMN, dtype=dtype, shape=(len(s),), strides=strides, itemsize=itemsize,
                pointer=lambda: _pointer(s), readonly=True,
                nulls=nulls, extra={"signature": (str(s.dtype), chunks > 1), "bits": bits,
                                    "chunks": chunks})


def _pointer(s: Any) -> int:
    if hasattr(s.array, "_pa_array"):
        from zerocopy.adapters.pyarrow import _chunk_pointer

        chunks = s.array._pa_array.chunks
        return _chunk_pointer(chunks[0]) if chunks else 0
    return int(_values(s).__array_interface__["data"][0])


def _frame_info(df: Any) -> Info:
    kinds = {str(t) for t in df.dtypes}
    column_dtypes = frozenset(_series_parts(df.iloc[:0, i])[0] for i in range(df.shape[1]))
    contiguous = all(_values(df.iloc[:, i]).flags.c_contiguous for i in range(df.shape[1])
                     if isinstance(df.dtypes.iloc[i], np.dtype))
    first = df.dtypes.iloc[0] if len(df.columns) else None
    dtype = name_of_numpy(first) if len(kinds) == 1 and isinstance(first, np.dtype) else None
    blocks = _block_count(df)
    # One block: df.to_numpy() is a view; its strides decide what importers can take.
    stacked = df.to_numpy().strides if blocks == 1 and dtype is not None else None
    # The pointer a table -> array hop starts from (JAX's alignment check reads it).
    pointer = (lambda: int(df.to_numpy().__array_interface__["data"][0])) if stacked else None
    return Info(NAME, df, kind=TABLE, dtype=dtype, shape=df.shape, strides=None,
                itemsize=first.itemsize if dtype else 8, readonly=True, pointer=pointer,
                extra={"signature": (blocks, tuple(map(str, df.dtypes)), contiguous, stacked),
                       "blocks": blocks,
                       "has_bool": "bool" in kinds, "column_dtypes": column_dtypes,
                       "contiguous_columns": contiguous, "stacked_strides": stacked})


def _block_count(df: Any) -> int:
    # pandas' block manager is internal; if it moves, we only lose the zero-copy fast path.
    try:
        return len(df._mgr.blocks)
    except AttributeError:
        return -1


def inspect(x: Any) -> Info:
    pd = _pd()
    if isinstance(x, pd.Series):
        return _series_info(x)
    if isinstance(x, pd.DataFrame):
        return _frame_info(x)
    from zerocopy.errors import UnsupportedObjectError, message

    raise UnsupportedObjectError(message(f"pandas {type(x).__name__} holds no array data",
                                         expected="Series or DataFrame"))


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a NumPy-backed Series (no nulls possible), read cheaply;
    nullable and Arrow-backed columns, and frames, take the slow lane."""
    dtype = getattr(x, "dtype", None)
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc":
        return None
    values = x.to_numpy()
    return (dtype, size_class(values.shape), values.strides)


def make(values: np.ndarray) -> Any:
    pd = _pd()
    return pd.Series(values.copy()) if values.ndim == 1 else pd.DataFrame(values.copy())


def to_host(x: Any) -> np.ndarray:
    return x.to_numpy()


# --------------------------------------------------------------- edges

def _values(s: Any) -> np.ndarray:
    """The column's data as NumPy without copying (no nulls: checked by the plan)."""
    array = s.array
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    if hasattr(array, "_pa_array"):
        chunks = array._pa_array.chunks
        if len(chunks) != 1:  # the plan copies chunked columns; a view would lose rows
            raise BufferError(f"an Arrow-backed column in {len(chunks)} chunks has no single buffer")
        return chunks[0].to_numpy(zero_copy_only=True)
    return array._data  # masked array: values without the mask


def _aligned(values: np.ndarray) -> np.ndarray:
    from zerocopy.adapters.numpy import aligned_copy

    return aligned_copy(values)


def _series_to_numpy(s: Any, options: Options) -> np.ndarray:
    return _values(s)


def _numpy_to_series(x: np.ndarray, options: Options) -> Any:
    return _pd().Series(x, copy=False)


def _numpy_to_frame(x: np.ndarray, options: Options) -> Any:
    return _pd().DataFrame(x, copy=False)


def _frame_to_numpy(df: Any, options: Options) -> np.ndarray:
    return df.to_numpy()


def _frame_to_numpy_copy(df: Any, options: Options) -> np.ndarray:
    from zerocopy.adapters.numpy import aligned_copy

    # One consolidated block: to_numpy() is a view, so this is the only copy.
    return aligned_copy(df.to_numpy())


def _frame_to_arrow(df: Any, options: Options) -> Any:
    pa = require("pyarrow")
    columns = [_column_to_arrow(df.iloc[:, i]) for i in range(df.shape[1])]
    return pa.table(columns, names=[str(n) for n in df.columns])


def _column_to_arrow(s: Any) -> Any:
    """Zero-copy for contiguous numeric columns and Arrow-backed ones; otherwise a copy
    (bool to bits, masked values to a validity bitmap, strided columns compacted)."""
    pa = require("pyarrow")
    if hasattr(s.array, "_pa_array"):
        return s.array._pa_array
    if isinstance(s.dtype, np.dtype) and s.dtype != np.bool_:
        from zerocopy.adapters import pyarrow as arrow

        return arrow._numpy_to_column(np.ascontiguousarray(_values(s)), Options())
    return pa.array(s, from_pandas=False)  # masked/bool: mask becomes validity


def _arrow_to_frame(t: Any, options: Options) -> Any:
    pd = _pd()
    # A RecordBatch's columns are Arrays, a Table's ChunkedArrays: both become Series.
    columns = {name: _arrow_column_to_series(t.column(i), options)
               for i, name in enumerate(t.schema.names)}
    return pd.DataFrame(columns, copy=False)


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
    if info.dtype is None or info.dtype.startswith(("arrow:", "pandas:")):
        return Refusal(f"{info.dtype or 'mixed dtypes'} cannot become one tensor",
                       "select numeric columns of one dtype first", fixable=False,
                       error=_unsupported())
    return None


def _arrow_can_hold(info: Info, options: Options) -> Refusal | None:
    from zerocopy.adapters.pyarrow import dtypes as arrow_dtypes
    from zerocopy.errors import UnsupportedDtypeError

    names = info.extra.get("column_dtypes", frozenset({info.dtype}))
    lacking = sorted(n for n in names if n in SHARED_DTYPES and n not in arrow_dtypes())
    if lacking:
        return Refusal(f"Arrow has no {', '.join(lacking)}", "cast those columns first",
                       fixable=False, error=UnsupportedDtypeError)
    return None


def _has_columns(info: Info, options: Options) -> Refusal | None:
    if info.shape[1] > 0:
        return None
    return Refusal("a DataFrame without columns has no dtype, so the round trip would lose it",
                   "keep zero-column data as an array", fixable=False)


def _unsupported() -> type[Exception]:
    from zerocopy.errors import UnsupportedDtypeError

    return UnsupportedDtypeError


def _ndim(n: int) -> Any:
    def check(info: Info, options: Options) -> Refusal | None:
        return None if len(info.shape) == n else Refusal(f"needs {n}-D data", fixable=False)

    return check


_READONLY = "pandas 3 hands out read-only views (copy-on-write); the result is read-only"

EDGES = (
    Edge(NAME, "numpy", "array interface", "s.to_numpy()", _series_to_numpy, cost=0.9,
         kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(checks.no_nulls("NumPy"), _shared_numeric, _not_bits),
         caveat=lambda info: _READONLY),
    Edge(NAME, "numpy", "copy", "s.to_numpy(copy=True)", lambda s, o: _aligned(s.to_numpy()),
         copies=True, cost=9.0, kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(checks.no_nulls("NumPy"), _shared_numeric)),
    Edge("numpy", NAME, "array interface", "pd.Series(x, copy=False)", _numpy_to_series, cost=9.0,
         result_kind=COLUMN, check=_ndim(1)),
    Edge("numpy", NAME, "array interface", "pd.DataFrame(x, copy=False)", _numpy_to_frame, cost=15.0,
         result_kind=TABLE, check=checks.all_of(_ndim(2), _has_columns)),
    Edge(NAME, "numpy", "array interface (one block)", "df.to_numpy()", _frame_to_numpy, cost=2.0,
         project=table_to_f_order,
         kinds=frozenset({TABLE}), result_kind=ARRAY,
         check=checks.all_of(_shared_numeric, _one_block), caveat=lambda info: _READONLY),
    block_edge(NAME, lambda df: [_values(df.iloc[:, i]) for i in range(df.shape[1])],
               table_to_f_order, _READONLY),
    Edge(NAME, "numpy", "copy", "df.to_numpy(copy=True)", _frame_to_numpy_copy, copies=True,
         cost=20.0, kinds=frozenset({TABLE}), result_kind=ARRAY, check=_shared_numeric),
    Edge(NAME, "pyarrow", "Arrow buffers, column by column",
         "pa.table([pa.Array.from_buffers(...) per column])", _frame_to_arrow, cost=30.0,
         kinds=frozenset({TABLE}),
         check=checks.all_of(_arrow_can_hold,
                             lambda info, o: Refusal("bool columns are bit-packed in Arrow")
                             if info.extra.get("has_bool") else None,
                             lambda info, o: None if info.extra.get("contiguous_columns", True)
                             else Refusal("the frame's columns are strided (a row-major block); "
                                          "an Arrow column is one contiguous buffer"))),
    Edge(NAME, "pyarrow", "copy", "pa.table(...) with bool columns packed into bits", _frame_to_arrow,
         copies=True, cost=60.0, kinds=frozenset({TABLE}), check=_arrow_can_hold),
    Edge("pyarrow", NAME, "Arrow buffers, column by column",
         "pd.DataFrame({name: Series(zero-copy column)}, copy=False)", _arrow_to_frame, cost=40.0,
         kinds=frozenset({TABLE})),
    Edge(NAME, "pyarrow", "Arrow buffer", "pa.Array.from_buffers(...) over s.to_numpy()",
         _series_to_arrow, cost=3.0, kinds=frozenset({COLUMN}),
         check=checks.all_of(_arrow_can_hold,
                             checks.layouts("an Arrow column", frozenset({"C"}),
                                            "is one contiguous buffer"),
                             lambda info, o: Refusal("bool is bit-packed in Arrow")
                             if info.dtype == "bool" else None)),
    Edge(NAME, "pyarrow", "copy", "pa.array(s) (bool packed into bits)", _series_to_arrow,
         copies=True, cost=6.0, kinds=frozenset({COLUMN}), check=_arrow_can_hold),
    # copy=True within pandas.
    Edge(NAME, NAME, "copy", "x.copy(deep=True)", lambda x, o: x.copy(deep=True), copies=True,
         cost=6.0, kinds=frozenset({COLUMN, TABLE})),
    Edge("pyarrow", NAME, "Arrow buffer", "pd.Series(zero-copy column)", _arrow_column_to_series,
         cost=12.0, kinds=frozenset({COLUMN})),
)
