"""Independent readers of native objects for the fuzz oracle.

Each function reads a framework's object through that framework's own API (or its raw
buffers), never through zerocopy, so the oracle cannot share a bug with the code it
judges: the canonical dtype name, the values in logical order with the null mask, the
byte ranges of memory the object covers, and a writable NumPy alias where the object is
writable. Tables read as 2-D (rows, columns); columns as 1-D.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES

__all__ = ["CPU", "NotNative", "columns_of", "dtype_of", "framework_of", "mod", "overlaps", "ranges_of", "same_values",
           "values_of", "writable_alias"]

CPU = ("numpy", "torch", "jax", "tensorflow", "pyarrow", "pandas", "polars")
_ROOTS = {"numpy": "numpy", "torch": "torch", "jax": "jax", "jaxlib": "jax", "tensorflow": "tensorflow",
          "pyarrow": "pyarrow", "pandas": "pandas", "polars": "polars"}
_ARROW_NAMES = {"bool": "bool", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
                "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
                "halffloat": "float16", "float": "float32", "double": "float64"}
_POLARS_NAMES = {"Boolean": "bool", "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64",
                 "UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64",
                 "Float16": "float16", "Float32": "float32", "Float64": "float64"}

_MODULES: dict[str, Any] = {}


def mod(name: str) -> Any:
    """A framework module, imported once per process."""
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(name)
    return module


class NotNative(Exception):
    """The object holds something the readers do not read (strings, objects, lists...)."""


def framework_of(obj: Any) -> str | None:
    return _ROOTS.get(type(obj).__module__.partition(".")[0])


# --------------------------------------------------------------- dtypes

def _numpy_name(dtype: np.dtype) -> str | None:
    if dtype == np.dtype(mod("ml_dtypes").bfloat16):
        return "bfloat16"
    if not dtype.isnative or dtype.name not in SHARED_DTYPES:
        return None
    return dtype.name


def _uniform(names: list[str | None]) -> str | None:
    """The one dtype of a table's columns; "mixed" if they differ; None without columns."""
    found = set(names)
    if not found:
        return None
    return found.pop() if len(found) == 1 else "mixed"


def dtype_of(obj: Any) -> str | None:  # noqa: PLR0911 (one return per framework)
    """Canonical dtype name (``zerocopy._dtypes`` vocabulary) of a native object; an
    unknown dtype reads as "<framework>:<its name>" so it never equals a canonical one."""
    name = framework_of(obj)
    if name == "numpy":
        return _numpy_name(obj.dtype) or f"numpy:{obj.dtype}"
    if name == "torch":
        return str(obj.dtype).removeprefix("torch.")
    if name in ("jax", "tensorflow"):
        return str(obj.dtype.name if name == "tensorflow" else obj.dtype)
    if name == "pyarrow":
        pa = mod("pyarrow")
        if isinstance(obj, pa.Table | pa.RecordBatch):
            return _uniform([_ARROW_NAMES.get(str(t), f"pyarrow:{t}") for t in obj.schema.types])
        if isinstance(obj, pa.Tensor):
            return _ARROW_NAMES.get(str(obj.type), f"pyarrow:{obj.type}")
        return _ARROW_NAMES.get(str(obj.type), f"pyarrow:{obj.type}")
    if name == "pandas":
        if isinstance(obj, mod("pandas").DataFrame):
            return _uniform([_pandas_dtype(obj.dtypes.iloc[i]) for i in range(obj.shape[1])])
        return _pandas_dtype(obj.dtype)
    if name == "polars":
        if isinstance(obj, mod("polars").DataFrame):
            return _uniform([_POLARS_NAMES.get(str(t), f"polars:{t}") for t in obj.dtypes])
        return _POLARS_NAMES.get(str(obj.dtype), f"polars:{obj.dtype}")
    return None


def _pandas_dtype(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return _numpy_name(dtype) or f"pandas:{dtype}"
    arrow = getattr(dtype, "pyarrow_dtype", None)
    if arrow is not None:
        return _ARROW_NAMES.get(str(arrow), f"pandas:{dtype}")
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and type(dtype).__name__ in (
            "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype",
            "UInt32Dtype", "UInt64Dtype", "Float32Dtype", "Float64Dtype", "BooleanDtype"):
        return _numpy_name(np.dtype(numpy_dtype)) or f"pandas:{dtype}"
    return f"pandas:{dtype}"


# --------------------------------------------------------------- values

Values = tuple[np.ndarray, np.ndarray | None]  # values, null mask (True = null) or None


def _torch_numpy(t: Any) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (bfloat16 through an int16 view)."""
    torch = mod("torch")
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(mod("ml_dtypes").bfloat16)
    return t.numpy()


def _tf_as_torch(x: Any) -> Any:
    return mod("torch").from_dlpack(mod("tensorflow").experimental.dlpack.to_dlpack(x))


def _arrow_chunk(chunk: Any) -> Values:
    """Values and validity of one primitive Arrow array, read from its buffers."""
    name = _ARROW_NAMES.get(str(chunk.type))
    if name is None:
        raise NotNative(f"arrow type {chunk.type}")
    n, offset = len(chunk), chunk.offset
    validity, data = chunk.buffers()[:2]
    if name == "bool":
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little") if data is not None else \
            np.zeros(0, np.uint8)
        values = bits[offset:offset + n].astype(bool)
    else:
        dtype = np.dtype(name)
        values = (np.frombuffer(data, dtype, count=offset + n) if data is not None
                  else np.zeros(offset + n, dtype))[offset:].copy()
    mask = None
    if validity is not None and chunk.null_count:
        valid = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")[offset:offset + n]
        mask = ~valid.astype(bool)
    return values, mask


def _concat(parts: list[Values], dtype: np.dtype) -> Values:
    if not parts:
        return np.zeros(0, dtype), None
    values = np.concatenate([p[0] for p in parts])
    if all(p[1] is None for p in parts):
        return values, None
    mask = np.concatenate([p[1] if p[1] is not None else np.zeros(len(p[0]), bool) for p in parts])
    return values, mask


def _arrow_column(col: Any) -> Values:
    chunks = col.chunks if hasattr(col, "chunks") else [col]
    name = _ARROW_NAMES.get(str(col.type))
    if name is None:
        raise NotNative(f"arrow type {col.type}")
    return _concat([_arrow_chunk(c) for c in chunks], np.dtype(name))


def _stack(columns: list[Values], rows: int) -> Values:
    if not columns:
        return np.zeros((rows, 0), np.uint8), None
    values = np.stack([c[0] for c in columns], axis=1) if rows or columns else np.zeros((0, 0))
    if all(c[1] is None for c in columns):
        return values, None
    mask = np.stack([c[1] if c[1] is not None else np.zeros(rows, bool) for c in columns], axis=1)
    return values, mask


def _pandas_series(s: Any) -> Values:
    if isinstance(s.dtype, np.dtype):
        if s.dtype.kind not in "biufcV":
            raise NotNative(f"pandas dtype {s.dtype}")
        return s.to_numpy().copy(), None
    array = s.array
    if hasattr(array, "_pa_array"):
        return _arrow_column(array._pa_array)
    if hasattr(array, "_data") and hasattr(array, "_mask"):
        mask = np.asarray(array._mask).copy()
        return np.asarray(array._data).copy(), (mask if mask.any() else None)
    raise NotNative(f"pandas dtype {s.dtype}")


def _polars_series(s: Any) -> Values:
    name = _POLARS_NAMES.get(str(s.dtype))
    if name is None:
        raise NotNative(f"polars dtype {s.dtype}")
    return _concat([_arrow_chunk(c.to_arrow()) for c in s.get_chunks()], np.dtype(name))


def values_of(obj: Any) -> Values:  # noqa: PLR0911, PLR0912 (one branch per framework)
    """(values as a fresh NumPy array in logical order, null mask or None)."""
    name = framework_of(obj)
    if name == "numpy":
        if isinstance(obj, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(obj).copy()
            return np.asarray(obj.data).copy(), (mask if mask.any() else None)
        if not isinstance(obj, np.ndarray):
            raise NotNative(f"numpy {type(obj).__name__}")
        return np.array(obj, copy=True), None
    if name == "torch":
        return _torch_numpy(obj).copy(), None
    if name == "jax":
        # Not np.asarray: JAX caches host values of its (immutable) arrays, and a write through
        # a shared result must be seen. A DLPack view reads the buffer itself, compiling nothing.
        return _torch_numpy(mod("torch").from_dlpack(obj)).copy(), None
    if name == "tensorflow":
        try:
            return _torch_numpy(_tf_as_torch(obj)).copy(), None
        except Exception:  # a dtype torch cannot import: TensorFlow's own (copying) read
            return np.array(obj.numpy(), copy=True), None
    if name == "pyarrow":
        pa = mod("pyarrow")
        if isinstance(obj, pa.Table | pa.RecordBatch):
            return _stack([_arrow_column(c) for c in obj.columns], obj.num_rows)
        if isinstance(obj, pa.Tensor):
            return np.array(obj.to_numpy(), copy=True), None
        return _arrow_column(obj)
    if name == "pandas":
        if isinstance(obj, mod("pandas").DataFrame):
            return _stack([_pandas_series(obj.iloc[:, i]) for i in range(obj.shape[1])], len(obj))
        return _pandas_series(obj)
    if name == "polars":
        if isinstance(obj, mod("polars").DataFrame):
            return _stack([_polars_series(c) for c in obj.get_columns()], obj.height)
        return _polars_series(obj)
    raise NotNative(f"{type(obj).__module__}.{type(obj).__name__}")


Column = tuple[str | None, np.ndarray, np.ndarray | None]  # dtype, values, null mask


def columns_of(obj: Any) -> list[Column]:
    """A table's columns one by one (dtypes may differ); NotNative for anything else."""
    name = framework_of(obj)
    if name == "pyarrow" and isinstance(obj, mod("pyarrow").Table | mod("pyarrow").RecordBatch):
        return [(dtype_of(c), *_arrow_column(c)) for c in obj.columns]
    if name == "pandas" and isinstance(obj, mod("pandas").DataFrame):
        return [(dtype_of(obj.iloc[:, i]), *_pandas_series(obj.iloc[:, i])) for i in range(obj.shape[1])]
    if name == "polars" and isinstance(obj, mod("polars").DataFrame):
        return [(dtype_of(c), *_polars_series(c)) for c in obj.get_columns()]
    raise NotNative(f"{type(obj).__module__}.{type(obj).__name__} is not a table")


# --------------------------------------------------------------- memory ranges

Range = tuple[int, int]


def _extent(ptr: int, shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> list[Range]:
    """The bytes an array view can touch: [lowest, highest + itemsize)."""
    if any(d == 0 for d in shape):
        return []
    low = ptr + sum(s * (d - 1) for d, s in zip(shape, strides, strict=True) if s < 0)
    high = ptr + sum(s * (d - 1) for d, s in zip(shape, strides, strict=True) if s > 0) + itemsize
    return [(low, high)]


def _numpy_ranges(x: np.ndarray) -> list[Range]:
    return _extent(int(x.__array_interface__["data"][0]), x.shape, x.strides, x.itemsize)


def _torch_ranges(t: Any) -> list[Range]:
    size = t.element_size()
    return _extent(t.data_ptr(), tuple(t.shape), tuple(s * size for s in t.stride()), size)


def _arrow_chunk_ranges(chunk: Any) -> list[Range]:
    n, offset = len(chunk), chunk.offset
    if n == 0:
        return []
    found: list[Range] = []
    buffers = chunk.buffers()
    name = _ARROW_NAMES.get(str(chunk.type))
    for i, buf in enumerate(buffers[:2]):
        if buf is None:
            continue
        if i == 0 or name == "bool":  # bitmaps
            found.append((buf.address + offset // 8, buf.address + (offset + n + 7) // 8))
        elif name is not None:
            width = np.dtype(name).itemsize
            found.append((buf.address + offset * width, buf.address + (offset + n) * width))
        else:
            found.append((buf.address, buf.address + buf.size))
    found.extend((b.address, b.address + b.size) for b in buffers[2:] if b is not None and b.size)
    return found


def _arrow_ranges(obj: Any) -> list[Range]:
    pa = mod("pyarrow")
    if isinstance(obj, pa.Table | pa.RecordBatch):
        return [r for c in obj.columns for r in _arrow_ranges(c)]
    if isinstance(obj, pa.Tensor):
        return _numpy_ranges(obj.to_numpy())
    chunks = obj.chunks if hasattr(obj, "chunks") else [obj]
    return [r for c in chunks for r in _arrow_chunk_ranges(c)]


def _pandas_ranges(s: Any) -> list[Range]:
    pd = mod("pandas")
    if isinstance(s, pd.DataFrame):
        return [r for i in range(s.shape[1]) for r in _pandas_ranges(s.iloc[:, i])]
    if isinstance(s.dtype, np.dtype):
        return _numpy_ranges(s.to_numpy())
    array = s.array
    if hasattr(array, "_pa_array"):
        return _arrow_ranges(array._pa_array)
    if hasattr(array, "_data") and hasattr(array, "_mask"):
        return _numpy_ranges(np.asarray(array._data)) + _numpy_ranges(np.asarray(array._mask))
    return []


def _polars_ranges(s: Any) -> list[Range]:
    if isinstance(s, mod("polars").DataFrame):
        return [r for c in s.get_columns() for r in _polars_ranges(c)]
    return [r for c in s.get_chunks() for r in _arrow_ranges(c.to_arrow())]


def ranges_of(obj: Any) -> list[Range]:  # noqa: PLR0911 (one return per framework)
    """Byte ranges of host memory that ``obj``'s elements (and null masks) occupy."""
    name = framework_of(obj)
    if name == "numpy":
        ranges = _numpy_ranges(np.asarray(obj.data) if isinstance(obj, np.ma.MaskedArray) else obj)
        if isinstance(obj, np.ma.MaskedArray) and obj.mask is not np.ma.nomask:
            ranges += _numpy_ranges(np.asarray(obj.mask))
        return ranges
    if name == "torch":
        return _torch_ranges(obj)
    if name == "jax":
        if obj.size == 0:
            return []
        obj.block_until_ready()
        start = int(obj.unsafe_buffer_pointer())
        return [(start, start + obj.nbytes)]
    if name == "tensorflow":
        return _torch_ranges(_tf_as_torch(obj)) if obj.shape.num_elements() else []
    if name == "pyarrow":
        return _arrow_ranges(obj)
    if name == "pandas":
        return _pandas_ranges(obj)
    if name == "polars":
        return _polars_ranges(obj)
    return []


def same_values(values: np.ndarray, mask: np.ndarray | None, expected: np.ndarray,
                expected_mask: np.ndarray | None) -> bool:
    """Same shape, same nulls, and the same bytes in every non-null element."""
    if values.shape != expected.shape:
        return False
    if (mask is None) != (expected_mask is None) or (mask is not None and not np.array_equal(mask, expected_mask)):
        return False
    if values.size == 0:
        return True
    a, b = np.ascontiguousarray(values), np.ascontiguousarray(expected)
    if a.dtype.itemsize != b.dtype.itemsize:
        return False
    a = a.reshape(-1).view(np.uint8).reshape(a.size, -1)
    b = b.reshape(-1).view(np.uint8).reshape(b.size, -1)
    keep = ~mask.reshape(-1) if mask is not None else slice(None)
    return bool(np.array_equal(a[keep], b[keep]))


def overlaps(a: list[Range], b: list[Range]) -> bool:
    return any(lo < hi2 and lo2 < hi for lo, hi in a for lo2, hi2 in b)


# --------------------------------------------------------------- writes

def writable_alias(obj: Any) -> np.ndarray | None:
    """A writable NumPy view of ``obj``'s memory, for objects users may write (NumPy arrays
    with the writeable flag, torch tensors); None for immutable kinds."""
    name = framework_of(obj)
    if name == "numpy" and isinstance(obj, np.ndarray):
        data = np.asarray(obj.data) if isinstance(obj, np.ma.MaskedArray) else obj
        return data if data.flags.writeable else None
    if name == "torch":
        if obj.is_conj() or obj.is_neg():  # lazy views: their NumPy form is a resolved copy
            return None
        return _torch_numpy(obj)
    return None


def flip_first(alias: np.ndarray) -> None:
    """Flip the lowest bit of the logical first element (a different value for any dtype)."""
    index = (0,) * alias.ndim
    cell = np.array(alias[index], dtype=alias.dtype).reshape(1)
    cell.view(np.uint8)[0] ^= 1
    alias[index] = cell[0]
