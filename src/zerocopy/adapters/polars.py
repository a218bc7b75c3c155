"""Polars Series (columns) and DataFrames (tables). Arrow memory underneath: bool is bits,
nulls are a validity bitmap, and a column may be split in chunks."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import require
from zerocopy.adapters.numpy import aligned_copy, columns_to_array, pointer
from zerocopy.adapters.pyarrow import chunk_pointer, deep_copy, table_to_f_order
from zerocopy.errors import (
    FrameworkNotInstalledError,
    LayoutError,
    UnsupportedConversionError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)
from zerocopy.exchange import checks
from zerocopy.exchange.blocks import block_edge, copy_refused, no_nulls, not_numeric
from zerocopy.exchange.edges import Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, COLUMN, TABLE, Info, size_class

NAME = "polars"
IMPORT_NAME = "polars"
PIP = "polars"
BOOL_BITS = True  # bool is one bit per value, as in Arrow
PROTOCOLS = {"exports": ("Arrow PyCapsule stream", "array interface (to_numpy)"),
             "imports": ("Arrow PyCapsule", "array interface")}
_NAMES = {"Boolean": "bool", "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64",
          "UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64",
          "Float16": "float16", "Float32": "float32", "Float64": "float64"}
_DTYPES = frozenset(_NAMES.values())


def _pl() -> Any:
    return require("polars")


def dtypes() -> frozenset[str]:
    return _DTYPES


def version() -> str:
    return str(_pl().__version__)


def devices() -> list[str]:
    return ["cpu"]


def _dtype_name(dtype: Any) -> str:
    return _NAMES.get(str(dtype), f"polars:{dtype}")


# Polars memory is Arrow memory, immutable, and pl.read_ipc maps files read-only by default:
# torch (no read-only tensors) gets a stated copy under copy=None (checks.write_guard).
IMMUTABLE = ("Polars memory is immutable Arrow memory and may map a read-only file "
             "(pl.read_ipc(memory_map=True)): a write could change shared data or crash the process")


def _series_info(s: Any) -> Info:
    dtype = _dtype_name(s.dtype)
    chunks = s.n_chunks()
    itemsize = np.dtype(dtype).itemsize if dtype in _DTYPES else 8
    return Info(NAME, s, kind=COLUMN, dtype=dtype, shape=(len(s),), strides=None, itemsize=itemsize,
                pointer=lambda: _series_pointer(s), readonly=True, nulls=s.null_count(),
                extra={"signature": (chunks > 1,), "chunks": chunks, "bits": dtype == "bool",
                       "null_columns": (s.name,) if s.name else (), "write_guard": IMMUTABLE})


def _series_pointer(s: Any) -> int:
    # The Arrow C stream exports the chunks as they are (s.to_arrow() would rechunk the
    # source in place); the first chunk's data buffer is where a view would start. Types
    # whose Arrow form is built on export have no pointer that says where the data lives.
    if _built_on_export(str(s.dtype)):
        return 0
    try:
        pa = require("pyarrow")
    except FrameworkNotInstalledError:
        return _view_pointer(s)
    try:
        chunks = pa.chunked_array(s)
        return chunk_pointer(chunks.chunk(0)) if chunks.num_chunks else 0
    except Exception:  # types without a data buffer (nested): no view, no alignment question
        return 0


def _view_pointer(s: Any) -> int:
    """Without pyarrow: where NumPy's view of the Series starts. A 0 here would read as
    aligned, and a misaligned slice went to TensorFlow as it was (the process aborted)."""
    try:
        return pointer(s.to_numpy(allow_copy=False))
    except Exception:  # nulls, bools, nested: no view, so every route into an array copies
        return 0


# Polars keeps strings as views and categoricals under a global cache: their Arrow form
# (large_string, a dictionary) is built at each export, i.e. copied.
_BUILT = ("String", "Categorical", "Enum", "Binary", "Object")


def _built_on_export(name: str) -> bool:
    return any(word in name for word in _BUILT)


def _arrow_as_is(info: Info, options: Options) -> Refusal | None:
    names = info.extra.get("column_dtypes") or {info.dtype}
    built = sorted(str(n).removeprefix("polars:") for n in names if _built_on_export(str(n)))
    if not built:
        return None
    return Refusal(f"Polars builds the Arrow form of {', '.join(built)} at export "
                   "(string views, categorical dictionaries): a copy",
                   "cast to a numeric or temporal type to share, or let zerocopy copy (copy=None)")


def _frame_info(df: Any) -> Info:
    kinds = frozenset(_dtype_name(t) for t in df.dtypes)
    dtype = next(iter(kinds)) if len(kinds) == 1 else None
    counts = df.null_count().row(0) if df.width else ()
    chunks = max(df.n_chunks("all"), default=1)
    first = df.to_series(0) if df.width else None  # where a stacked view would start
    return Info(NAME, df, kind=TABLE, dtype=dtype, shape=df.shape, strides=None,
                pointer=(lambda: _series_pointer(first)) if first is not None else None,
                itemsize=np.dtype(dtype).itemsize if dtype in _DTYPES else 8, readonly=True,
                nulls=int(sum(counts)),
                extra={"signature": (tuple(df.columns), chunks > 1), "column_dtypes": kinds,
                       "chunks": chunks, "bits": "bool" in kinds,
                       "null_columns": tuple(n for n, c in zip(df.columns, counts, strict=True) if c)[:5],
                       "write_guard": IMMUTABLE})


def inspect(x: Any) -> Info:
    pl = _pl()
    if isinstance(x, pl.Series):
        return _series_info(x)
    if isinstance(x, pl.DataFrame):
        return _frame_info(x)
    raise UnsupportedObjectError(message(f"polars {type(x).__name__} holds no data to share",
                                         expected="Series or DataFrame",
                                         hint="collect() a LazyFrame first"))


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a Polars Series, read cheaply (frames take the slow lane)."""
    # By class name: hasattr(series, "columns") costs ~13 us (Polars' __getattr__ fallback
    # builds its error message), more than the conversion itself.
    if type(x).__name__ != "Series":
        return None
    # The Rust series behind it (what Series.dtype, len() and the counts call): 0.72 ->
    # 0.41 us a key on the VM, paid by every repeated conversion from Polars.
    inner = getattr(x, "_s", None)
    if inner is None:  # a Polars without the attribute: its public calls, same key
        return (x.dtype, size_class((len(x),)), x.n_chunks() > 1, x.null_count() > 0)
    n = inner.len()
    return (inner.dtype(), n if n < 2 else 2, inner.n_chunks() > 1, inner.null_count() > 0)


def fast_pointer(x: Any) -> int:
    """Where the data of a Series with a fast key starts (Info.ptr)."""
    return _series_pointer(x)


def make(values: np.ndarray) -> Any:
    """A probe over 64-byte aligned buffers (Polars wraps NumPy numbers without a copy), like
    the matrix's sources: ``zerocopy explain`` and ``zerocopy matrix`` see the same object."""
    pl = _pl()
    if values.ndim == 1:
        return pl.Series(aligned_copy(values))
    return pl.DataFrame({f"column_{i}": aligned_copy(values[:, i]) for i in range(values.shape[1])})


def to_host(x: Any) -> np.ndarray:
    return x.to_numpy()


# --------------------------------------------------------------- edges

def _series_to_numpy(s: Any, options: Options) -> np.ndarray:
    return s.to_numpy(allow_copy=False)


def _numpy_to_series(x: np.ndarray, options: Options) -> Any:
    return _pl().Series(x)


def _series_to_arrow(s: Any, options: Options) -> Any:
    if s.n_chunks() == 1:
        return s.to_arrow()
    # Several chunks: a ChunkedArray over them (to_arrow() would copy them into one buffer).
    return require("pyarrow").chunked_array(s)


def _arrow_to_series(x: Any, options: Options) -> Any:
    # pl.Series(chunked) rechunks (a copy); from_arrow(rechunk=False) keeps Arrow's buffers.
    # One Array has nothing to rechunk, and pl.Series takes it in half the time (2.2 vs
    # 4.9 us, VM): the same buffers either way, which the copy promise checks.
    if type(x).__name__ == "ChunkedArray":
        return _pl().from_arrow(x, rechunk=False)
    return _pl().Series(x)


def _frame_to_arrow(df: Any, options: Options) -> Any:
    return df.to_arrow()


def _to_arrow_copy(x: Any, options: Options) -> Any:
    """New Arrow buffers for every column (to_arrow() shares numeric ones)."""
    pl = _pl()
    if isinstance(x, pl.DataFrame) and not x.width:  # rows without columns keep their rows
        pa = require("pyarrow")
        return pa.table({"_": pa.nulls(x.height)}).drop_columns(["_"])
    arrow = x.to_arrow() if isinstance(x, pl.DataFrame) else _series_to_arrow(x, options)
    return deep_copy(arrow)


def _arrow_to_frame(t: Any, options: Options) -> Any:
    pl = _pl()
    if not t.num_columns:  # rows without columns: from_arrow would keep the rows, be sure
        return pl.DataFrame(height=t.num_rows)
    return pl.from_arrow(t, rechunk=False)


def _frame_to_numpy_copy(df: Any, options: Options) -> np.ndarray:
    return columns_to_array([s.to_numpy() for s in df.iter_columns()], df.height,
                            np.dtype(_dtype_name(df.dtypes[0])))


def _deep_copy(x: Any, options: Options) -> Any:
    pl = _pl()
    if isinstance(x, pl.DataFrame) and not x.width:  # rows without columns: keep the height
        return pl.DataFrame(height=x.height)
    copied = pl.from_arrow(deep_copy(x.to_arrow()))
    return copied.rename(x.name) if isinstance(x, pl.Series) else copied


def _series_to_numpy_copy(s: Any, options: Options) -> np.ndarray:
    return aligned_copy(s.to_numpy())


def _one_chunk(info: Info, options: Options) -> Refusal | None:
    if info.extra.get("chunks", 1) > 1:
        return Refusal(f"the column is split into {info.extra['chunks']} chunks",
                       "s.rechunk() copies it into one buffer")
    return None


def _not_bits(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bool":
        return Refusal("Polars stores bool as bits, NumPy as bytes", "use UInt8 to share")
    return None


def _ndim1(info: Info, options: Options) -> Refusal | None:
    return None if len(info.shape) == 1 else Refusal("a Series is 1-D", fixable=False)


def _unique_names(info: Info, options: Options) -> Refusal | None:
    """A Polars frame names each column once; pandas and Arrow tables may repeat a name
    (pl.from_arrow raised its DuplicateError from inside the plan)."""
    repeated = info.extra.get("repeated_names")
    if not repeated:
        return None
    return Refusal(f"a Polars DataFrame needs unique column names, and {', '.join(map(repr, repeated))} "
                   f"appear{'s' if len(repeated) == 1 else ''} more than once",
                   "rename the columns first (pandas: df.columns = [...]; Arrow: "
                   "table.rename_columns([...])), or keep the table in pandas or Arrow, which "
                   "allow repeated names", fixable=False, error=LayoutError)


def _tensor_dtype(info: Info, options: Options) -> Refusal | None:
    """Strings, categoricals, lists, structs and temporal columns have no array form:
    refused with a typed error before Arrow's own (ArrowInvalid) could escape."""
    names = info.extra.get("column_dtypes") or {info.dtype}
    odd = sorted(str(n).removeprefix("polars:") for n in names if n not in SHARED_DTYPES)
    if not odd:
        return None
    return Refusal(f"an array has no {', '.join(odd)} dtype",
                   "encode or cast the column first: s.to_physical() (categorical codes, temporal "
                   "integers), s.cast(pl.Float32), s.list.to_array(width) for equal-length lists; "
                   "or keep it in a table framework (pandas, pyarrow)",
                   fixable=False, error=UnsupportedDtypeError)


_NUMERIC = checks.dtype_in("Polars", dtypes)


# --------------------------------------------------------------- tables <-> columns
# zerocopy.layout reads and writes tables through these two (the pyarrow module has the
# same pair), and the column-block edge reads them too.

def columns(df: Any, *, copy: bool | None = None) -> list[tuple[str, np.ndarray]]:
    """A frame's columns as (name, NumPy array): read-only views of Polars' buffers, copies
    only where Polars has no view (chunks, bool bits; NotZeroCopyError under
    ``copy=False``); Array columns as ``(rows, width)`` arrays. Nulls and columns without
    a numeric form raise typed errors."""
    pairs = [(s.name, _column_values(s, copy)) for s in df.iter_columns()]
    return [(name, values.copy()) for name, values in pairs] if copy else pairs


def _column_values(s: Any, copy: bool | None) -> np.ndarray:
    dtype = s.dtype
    if not (dtype.is_numeric() or dtype.is_temporal() or str(dtype) == "Boolean"
            or str(dtype).startswith("Array")):
        raise not_numeric(s.name, dtype)
    no_nulls(s.null_count(), s.name)
    if copy is not False:
        return s.to_numpy()
    try:
        return s.to_numpy(allow_copy=False)
    except RuntimeError as exc:  # Polars: "copy not allowed" (chunks, bool bits)
        raise copy_refused(s.name, "has no single NumPy-compatible buffer (chunks or bits)") from exc


def table_from_columns(names: Sequence[str], arrays: Sequence[np.ndarray], *, rows: int = 0,
                       kind: str | None = None, copy: bool | None = None) -> Any:
    """A DataFrame over NumPy ``arrays`` (Polars wraps contiguous numbers without a copy;
    ``(rows, width)`` arrays become Array columns); ``rows``: the row count kept when there
    are no columns. ``copy=False`` refuses what Polars must copy (bool, strided)."""
    pl = _pl()
    if kind not in (None, "DataFrame"):
        raise UnsupportedConversionError(message(f"polars has no table type {kind!r}",
                                                 expected="DataFrame", got=repr(kind)))
    series = []
    for name, array in zip(names, arrays, strict=True):
        _polars_can_hold(array, str(name))
        if copy is False and (array.dtype.kind == "b" or not array.flags.c_contiguous):
            raise copy_refused(str(name), "is bool or strided, which a Polars column cannot hold as it is")
        series.append(pl.Series(str(name), array))
    # Rows without columns keep their count (pl.DataFrame([]) would have none).
    return pl.DataFrame(series) if series else pl.DataFrame(height=rows)


# Polars' temporal units; other NumPy units would raise Polars' own ValueError.
_UNITS = {"m": frozenset({"ms", "us", "ns"}), "M": frozenset({"D", "ms", "us", "ns"})}


def _polars_can_hold(array: np.ndarray, name: str) -> None:
    """Refuse, with a typed error, what Polars would keep only as Python ``Object`` values
    (complex, void) or reject (temporal units it lacks)."""
    kind = array.dtype.kind
    if kind in "biuf":
        return
    if kind in _UNITS:
        unit = np.datetime_data(array.dtype)[0]
        if unit in _UNITS[kind]:
            return
        what = "Duration" if kind == "m" else "Datetime"
        raise UnsupportedDtypeError(message(
            f"column {name!r} is {array.dtype}, a unit Polars' {what} does not have",
            expected=f"units {', '.join(sorted(_UNITS[kind]))}", got=str(array.dtype),
            hint=f"cast the field first, e.g. astype('{kind}8[ms]') (exact for whole seconds)"))
    raise UnsupportedDtypeError(message(
        f"column {name!r} is {array.dtype}, which Polars would only hold as Python objects",
        expected="bool, int, uint, float or temporal fields", got=str(array.dtype),
        hint="complex: split into real and imaginary fields (x.real, x.imag); or use "
             "to='numpy' / to='pandas'"))


def _typed_block_edge() -> Edge:
    """The column-block edge, refusing columns without an array form first (a typed error
    with Polars' own hint, before any detour through other frameworks is tried)."""
    edge = block_edge(NAME, columns, table_to_f_order, _READONLY)
    return replace(edge, check=checks.all_of(_tensor_dtype, edge.check))
_READONLY = "Polars memory is immutable: the NumPy view is read-only"

EDGES = (
    Edge(NAME, "numpy", "array interface", "s.to_numpy(allow_copy=False)", _series_to_numpy,
         fast=lambda info, source: operator.methodcaller("to_numpy", allow_copy=False),
         cost=0.6, kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(_tensor_dtype, checks.no_nulls("NumPy"), _one_chunk, _not_bits),
         caveat=lambda info: _READONLY),
    Edge(NAME, "numpy", "copy", "s.to_numpy() into an aligned buffer", _series_to_numpy_copy, copies=True,
         cost=5.0, kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(_tensor_dtype, checks.no_nulls("NumPy"))),
    Edge("numpy", NAME, "array interface", "pl.Series(x)", _numpy_to_series, cost=6.5,
         fast=lambda info, source: _pl().Series,
         result_kind=COLUMN,
         check=checks.all_of(_ndim1, _NUMERIC, _not_bits,
                             checks.layouts("a Polars column", frozenset({"C"}),
                                            "is one contiguous buffer"))),
    Edge("numpy", NAME, "copy", "pl.Series(np.array(x))  (bool packed into bits)",
         lambda x, o: _pl().Series(np.array(x)),
         copies=True, immutable_result=True,
         cost=10.0, result_kind=COLUMN, check=checks.all_of(_ndim1, _NUMERIC)),
    Edge(NAME, "pyarrow", "Arrow C data", "s.to_arrow()", _series_to_arrow, cost=2.0,
         kinds=frozenset({COLUMN}), check=_arrow_as_is),
    Edge(NAME, "pyarrow", "copy", "s.to_arrow() into new Arrow buffers", _to_arrow_copy, copies=True,
         immutable_result=True, cost=4.0, kinds=frozenset({COLUMN})),
    Edge("pyarrow", NAME, "Arrow C data", "pl.Series(x); chunked: pl.from_arrow(x, rechunk=False)",
         _arrow_to_series, cost=5.5,
         kinds=frozenset({COLUMN})),
    Edge(NAME, "pyarrow", "Arrow C stream", "df.to_arrow()", _frame_to_arrow, cost=5.0,
         kinds=frozenset({TABLE}), check=_arrow_as_is),
    Edge(NAME, "pyarrow", "copy", "df.to_arrow() into new Arrow buffers", _to_arrow_copy, copies=True,
         immutable_result=True, cost=10.0, kinds=frozenset({TABLE})),
    Edge("pyarrow", NAME, "Arrow C stream", "pl.from_arrow(x, rechunk=False)", _arrow_to_frame, cost=8.0,
         kinds=frozenset({TABLE}), check=_unique_names),
    _typed_block_edge(),
    # copy=True within Polars: clone() shares buffers, so the copy goes through new Arrow buffers.
    Edge(NAME, NAME, "copy", "Arrow buffers copied, then pl.from_arrow", _deep_copy, copies=True,
         immutable_result=True, cost=6.0, kinds=frozenset({COLUMN, TABLE})),
    Edge(NAME, "numpy", "copy", "aligned C-order array filled column by column", _frame_to_numpy_copy,
         copies=True,
         cost=20.0, kinds=frozenset({TABLE}), result_kind=ARRAY,
         check=checks.all_of(_tensor_dtype, checks.one_dtype, checks.no_nulls("NumPy"))),
)
