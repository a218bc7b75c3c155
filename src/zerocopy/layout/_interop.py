"""Every hop between a framework object and the NumPy/CuPy arrays the kernels work on.

The layout engine only ever computes on NumPy (CPU) or CuPy (GPU) arrays. This module is
the one place that converts inputs to them and results back, using each framework's own
zero-copy one-liner, so it can later be swapped for ``zerocopy.to``. Frameworks are
imported inside the functions: importing the layout package imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._detect import framework_of
from ..errors import (
    LayoutError,
    NullValuesError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)

__all__ = [
    "TABLE_TARGETS",
    "array_framework",
    "as_cupy",
    "as_numpy",
    "from_cupy",
    "from_numpy",
    "is_gpu",
    "make_table",
    "table_columns",
    "table_rows",
]

# Targets that are tables rather than a dict of arrays.
TABLE_TARGETS = frozenset({"pyarrow", "pyarrow.Table", "pandas", "polars", "cudf"})
_ARRAY_TARGETS = frozenset({"numpy", "torch", "jax", "tensorflow", "cupy", "numba"})


def array_framework(obj: object) -> str:
    """Framework name used for results that should look like ``obj``."""
    return framework_of(obj) or "numpy"


def is_gpu(obj: object) -> bool:
    """True for arrays in GPU memory (CuPy, Numba CUDA, cuDF, torch CUDA, JAX on GPU)."""
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    name = framework_of(obj)
    if name == "torch":
        return bool(getattr(obj, "is_cuda", False))
    if name == "jax":
        devices = getattr(obj, "devices", None)
        return bool(devices) and any(d.platform == "gpu" for d in devices())
    return name == "cudf"


def as_numpy(obj: object) -> np.ndarray:
    """A NumPy view of a CPU array of any framework (a copy only where it has no view)."""
    if isinstance(obj, np.ndarray):
        return obj
    name = framework_of(obj)
    if name == "torch":
        return obj.detach().resolve_conj().resolve_neg().numpy()
    if name == "pyarrow":
        return _arrow_to_numpy(obj, "column")
    if name in {"pandas", "polars"}:
        return table_columns(obj.to_frame())[1][0]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return np.frombuffer(obj, np.uint8)
    try:  # jax, tensorflow, and anything with __array__ or the buffer protocol
        return np.asarray(obj)
    except Exception as exc:
        raise UnsupportedObjectError(message(
            "cannot read this object as an array", expected="an array of a supported "
            "framework, a table, or a bytes-like object", got=type(obj).__name__)) from exc


def from_numpy(arr: np.ndarray, like: str) -> object:
    """``arr`` as an array of framework ``like``, sharing memory wherever it can."""
    if like == "numpy":
        return arr
    if like == "torch":
        import torch

        # torch refuses non-writable memory with a warning; DLPack shares it silently.
        return torch.from_numpy(arr) if arr.flags.writeable else torch.from_dlpack(arr)
    if like == "jax":
        import jax

        return jax.device_put(arr)
    if like == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(arr)
    if like in {"cupy", "numba"}:
        import cupy

        return from_cupy(cupy.asarray(arr), like)
    raise UnsupportedObjectError(message(
        f"unknown array target {like!r}", expected=f"one of {sorted(_ARRAY_TARGETS)}",
        got=repr(like)))


def as_cupy(obj: object):
    """A CuPy view of a GPU array of any framework (DLPack or CUDA Array Interface)."""
    import cupy

    if isinstance(obj, cupy.ndarray):
        return obj
    if framework_of(obj) in {"torch", "jax"}:
        return cupy.from_dlpack(obj)
    return cupy.asarray(obj)


def from_cupy(arr, like: str) -> object:
    """A CuPy array as an array of framework ``like`` (no copy)."""
    if like == "cupy":
        return arr
    if like == "torch":
        import torch

        return torch.from_dlpack(arr)
    if like == "jax":
        import jax.numpy as jnp

        return jnp.from_dlpack(arr)
    if like == "numba":
        from numba import cuda

        return cuda.as_cuda_array(arr)
    if like == "numpy":
        return arr.get()
    raise UnsupportedObjectError(message(
        f"unknown GPU array target {like!r}", expected="cupy, torch, jax or numba",
        got=repr(like)))


# ---------------------------------------------------------------------------- tables in


def table_columns(table: object) -> tuple[list[str], list]:
    """Names and arrays (NumPy, or CuPy for GPU tables) of a table or mapping of columns.

    Refuses, with a typed error, what a numeric column cannot hold: nulls, strings,
    nested or object data.
    """
    name = framework_of(table)
    if isinstance(table, Mapping):
        names = [str(k) for k in table]
        return names, [_as_array(v) for v in table.values()]
    if hasattr(table, "column_arrays"):  # our ColumnBlock
        return list(table.names), list(table.column_arrays())
    if name == "pyarrow":
        return list(table.column_names), [_arrow_to_numpy(c, n) for n, c in
                                          zip(table.column_names, table.columns, strict=True)]
    if name == "pandas":
        return [str(c) for c in table.columns], _pandas_columns(table)
    if name == "polars":
        return list(table.columns), [_polars_to_numpy(s) for s in table.get_columns()]
    if name == "cudf":
        return [str(c) for c in table.columns], [_cudf_to_cupy(table[c], str(c))
                                                 for c in table.columns]
    raise UnsupportedObjectError(message(
        "not a table", expected="a pyarrow Table/RecordBatch, pandas or polars DataFrame, "
        "cuDF DataFrame, ColumnBlock, or a mapping of name -> array",
        got=type(table).__name__))


def table_rows(table: object) -> int:
    """The row count of a table, which its columns cannot give when it has none."""
    if isinstance(table, Mapping):
        return _rows([_as_array(v) for v in table.values()][:1])
    for attribute in ("num_rows", "height"):  # pyarrow, polars
        n = getattr(table, attribute, None)
        if isinstance(n, int):
            return n
    shape = getattr(table, "shape", None)  # pandas, cuDF, ColumnBlock
    return int(shape[0]) if shape else 0


def _as_array(value: object):
    if type(value) is np.ndarray:  # the common case, without the framework questions
        return value
    return as_cupy(value) if is_gpu(value) else as_numpy(value)


def _no_nulls(count: int, name: str) -> None:
    if count:
        raise NullValuesError(message(
            f"column {name!r} has {count} null values, which a tensor cannot hold",
            expected="no nulls", got=f"{count} nulls",
            hint="fill them first (fill_null / fillna), e.g. with NaN for floats"))


def _not_numeric(name: str, what: object) -> UnsupportedDtypeError:
    return UnsupportedDtypeError(message(
        f"column {name!r} is not a fixed-width numeric column",
        expected="bool, int, uint, float or temporal values", got=str(what),
        hint="strings and nested values have no tensor form: drop or encode the column"))


def _arrow_to_numpy(col, name: str) -> np.ndarray:
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    _no_nulls(col.null_count, name)
    if pa.types.is_fixed_size_list(col.type):
        inner = _arrow_to_numpy(col.flatten(), name)
        return inner.reshape(len(col), col.type.list_size, *inner.shape[1:])
    fixed = pa.types.is_primitive(col.type) or pa.types.is_temporal(col.type)
    if not fixed or pa.types.is_dictionary(col.type):
        raise _not_numeric(name, col.type)
    # Booleans are bit-packed in Arrow: the one primitive that must be unpacked (copied).
    return col.to_numpy(zero_copy_only=not pa.types.is_boolean(col.type))


def _pandas_columns(df) -> list:
    """NumPy views of the numeric block columns (the block manager read once, not an iloc
    per column); extension and object columns through the checked per-column path."""
    from ..adapters.pandas import column_views

    views = column_views(df)
    return [v if v is not None and v.dtype.kind in "biufcmM"
            else _pandas_to_numpy(df.iloc[:, i], str(df.columns[i])) for i, v in enumerate(views)]


def _pandas_to_numpy(series, name: str) -> np.ndarray:
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            raise UnsupportedObjectError(message(
                f"column {name!r} holds Python objects", expected="a numeric dtype",
                got="object", hint="convert it with astype() to a numeric dtype first"))
        return series.to_numpy(copy=False)
    np_dtype = getattr(dtype, "numpy_dtype", None)
    if np_dtype is None or np_dtype.kind not in "biufmM":
        raise _not_numeric(name, dtype)
    _no_nulls(int(series.isna().sum()), name)
    return series.to_numpy(dtype=np_dtype)


def _polars_to_numpy(series) -> np.ndarray:
    dtype = series.dtype
    if not (dtype.is_numeric() or dtype.is_temporal() or str(dtype) == "Boolean"
            or str(dtype).startswith("Array")):
        raise _not_numeric(series.name, dtype)
    _no_nulls(series.null_count(), series.name)
    return series.to_numpy()


def _cudf_to_cupy(series, name: str):
    _no_nulls(int(series.null_count), name)
    if series.dtype.kind not in "biufcmM":
        raise _not_numeric(name, series.dtype)
    return as_cupy(series)


# --------------------------------------------------------------------------- tables out


def make_table(names: list[str], columns: list, to: str, rows: int | None = None) -> object:
    """Build target ``to`` (a table, or a dict of framework arrays) over ``columns``.
    ``rows``: the row count, which a table without columns keeps (default: the columns')."""
    rows = _rows(columns) if rows is None or columns else rows
    if to in _ARRAY_TARGETS:
        convert = from_cupy if columns and not isinstance(columns[0], np.ndarray) else from_numpy
        return {n: convert(c, to) for n, c in zip(names, columns, strict=True)}
    if to in {"pyarrow", "pyarrow.Table"}:
        import pyarrow as pa

        arrays = [_numpy_to_arrow(c, n) for n, c in zip(names, columns, strict=True)]
        batch = (pa.RecordBatch.from_arrays(arrays, names=names) if arrays
                 else pa.record_batch({"_": pa.nulls(rows)}).drop_columns(["_"]))
        return batch if to == "pyarrow" else pa.Table.from_batches([batch])
    if to == "pandas":
        import pandas as pd

        _only_1d(names, columns, to)
        if not columns:
            return pd.DataFrame(index=pd.RangeIndex(rows))
        return pd.DataFrame(dict(zip(names, columns, strict=True)), copy=False)
    if to == "polars":
        import polars as pl

        series = [pl.Series(n, _polars_column(c, n)) for n, c in zip(names, columns, strict=True)]
        # Rows without columns keep their count (pl.DataFrame([]) would have none).
        return pl.DataFrame(series) if series else pl.DataFrame(height=rows)
    if to == "cudf":
        import cudf

        _only_1d(names, columns, to)
        return cudf.DataFrame(dict(zip(names, columns, strict=True)))
    raise UnsupportedObjectError(message(
        f"unknown target {to!r}", expected=f"one of {sorted(TABLE_TARGETS | _ARRAY_TARGETS)}",
        got=repr(to)))


# Polars' temporal units; other NumPy units would raise Polars' own ValueError.
_POLARS_UNITS = {"m": frozenset({"ms", "us", "ns"}), "M": frozenset({"D", "ms", "us", "ns"})}


def _polars_column(col: np.ndarray, name: str) -> np.ndarray:
    """``col`` if Polars holds its dtype as a typed column; a typed error otherwise (Polars
    would store complex and void fields as Python ``Object`` columns)."""
    kind = col.dtype.kind
    if kind in "biuf":
        return col
    if kind in _POLARS_UNITS:
        unit = np.datetime_data(col.dtype)[0]
        if unit in _POLARS_UNITS[kind]:
            return col
        what = "Duration" if kind == "m" else "Datetime"
        raise UnsupportedDtypeError(message(
            f"column {name!r} is {col.dtype}, a unit Polars' {what} does not have",
            expected=f"units {', '.join(sorted(_POLARS_UNITS[kind]))}", got=str(col.dtype),
            hint=f"cast the field first, e.g. astype('{kind}8[ms]') (exact for whole seconds)"))
    raise UnsupportedDtypeError(message(
        f"column {name!r} is {col.dtype}, which Polars would only hold as Python objects",
        expected="bool, int, uint, float or temporal fields", got=str(col.dtype),
        hint="complex: split into real and imaginary fields (x.real, x.imag); or use "
             "to='numpy' / to='pandas'"))


def _rows(columns: list) -> int:
    return int(columns[0].shape[0]) if columns else 0


def _only_1d(names: list[str], columns: list, to: str) -> None:
    for n, c in zip(names, columns, strict=True):
        if c.ndim != 1:
            raise LayoutError(message(
                f"column {n!r} is a fixed-size array column, which {to} cannot hold",
                expected="1-D columns", got=f"shape {c.shape}",
                hint="use to='pyarrow' (FixedSizeList) or to='polars' (Array)"))


def _numpy_to_arrow(col: np.ndarray, name: str):
    import pyarrow as pa

    if col.dtype.kind == "c":
        raise UnsupportedDtypeError(message(
            f"column {name!r} is complex, which Arrow has no type for",
            expected="real numbers", got=str(col.dtype),
            hint="split it into real and imaginary columns, or use to='numpy'"))
    if col.ndim == 1:
        return pa.array(col)
    flat = _numpy_to_arrow(np.ascontiguousarray(col).reshape(len(col) * col.shape[1],
                                                             *col.shape[2:]), name)
    return pa.FixedSizeListArray.from_arrays(flat, col.shape[1])
