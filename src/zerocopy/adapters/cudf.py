"""cuDF Series and DataFrames (GPU columns).

Proven on the GPU test machine (H200, cuDF 26.10 brought in parts with NumPy 2.4.6:
tests/exchange/test_gpu_cudf.py). A Series leaves through ``Series.values`` (a CuPy view
of a null-free numeric column, then CuPy's CAI/DLPack edges) and arrives from anything
with ``__cuda_array_interface__`` (``cudf.Series(x)`` over CAI). cuDF's ``to_dlpack``
always copies and is never used. A DataFrame becomes one 2-D array only by a copy
(``DataFrame.to_cupy()``), stated as such, or by a view when its columns are one
registered column block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zerocopy import _cuda
from zerocopy._dtypes import SHARED_DTYPES, name_of_numpy
from zerocopy.adapters import cupy as cupy_adapter
from zerocopy.adapters._common import check_flat_columns, require
from zerocopy.adapters.pyarrow import table_to_f_order
from zerocopy.errors import (
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)
from zerocopy.exchange import cai, checks
from zerocopy.exchange.blocks import block_edge, copy_refused, no_nulls, not_numeric
from zerocopy.exchange.edges import CAI, Edge, Options
from zerocopy.exchange.info import COLUMN, TABLE, Info

NAME = "cudf"
IMPORT_NAME = "cudf"
PIP = "cudf-cu13"
PROTOCOLS = {"exports": ("Series.values (CuPy view)", "DataFrame.to_cupy() (copy)"),
             "imports": ("CUDA Array Interface (cudf.Series(x))",)}


def _cudf() -> Any:
    return require("cudf", PIP)


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES) - {"bfloat16", "float16", "complex64", "complex128"}


def version() -> str:
    return str(_cudf().__version__)


def devices() -> list[str]:
    return cupy_adapter.devices()


def _dtype_name(dtype: Any) -> str:
    name = name_of_numpy(np.dtype(dtype)) if getattr(dtype, "kind", "O") in "biufc" else None
    if name is None:
        raise UnsupportedDtypeError(message(f"cuDF dtype {dtype} is not shared by tensor frameworks",
                                            hint="strings, lists, decimals and categories stay in cuDF"))
    return name


def inspect(x: Any) -> Info:
    cudf = _cudf()
    if isinstance(x, cudf.DataFrame):
        kinds = {str(d) for d in x.dtypes}
        dtype = _dtype_name(x.dtypes.iloc[0]) if len(kinds) == 1 and len(x.columns) else None
        nulls = int(sum(x[c].null_count for c in x.columns))
        first = x[x.columns[0]] if len(x.columns) and not nulls and dtype else None
        return Info(NAME, x, kind=TABLE, dtype=dtype, shape=tuple(x.shape), strides=None,
                    itemsize=np.dtype(dtype).itemsize if dtype else 8, device=("cuda", _device()),
                    pointer=(lambda: cai.read(first.values).ptr) if first is not None else None,
                    nulls=nulls)
    if not isinstance(x, cudf.Series):
        raise UnsupportedObjectError(message("Only cuDF Series and DataFrames are shared",
                                             got=type(x).__qualname__))
    name = _dtype_name(x.dtype)
    itemsize = np.dtype(x.dtype).itemsize
    nulls = int(x.null_count)
    pointer = (lambda: cai.read(x.values).ptr) if not nulls else None
    return Info(NAME, x, kind=COLUMN, dtype=name, shape=(len(x),), strides=None, itemsize=itemsize,
                pointer=pointer, device=("cuda", _device()), nulls=nulls)


def _device() -> int:
    # cuDF allocates on the current device; the pointer, when there is one, says for sure.
    return int(require("cupy").cuda.runtime.getDevice())


# cuDF turns NaN into null when it builds a column from an array unless told not to: a
# silent change of values (NaN and null differ), and a new column where a view was planned.
# Every Series and DataFrame made here keeps the values as they are (nan_as_null=False).

def make(values: np.ndarray) -> Any:
    return _cudf().Series(values, nan_as_null=False)


def to_host(x: Any) -> np.ndarray:
    return x.to_numpy()


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (a cuDF Series or a 1-D NumPy array) on ``device``: a Series on a
    GPU, a NumPy array on the host. cuDF allocates on the current device, so the copy is
    made with ``device`` current."""
    if device[0] == "cpu":
        return to_host(x)
    with _cuda.on_device(device[1]):
        return _cudf().Series(x if isinstance(x, np.ndarray) else x.to_numpy(), nan_as_null=False)


# --------------------------------------------------------------- edges

def _values(x: Any, options: Options) -> Any:
    return x.values  # a CuPy view of a null-free numeric column


def _from_cai(x: Any, options: Options) -> Any:
    return _cudf().Series(cai.import_view(x, options, cupy_adapter.current_stream), nan_as_null=False)


# --------------------------------------------------------------- tables <-> columns
# zerocopy.layout reads and writes tables through these two (the pyarrow module has the
# same pair, on the host), and the column-block edge reads them too.

def columns(df: Any, *, copy: bool | None = None) -> list[tuple[str, Any]]:
    """A frame's columns as (name, CuPy array): ``Series.values``, a view of each null-free
    fixed-width column. Nulls and columns without a numeric form raise typed errors."""
    pairs = []
    for name in df.columns:
        s = df[name]
        no_nulls(int(s.null_count), str(name))
        if getattr(s.dtype, "kind", "O") not in "biufcmM":
            raise not_numeric(str(name), s.dtype)
        pairs.append((str(name), s.values))
    return [(name, values.copy()) for name, values in pairs] if copy else pairs


def table_from_columns(names: Sequence[str], arrays: Sequence[Any], *, rows: int = 0,
                       kind: str | None = None, copy: bool | None = None) -> Any:
    """A DataFrame over CuPy ``arrays`` (through the CUDA Array Interface); ``rows``: the row
    count kept when there are no columns. Array columns have no cuDF form: a typed error."""
    cudf = _cudf()
    check_flat_columns("cuDF", kind, names, arrays)
    for name, array in zip(names, arrays, strict=True):
        if copy is False and not array.flags.c_contiguous:
            raise copy_refused(str(name), "is strided, which a cuDF column cannot hold as it is")
    if not arrays:
        return cudf.DataFrame(index=cudf.RangeIndex(rows))
    return cudf.DataFrame(dict(zip(names, arrays, strict=True)), nan_as_null=False)


EDGES = (
    # A DataFrame over a zerocopy GPU column block is one (rows, k) CuPy tensor already.
    block_edge(NAME, columns, table_to_f_order,
               "cuDF may copy on write when a column is modified later", target="cupy"),
    Edge(NAME, "cupy", "Series.values", "x.values  (CuPy view of the column)", _values, cost=0.8,
         kinds=frozenset({COLUMN}), result_kind="array", check=checks.no_nulls("CuPy")),
    Edge(NAME, "cupy", "copy", "x.to_cupy()  (DataFrame -> 2-D, copy)", lambda x, o: x.to_cupy(),
         copies=True, cost=5.0, kinds=frozenset({TABLE}), result_kind="array",
         check=checks.all_of(checks.one_dtype, checks.no_nulls("CuPy"))),
    Edge(CAI, NAME, "CUDA Array Interface", "cudf.Series(x)", _from_cai, cost=2.0,
         result_kind=COLUMN,
         check=checks.all_of(cai.refuse_dtype, checks.max_ndim("cuDF Series", 1),
                             checks.layouts("cudf.Series", frozenset({"C"}),
                                            "shares only contiguous columns"),
                             checks.dtype_in("cuDF", dtypes)),
         caveat=lambda info: "cuDF may copy on write when the column is modified later (copy-on-write mode)"),
)
