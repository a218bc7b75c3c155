"""PyArrow: Array / ChunkedArray (columns), RecordBatch / Table (tables), Tensor (arrays).

Arrow is the columnar format: tables cross to pandas and Polars here. Arrow buffers are
immutable, bool is stored as bits (so it always copies to a byte-per-value framework),
and nulls live in a validity bitmap that tensors cannot carry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import repeated_names, require
from zerocopy.adapters.numpy import columns_to_array, empty
from zerocopy.errors import UnsupportedConversionError, UnsupportedDtypeError, UnsupportedObjectError, message
from zerocopy.exchange import checks
from zerocopy.exchange.blocks import block_edge, copy_refused, no_nulls, not_numeric
from zerocopy.exchange.edges import Edge, Options, Refusal, moved_info
from zerocopy.exchange.info import ARRAY, COLUMN, TABLE, Info, layout_of, size_class

NAME = "pyarrow"
IMPORT_NAME = "pyarrow"
PIP = "pyarrow"
BOOL_BITS = True  # bool is one bit per value (NumPy and the tensors: one byte)
PROTOCOLS = {"exports": ("Arrow PyCapsule (C data / C stream)", "DLPack v1 (Array, Tensor)",
                         "buffer protocol (Buffer, Tensor)"),
             "imports": ("Arrow PyCapsule", "buffer protocol (py_buffer)")}
# Arrow has no bfloat16 and no complex; bool is bit-packed.
_ARROW_DTYPES = frozenset(SHARED_DTYPES) - {"bfloat16", "complex64", "complex128"}


def _pa() -> Any:
    return require("pyarrow")


def dtypes() -> frozenset[str]:
    return _ARROW_DTYPES


def version() -> str:
    return str(_pa().__version__)


def devices() -> list[str]:
    return ["cpu"]


def arrow_dtype_name(arrow_type: Any) -> str:
    """Canonical dtype for a primitive Arrow type; ``arrow:<type>`` for everything else, so
    dtype checks refuse strings, lists, timestamps... with their real name."""
    name = str(arrow_type)
    aliases = {"halffloat": "float16", "float": "float32", "double": "float64"}
    name = aliases.get(name, name)
    return name if name in _ARROW_DTYPES else f"arrow:{arrow_type}"


def chunk_pointer(chunk: Any) -> int:
    """Address of an Arrow array's first value (0 where it has no fixed-width data buffer);
    pandas and polars columns backed by Arrow point there too."""
    buffers = chunk.buffers()
    data = buffers[1] if len(buffers) > 1 else None
    if data is None:
        return 0
    try:
        width = chunk.type.bit_width
    except ValueError:  # strings, lists...: no fixed-width data buffer to point at
        return 0
    return data.address + chunk.offset * width // 8


# Arrow memory is immutable by contract and may be a read-only file mapping (pa.memory_map,
# IPC files): a write through a torch tensor could change other readers' data or crash the
# process, so torch gets a stated copy under copy=None (checks.write_guard).
IMMUTABLE = ("Arrow buffers are immutable and may map a read-only file (pa.memory_map, IPC): "
             "a write could change data other readers share or crash the process")


def _column_info(x: Any) -> Info:
    pa = _pa()
    chunked = isinstance(x, pa.ChunkedArray)
    chunks = x.num_chunks if chunked else 1
    # The first chunk with data: an empty chunk's buffer says nothing about where data lives.
    first = next((c for c in x.chunks if len(c)), x.chunk(0) if chunks else None) if chunked else x
    dtype = arrow_dtype_name(x.type)
    itemsize = max(getattr(x.type, "bit_width", 8) // 8, 1) if not dtype.startswith("arrow:") else 1
    return Info(NAME, x, kind=COLUMN, dtype=dtype, shape=(len(x),), strides=(itemsize,),
                itemsize=itemsize, pointer=lambda: chunk_pointer(first) if chunks else 0,
                readonly=True, nulls=x.null_count,
                extra={"signature": (chunks > 1, dtype == "bool"), "chunks": chunks,
                       "bits": dtype == "bool", "write_guard": IMMUTABLE})


def _table_info(x: Any) -> Info:
    names = {arrow_dtype_name(t) for t in x.schema.types}
    dtype = names.pop() if len(names) == 1 else None
    nulls = sum(column.null_count for column in x.columns)
    # Where a stacked view of the columns would start (JAX's alignment check reads it).
    first = x.column(0) if x.num_columns else None
    if first is not None and isinstance(first, _pa().ChunkedArray):
        first = first.chunk(0) if first.num_chunks else None
    return Info(NAME, x, kind=TABLE, dtype=dtype, shape=(x.num_rows, x.num_columns),
                strides=None, itemsize=_itemsize(dtype), readonly=True, nulls=nulls,
                pointer=(lambda: chunk_pointer(first)) if first is not None else None,
                extra={"signature": tuple(x.schema.names), "write_guard": IMMUTABLE,
                       "repeated_names": repeated_names(x.schema.names)})


def _itemsize(dtype: str | None) -> int:
    if dtype is None or dtype.startswith("arrow:"):
        return 8
    return np.dtype("int16" if dtype == "bfloat16" else dtype).itemsize


def _tensor_info(x: Any) -> Info:
    view = x.to_numpy()
    return Info(NAME, x, kind=ARRAY, dtype=arrow_dtype_name(x.type), shape=tuple(x.shape),
                strides=tuple(x.strides), itemsize=view.itemsize,
                pointer=lambda: int(view.__array_interface__["data"][0]), readonly=True,
                extra={"write_guard": IMMUTABLE})


def inspect(x: Any) -> Info:
    pa = _pa()
    if isinstance(x, pa.Array | pa.ChunkedArray):
        return _column_info(x)
    if isinstance(x, pa.Table | pa.RecordBatch):
        return _table_info(x)
    if isinstance(x, pa.Tensor):
        return _tensor_info(x)
    raise UnsupportedObjectError(message(f"pyarrow {type(x).__name__} holds no array data",
                                         expected="Array, ChunkedArray, RecordBatch, Table or Tensor"))


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a plain Arrow Array (one buffer), read cheaply."""
    if type(x).__name__ == "ChunkedArray" or not hasattr(x, "null_count"):
        return None
    arrow_type = x.type
    if type(arrow_type).__hash__ is None:  # a user's extension type with __eq__, no __hash__
        return None
    return (arrow_type, size_class((len(x),)), x.null_count > 0)


def fast_pointer(x: Any) -> int:
    """Where the data of an Array with a fast key starts (Info.ptr: its one chunk)."""
    return chunk_pointer(x)


def make(values: np.ndarray) -> Any:
    pa = _pa()
    return pa.array(values) if values.ndim == 1 else pa.Tensor.from_numpy(np.ascontiguousarray(values))


def to_host(x: Any) -> np.ndarray:
    pa = _pa()
    if isinstance(x, pa.Tensor):
        return x.to_numpy()
    if isinstance(x, pa.Table | pa.RecordBatch):
        return np.stack([c.to_numpy(zero_copy_only=False) for c in x.columns], axis=1)
    return x.to_numpy(zero_copy_only=False)


# --------------------------------------------------------------- edges

def _column_to_numpy(x: Any, options: Options) -> np.ndarray:
    pa = _pa()
    if isinstance(x, pa.ChunkedArray):
        if x.num_chunks != 1:  # the plan copies chunked columns; a view would lose rows
            raise BufferError(f"a column in {x.num_chunks} chunks has no single buffer")
        x = x.chunk(0)
    return _array_to_numpy(x)


def _array_to_numpy(x: Any) -> np.ndarray:
    # Also the fast lane's form of the hop: its key is made only for plain Arrays (one buffer).
    return x.to_numpy(zero_copy_only=True)


_DLPACK_NUMBERS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                             "float16", "float32", "float64"})


def _fast_to_numpy(info: Info, source: str) -> Callable[[Any], Any]:
    """The fast lane's hop: ``np.from_dlpack`` for non-empty numbers, half the cost of
    ``to_numpy`` (0.2 against 0.4 us on the dev VM; the same read-only view of the same
    buffer, offsets included). Empty arrays (DLPack makes them writable, the plan said
    read-only), other dtypes (DLPack would export a timestamp as int64), pyarrow before 15
    (no ``__dlpack__``) and hops after another framework's (which may hand on a one-chunk
    ChunkedArray: no ``__dlpack__`` either; the lane keys only plain Arrays of pyarrow's
    own) keep ``to_numpy``."""
    if (source == NAME and info.size and info.dtype in _DLPACK_NUMBERS
            and hasattr(_pa().Array, "__dlpack__")):
        return np.from_dlpack
    return _array_to_numpy


def _column_to_numpy_copy(x: Any, options: Options) -> np.ndarray:
    return column_copy(x)


def column_copy(x: Any) -> np.ndarray:
    """An Arrow column's chunks (or bits) straight into one fresh 64-byte aligned NumPy
    buffer: one copy, whatever the chunking (nulls: refused by the plan before this)."""
    pa = _pa()
    chunks = x.chunks if isinstance(x, pa.ChunkedArray) else [x]
    out = empty(len(x), np.dtype(arrow_dtype_name(x.type)))
    start = 0
    for chunk in chunks:
        if len(chunk):  # pyarrow refuses to_numpy() on some empty bool chunks
            np.copyto(out[start:start + len(chunk)], chunk.to_numpy(zero_copy_only=False), casting="no")
        start += len(chunk)
    return out


def numpy_to_column(x: np.ndarray, options: Options) -> Any:
    """An Arrow array over ``x``'s own buffer, no copy (pandas builds Arrow columns with it)."""
    pa = _pa()
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), len(x), [None, pa.py_buffer(x)])


def _numpy_to_column_copy(x: np.ndarray, options: Options) -> Any:
    return _pa().array(np.ascontiguousarray(x))


def _numpy_to_tensor(x: np.ndarray, options: Options) -> Any:
    return _pa().Tensor.from_numpy(x)


def _one_chunk(info: Info, options: Options) -> Refusal | None:
    if info.extra.get("chunks", 1) > 1:
        return Refusal(f"the column is split into {info.extra['chunks']} chunks (separate buffers)",
                       "combine_chunks() copies them into one buffer")
    return None


def _not_bits(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bool":
        return Refusal("Arrow stores bool as bits, the other frameworks as bytes",
                       "bool columns always copy (8x expansion); use uint8 to share")
    return None


def _ndim(n: int, exact: bool = True) -> Any:
    def check(info: Info, options: Options) -> Refusal | None:
        ok = len(info.shape) == n if exact else len(info.shape) >= n
        return None if ok else Refusal(f"needs {'' if exact else '>='}{n}-D data", fixable=False)

    return check


_ARROW_TYPES_IN = checks.dtype_in("Arrow", dtypes)
_LISTS = ("arrow:list<", "arrow:large_list<", "arrow:list_view<", "arrow:large_list_view<")


def _not_ragged(info: Info, options: Options) -> Refusal | None:
    """A list column is ragged: said so, with the parts that do convert, before the dtype
    check names a list type NumPy lacks."""
    if info.dtype is None or not info.dtype.startswith(_LISTS):
        return None
    return Refusal(
        f"a {info.dtype.removeprefix('arrow:')} column is ragged (each row a list of its own "
        "length) and an array is rectangular",
        "convert its parts: x.flatten() (the values) and x.offsets (where each row starts) "
        "become arrays without a copy (a chunked column: x.combine_chunks() first); lists of "
        "one length: zerocopy.to(x.flatten(), ...).reshape(len(x), width)",
        fixable=False, error=UnsupportedDtypeError)


def _tensor_not_bool(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bool":
        return Refusal("Arrow tensors have no bool type", "use uint8, or a 1-D column",
                       fixable=False, error=UnsupportedDtypeError)
    return None

EDGES: tuple[Edge, ...] = (
    Edge(NAME, "numpy", "Arrow buffer", "x.to_numpy(zero_copy_only=True)", _column_to_numpy,
         cost=0.5, kinds=frozenset({COLUMN}), result_kind=ARRAY, fast=_fast_to_numpy,
         check=checks.all_of(_not_ragged, checks.dtype_in("NumPy", lambda: frozenset(SHARED_DTYPES)),
                             checks.no_nulls("NumPy"), _one_chunk, _not_bits),
         caveat=lambda info: "Arrow buffers are immutable: the NumPy view is read-only"),
    Edge(NAME, "numpy", "copy", "x.to_numpy(zero_copy_only=False)", _column_to_numpy_copy,
         copies=True, cost=5.0, kinds=frozenset({COLUMN}), result_kind=ARRAY,
         check=checks.all_of(_not_ragged, checks.dtype_in("NumPy", lambda: frozenset(SHARED_DTYPES)),
                             checks.no_nulls("NumPy"))),
    Edge(NAME, "numpy", "Arrow tensor", "x.to_numpy()", lambda x, o: x.to_numpy(), cost=0.5,
         caveat=lambda info: "Arrow tensors are immutable: the NumPy view is read-only"),
    Edge("numpy", NAME, "buffer protocol",
         "pa.Array.from_buffers(type, n, [None, pa.py_buffer(x)])", numpy_to_column, cost=1.3,
         result_kind=COLUMN,
         check=checks.all_of(_ndim(1), _ARROW_TYPES_IN, _not_bits,
                             checks.layouts("an Arrow column", frozenset({"C"}),
                                            "is one contiguous buffer"))),
    Edge("numpy", NAME, "copy", "pa.array(x)  (bool packed into bits)", _numpy_to_column_copy,
         copies=True, immutable_result=True,
         cost=3.0, result_kind=COLUMN, check=checks.all_of(_ndim(1), _ARROW_TYPES_IN)),
    Edge("numpy", NAME, "buffer protocol", "pa.Tensor.from_numpy(x)", _numpy_to_tensor, cost=1.5,
         check=checks.all_of(_ndim(2, exact=False), _ARROW_TYPES_IN, _tensor_not_bool,
                             checks.layouts("pa.Tensor", frozenset({"C", "F", "compact", "strided"}),
                                            "refuses negative strides"))),
)


def deep_copy(x: Any) -> Any:
    """An Arrow object with the same values in new buffers (nulls and types kept)."""
    pa = _pa()
    if isinstance(x, pa.Table | pa.RecordBatch):
        if not x.num_columns:  # rows without columns: nothing to copy, the row count to keep
            return x.select([])
        columns = [deep_copy(c) for c in x.columns]
        return type(x).from_arrays(columns, schema=x.schema)
    if isinstance(x, pa.ChunkedArray):
        return pa.chunked_array([pa.concat_arrays(x.chunks)] if x.num_chunks else [], type=x.type)
    if isinstance(x, pa.Tensor):
        return pa.Tensor.from_numpy(x.to_numpy().copy())
    return pa.concat_arrays([x])  # concatenation always writes new buffers


EDGES = (
    *EDGES,
    # copy=True within Arrow.
    Edge(NAME, NAME, "copy", "pa.concat_arrays(chunks) per column", lambda x, o: deep_copy(x),
         copies=True, immutable_result=True, cost=6.0, kinds=frozenset({ARRAY, COLUMN, TABLE})),
)


# --------------------------------------------------------------- tables -> 2-D arrays

def table_to_f_order(info: Info, framework: str, kind: str | None) -> Info:
    """A table's columns seen as one (rows, columns) array: column-major."""
    new = moved_info(info, framework, kind)
    rows, _ = info.shape
    new.strides = info.extra.get("stacked_strides") or (info.itemsize, info.itemsize * rows)
    new.layout = layout_of(info.shape, new.strides, info.itemsize)
    return new


def _table_to_numpy_copy(t: Any, options: Options) -> np.ndarray:
    dtype = np.dtype(arrow_dtype_name(t.schema.types[0]))
    return columns_to_array([_column_to_numpy_copy(c, options) if _pieces(c) > 1 else
                             c.to_numpy(zero_copy_only=False) for c in t.columns], t.num_rows, dtype)


def _pieces(column: Any) -> int:
    return column.num_chunks if hasattr(column, "num_chunks") else 1


# --------------------------------------------------------------- tables <-> columns
# zerocopy.layout reads and writes tables through these two, and the column-block edge
# below reads them too: every table framework module has both, with this signature.

def columns(table: Any, *, copy: bool | None = None) -> list[tuple[str, np.ndarray]]:
    """A Table's or RecordBatch's columns as (name, NumPy array): views of Arrow's buffers,
    copies only where Arrow has no view (chunks, bool bits; NotZeroCopyError under
    ``copy=False``); fixed-size lists as ``(rows, size)`` arrays. Nulls and columns without
    a numeric form raise typed errors."""
    pairs = [(name, _column_values(column, name, copy))
             for name, column in zip(table.column_names, table.columns, strict=True)]
    return [(name, values.copy()) for name, values in pairs] if copy else pairs


def _column_values(column: Any, name: str, copy: bool | None) -> np.ndarray:
    pa = _pa()
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks > 1 and copy is False:
            raise copy_refused(name, f"is split into {column.num_chunks} chunks")
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    no_nulls(column.null_count, name)
    if pa.types.is_fixed_size_list(column.type):
        inner = _column_values(column.flatten(), name, copy)
        return inner.reshape(len(column), column.type.list_size, *inner.shape[1:])
    fixed = pa.types.is_primitive(column.type) or pa.types.is_temporal(column.type)
    if not fixed or pa.types.is_dictionary(column.type):
        raise not_numeric(name, column.type)
    if pa.types.is_boolean(column.type):  # bit-packed in Arrow: the one type to unpack
        if copy is False:
            raise copy_refused(name, "is bool, which Arrow stores as bits")
        return column.to_numpy(zero_copy_only=False)
    return column.to_numpy(zero_copy_only=True)


def table_from_columns(names: Sequence[str], arrays: Sequence[np.ndarray], *, rows: int = 0,
                       kind: str | None = None, copy: bool | None = None) -> Any:
    """A RecordBatch (``kind="Table"``: a Table) over NumPy ``arrays``, sharing their
    memory; ``(rows, size)`` arrays become fixed-size lists. ``rows``: the row count kept
    when there are no columns. ``copy=False`` refuses what Arrow must copy (bool, strided)."""
    pa = _pa()
    if kind not in (None, "RecordBatch", "Table"):
        raise UnsupportedConversionError(message(f"pyarrow has no table type {kind!r}",
                                                 expected="RecordBatch or Table", got=repr(kind)))
    built = [_arrow_column(array, str(name), copy) for name, array in zip(names, arrays, strict=True)]
    batch = (pa.RecordBatch.from_arrays(built, names=[str(n) for n in names]) if built
             else pa.record_batch({"_": pa.nulls(rows)}).drop_columns(["_"]))
    return pa.Table.from_batches([batch]) if kind == "Table" else batch


def _arrow_column(array: np.ndarray, name: str, copy: bool | None) -> Any:
    if array.dtype.kind == "c":
        raise UnsupportedDtypeError(message(
            f"column {name!r} is complex, which Arrow has no type for",
            expected="real numbers", got=str(array.dtype),
            hint="split it into real and imaginary columns, or use to='numpy'"))
    if copy is False and (array.dtype.kind == "b" or not array.flags.c_contiguous):
        raise copy_refused(name, "is bool or strided, which an Arrow column cannot hold as it is")
    if array.ndim == 1:
        return _pa().array(array)
    flat = np.ascontiguousarray(array).reshape(len(array) * array.shape[1], *array.shape[2:])
    return _pa().FixedSizeListArray.from_arrays(_arrow_column(flat, name, copy), array.shape[1])


EDGES = (
    *EDGES,
    block_edge(NAME, columns, table_to_f_order,
               "Arrow buffers are immutable: the NumPy view is read-only"),
    Edge(NAME, "numpy", "copy", "aligned C-order array filled column by column",
         _table_to_numpy_copy, copies=True, cost=20.0, kinds=frozenset({TABLE}), result_kind=ARRAY,
         check=checks.all_of(_ARROW_TYPES_IN, checks.no_nulls("NumPy"), checks.one_dtype)),
)
