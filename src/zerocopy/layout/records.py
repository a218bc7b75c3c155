"""Records (array of structures) <-> columns (structure of arrays), on CPU and GPU.

:func:`to_columns` reads NumPy structured arrays, ``(N, k)`` arrays of any framework, and
raw bytes described by a record dtype; :func:`to_records` writes packed or aligned
records. Both plan the move from a :class:`~._layout.RecordLayout` and run it with one
kernel: :mod:`._cpu` (Numba, cache-blocked, all cores) or :mod:`._gpu` (tiled CUDA).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from zerocopy.errors import (
    LayoutError,
    NotZeroCopyError,
    UnsupportedDtypeError,
    ZeroCopyError,
    message,
)
from zerocopy.exchange.convert import checked_copy
from zerocopy.layout import _cpu, _gpu, _interop
from zerocopy.layout._layout import (
    Field,
    RecordLayout,
    check_column_dtype,
    check_unique_names,
    record_layout,
)
from zerocopy.layout.block import ColumnBlock, column_block

__all__ = ["to_columns", "to_records"]


# ------------------------------------------------------------------------ records in


class _Source:
    """Records to read: the base array, its layout, count, record stride, device, owner."""

    def __init__(self, base: Any, layout: RecordLayout, n: int, stride: int, framework: str,
                 gpu: bool) -> None:
        self.base, self.layout, self.n, self.stride = base, layout, n, stride
        self.framework, self.gpu = framework, gpu

    def address(self) -> int:
        return self.base.data.ptr if self.gpu else self.base.ctypes.data


def _source(records: object, dtype: object, names: Sequence[str] | None,
            copy: bool | None = None) -> _Source:
    framework = _interop.array_framework(records)
    gpu = _interop.is_gpu(records)
    arr = _interop.as_device(records, copy) if gpu else _interop.as_host(records, copy)
    if dtype is not None:
        return _raw_source(arr, record_layout(dtype), framework, gpu)
    if arr.dtype.names is not None:
        return _structured_source(arr, framework)
    if arr.ndim == 2:
        return _matrix_source(arr, names, framework, gpu)
    raise LayoutError(message(
        "cannot tell the records apart", expected="a structured array, an (N, k) array, or "
        "bytes with dtype=", got=f"{arr.ndim}-D array of {arr.dtype}",
        hint="pass dtype=<record description> for raw bytes"))


def _raw_source(arr: Any, layout: RecordLayout, framework: str, gpu: bool) -> _Source:
    if not arr.flags.c_contiguous:
        raise LayoutError(message("raw record bytes must be contiguous",
                                  expected="a C-contiguous buffer", got="a strided view",
                                  hint="pass the buffer the records were written to"))
    nbytes = arr.size * arr.dtype.itemsize
    if layout.itemsize == 0 or nbytes % layout.itemsize:
        raise LayoutError(message(
            "the buffer does not hold a whole number of records",
            expected=f"a multiple of the record size {layout.itemsize} bytes",
            got=f"{nbytes} bytes", hint="check the record description (packed vs aligned)"))
    flat = arr.reshape(-1).view(np.uint8) if not gpu else arr.reshape(-1).view("u1")
    return _Source(flat, layout, nbytes // max(1, layout.itemsize), layout.itemsize,
                   framework, gpu)


def _structured_source(arr: np.ndarray, framework: str) -> _Source:
    if arr.ndim != 1:
        if not arr.flags.c_contiguous:
            raise LayoutError(message("records must be 1-D", expected="a 1-D record array",
                                      got=f"shape {arr.shape}", hint="ravel it first"))
        arr = arr.reshape(-1)
    layout = RecordLayout.from_dtype(arr.dtype)
    stride = arr.strides[0] if len(arr) > 1 else arr.dtype.itemsize
    if abs(stride) < arr.dtype.itemsize:
        raise LayoutError(message(
            "records overlap in memory", expected=f"a record stride of at least "
            f"{arr.dtype.itemsize} bytes", got=f"stride {stride}",
            hint="copy the records apart first (np.array(records))"))
    return _Source(arr, layout, len(arr), stride, framework, False)


def _matrix_source(arr: Any, names: Sequence[str] | None, framework: str, gpu: bool) -> _Source:
    n, k = arr.shape
    dt = check_column_dtype(np.dtype(arr.dtype), "(matrix)")
    names = _matrix_names(names, k)
    # The GPU kernel reads back-to-back rows (a strided matrix is first made C-contiguous
    # in _move_gather, a documented copy), so its fields sit at j * itemsize.
    step = arr.strides[1] if k > 1 and not gpu else dt.itemsize
    fields = tuple(Field(nm, dt, j * step) for j, nm in enumerate(names))
    stride = arr.strides[0] if n > 1 else k * dt.itemsize
    return _Source(arr, RecordLayout(fields, k * dt.itemsize), n, stride, framework, gpu)


def _matrix_names(names: Sequence[str] | None, k: int) -> list[str]:
    names = [str(i) for i in range(k)] if names is None else [str(x) for x in names]
    if len(names) != k:
        raise LayoutError(message("one name per column is needed",
                                  expected=f"{k} names", got=f"{len(names)} names"))
    return check_unique_names(names, "names=", "give each column its own name")


def to_columns(records: object, *, dtype: object = None, names: Sequence[str] | None = None,
               to: str | None = None, out: Mapping[str, object] | ColumnBlock | None = None,
               copy: bool | None = None) -> Any:
    """Records (AoS) -> columns (SoA).

    ``records``: a NumPy structured array (packed or aligned, nested structs flattened to
    dotted names, sub-arrays as fixed-size columns), an ``(N, k)`` array of any framework
    (CPU or GPU), or raw bytes / a uint8 array together with ``dtype=`` (the record
    description). ``names``: for ``(N, k)`` input the column names (default "0".."k-1");
    for records, the fields to read (default all).

    ``to``: None gives a dict name -> array in the caller's framework; an array framework
    (``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"`` ...) a dict of those; ``"pyarrow"`` a
    RecordBatch, ``"pyarrow.Table"``, ``"pandas"``, ``"polars"``, ``"cudf"`` a table;
    ``"block"`` the :class:`ColumnBlock` the columns were written to.

    ``out``: columns to fill in place (mapping name -> array, or a ColumnBlock).
    ``copy``: None copies only when needed (an F-order ``(N, k)`` input gives views),
    True always copies, False raises :class:`NotZeroCopyError` rather than copy.
    """
    copy = checked_copy(copy)
    if isinstance(out, ColumnBlock) and copy is not False and to in (None, "block"):
        done = _gather_into_block(records, dtype, names, out, to)
        if done is not None:
            return done
    src = _source(records, dtype, names, copy)
    if names is not None and not _is_matrix(src):
        src.layout = src.layout.select(list(names))
    views = _column_views(src) if copy is not True and out is None else None
    if views is not None:
        return _finish(src.layout.names, views, to, src, copy)
    if copy is False:
        raise NotZeroCopyError(message(
            "the columns are interleaved in the records, so they must be copied",
            expected="copy=None or True", got="copy=False",
            hint="F-order (N, k) arrays are the only records whose columns are views"))
    block, columns = _outputs(src, out)
    _move_gather(src, columns)
    if to == "block":
        if block is None:
            raise LayoutError(message("to='block' needs the columns in a block",
                                      expected="out=None or out=<ColumnBlock>",
                                      got="a mapping of arrays"))
        return block
    return _finish(src.layout.names, columns, to, src, copy)


# ------------------------------------------------------------ repeated calls into a block
#
# A call with out=<ColumnBlock> (and to_records from one) is planned once per kind of
# input and kept on the block: the layout, the checks of the block's columns, the copy
# plan (CPU) or kernel launch (GPU). A later call of the same kind checks only what can
# change between calls (row count, contiguity, writability), reads two addresses and
# runs: a few microseconds whatever the field count. Anything else takes the general
# path, which also raises every error.


def _array_kind(obj: object) -> bool | None:
    """False for a NumPy array, True for a CuPy array, None for anything else."""
    if type(obj) is np.ndarray:
        return False
    return True if _interop.array_framework(obj) == _interop.DEVICE else None


def _gather_into_block(records: Any, dtype: object, names: Sequence[str] | None, block: ColumnBlock,
                       to: str | None) -> Any:
    gpu = _array_kind(records)
    if gpu is None or gpu != (block.device == "cuda") or records.shape[0] < 2:
        return None
    if dtype is not None and not isinstance(dtype, np.dtype):
        return None
    if dtype is None and records.ndim != (1 if records.dtype.names else 2):
        return None
    key = ("gather", records.dtype, records.strides, records.ndim, dtype,
           None if names is None else tuple(names))
    plan: _Plan | Literal[False] | None = block.plans.get(key)
    if plan is None:
        plan = block.plans[key] = _gather_plan(records, dtype, names, block)
    if plan is False:
        return None
    n = _record_count(records, plan, dtype is not None, gpu)
    if n is None or n != block.n_rows or (not gpu and not block.buffer.flags.writeable):
        return None
    if gpu:
        plan.launch(records, n)
    else:
        _cpu.run(n, records.ctypes.data, block.address(), plan.moves)
    return block if to == "block" else dict(zip(plan.names, plan.columns, strict=True))


def _record_count(records: Any, plan: Any, raw: bool, gpu: bool) -> int | None:
    """Records in ``records`` for ``plan``, or None where the general path must decide."""
    if plan is False:
        return None
    if raw:  # bytes: a whole number of contiguous records
        if not records.flags.c_contiguous or records.nbytes % plan.itemsize:
            return None
        return records.nbytes // plan.itemsize
    if gpu and not records.flags.c_contiguous:
        return None
    return records.shape[0]


class _Plan:
    """What a repeated call needs: names, columns, record size, and the move."""

    __slots__ = ("columns", "framework", "itemsize", "launch", "layout", "moves", "names",
                 "structured")

    columns: list[Any]
    framework: str
    itemsize: int
    launch: Any  # _gpu.Launch
    layout: RecordLayout
    moves: _cpu.Moves
    names: list[str]
    structured: bool


def _gather_plan(records: Any, dtype: object, names: Sequence[str] | None,
                 block: ColumnBlock) -> _Plan | Literal[False]:
    """The plan for this kind of records into ``block``, or False (general path)."""
    try:
        src = _source(records, dtype, names)
        if names is not None and not _is_matrix(src):
            src.layout = src.layout.select(list(names))
        if src.n != block.n_rows:
            return False
        views = dict(zip(block.names, block.views(), strict=True))
        _, columns = _outputs(src, views)
    except ZeroCopyError:
        return False  # the general path raises it again, with its message
    if any(c is not views[f.name] for c, f in zip(columns, src.layout.fields, strict=True)):
        return False
    plan = _Plan()
    plan.names, plan.columns = list(src.layout.names), columns
    plan.itemsize, plan.layout = src.layout.itemsize, src.layout
    if src.gpu:
        plan.launch = _gpu.Launch(src.layout, "gather", columns)
        if src.stride != src.layout.itemsize:
            return False
    else:
        base = block.address()
        plan.moves = _cpu.Moves((f.offset, src.stride, c.ctypes.data - base, c.strides[0],
                                 f.width) for f, c in zip(src.layout.fields, columns,
                                                          strict=True))
    return plan


def _is_matrix(src: _Source) -> bool:
    return src.base.ndim == 2 and src.base.dtype.names is None


def _column_views(src: _Source) -> list[Any] | None:
    """Columns without a copy: only when each field is already contiguous (F-order)."""
    if not _is_matrix(src) or not src.layout.fields:
        return None
    itemsize = src.layout.fields[0].dtype.itemsize
    if src.n > 1 and src.base.strides[0] != itemsize:
        return None
    return [src.base[:, j] for j in range(src.base.shape[1])]


def _outputs(src: _Source, out: Any) -> tuple[ColumnBlock | None, list[Any]]:
    fields = src.layout.fields
    block: ColumnBlock | None
    if out is None:
        block = column_block(src.n, {f.name: f.column_dtype for f in fields},
                             device="cuda" if src.gpu else "cpu")
        return block, block.column_arrays()
    if isinstance(out, ColumnBlock):
        block, given = out, out.columns
    else:
        block, given = None, {str(k): v for k, v in out.items()}
    columns = []
    for f in fields:
        if f.name not in given:
            raise LayoutError(message(f"out= has no column {f.name!r}",
                                      expected=f"columns {list(src.layout.names)}",
                                      got=f"{list(given)}"))
        columns.append(_check_out_column(given[f.name], f, src))
    return block, columns


def _check_out_column(col: Any, f: Field, src: _Source) -> Any:
    # Written in place: a copy of the column would lose the writes, so the hop must share.
    arr = _interop.as_device(col, copy=False) if src.gpu else _interop.as_host(col, copy=False)
    want = (src.n, *f.shape)
    if tuple(arr.shape) != want or np.dtype(arr.dtype) != f.dtype:
        raise LayoutError(message(f"out column {f.name!r} does not fit",
                                  expected=f"shape {want} of {f.dtype}",
                                  got=f"shape {tuple(arr.shape)} of {arr.dtype}"))
    if not src.gpu and not arr.flags.writeable:
        raise LayoutError(message(f"out column {f.name!r} is read-only",
                                  expected="writable memory", got="a read-only view"))
    if f.shape and not arr[0:1].flags.c_contiguous:
        raise LayoutError(message(f"out column {f.name!r} has strided sub-arrays",
                                  expected="contiguous rows", got=f"strides {arr.strides}"))
    if src.gpu and not arr.flags.c_contiguous:
        raise LayoutError(message(f"out column {f.name!r} is strided",
                                  expected="contiguous GPU columns", got="a strided view"))
    return arr


def _move_gather(src: _Source, columns: list[Any]) -> None:
    if src.gpu:
        base = src.base
        if src.stride != src.layout.itemsize or not base.flags.c_contiguous:
            base = base.copy()  # tiles need back-to-back records (documented copy)
        flat = base.reshape(-1).view("u1")
        _gpu.gather(flat, src.n, src.layout, columns)
        return
    layout, stride = src.layout, src.stride
    strides = tuple(c.strides[0] for c in columns)
    moves = _cpu.moves(("gather", layout, stride, strides), lambda: _cpu.Moves(
        (f.offset, stride, 0, cs, f.width) for f, cs in zip(layout.fields, strides,
                                                              strict=True)))
    _cpu.run(src.n, src.address(), 0, moves,
             dst=moves.addresses([c.ctypes.data for c in columns]))


def _finish(names: Sequence[str], columns: list[Any], to: str | None, src: _Source,
            copy: bool | None) -> Any:
    if to == "block":
        raise LayoutError(message("to='block' needs the columns copied into a block",
                                  expected="copy=True", got="views of the input"))
    return _interop.make_table(list(names), columns, to or src.framework, rows=src.n, copy=copy)


# ------------------------------------------------------------------------ records out


def to_records(columns: object, *, aligned: bool = False, dtype: object = None,
               out: object = None, structured: bool | None = None, to: str | None = None) -> Any:
    """Columns (SoA) -> records (AoS).

    ``columns``: a mapping name -> array (any framework, CPU or GPU), a pyarrow
    Table/RecordBatch, a pandas / polars / cuDF DataFrame, or a ColumnBlock.
    ``aligned``: lay fields out as a C struct would (True) or packed (False, default).
    ``dtype``: the record description to write instead (fields taken by name; columns of
    another type are cast), or one scalar dtype for an ``(N, k)`` result of that type.
    ``structured``: True gives a NumPy structured array (CPU only); False an ``(N, k)``
    array when all fields share one type, else ``(N, itemsize)`` uint8 records. None
    picks structured for NumPy results, the array form for other frameworks and GPU.
    ``out``: a buffer to write the records into (structured array, uint8, or (N, k)).
    ``to``: framework of the result (default: the caller's, NumPy for tables).
    """
    if isinstance(columns, ColumnBlock):
        done = _scatter_from_block(columns, aligned, dtype, out, structured, to)
        if done is not None:
            return done
    names, cols = _interop.table_columns(columns)
    gpu = bool(cols) and not isinstance(cols[0], np.ndarray)
    n = _common_length(names, cols)
    layout, cols, want_matrix = _target_layout(names, cols, aligned, dtype, gpu)
    layout.check_writable()
    framework = to or _result_framework(columns, gpu)
    if structured is None:
        structured = framework == "numpy" and not want_matrix
    buf = _record_buffer(out, n, layout, gpu)
    _move_scatter(cols, n, layout, buf, gpu)
    return _shape_result(buf, n, layout, structured, framework, gpu)


def _scatter_from_block(block: ColumnBlock, aligned: bool, dtype: object, out: Any, structured: bool | None,
                        to: str | None) -> Any:
    """to_records from a block, planned once per kind of call (see _gather_into_block)."""
    if dtype is not None and not isinstance(dtype, np.dtype):
        return None
    gpu = block.device == "cuda"
    n = block.n_rows
    if n < 2 or (out is not None and _array_kind(out) is not gpu):
        return None
    key = ("scatter", bool(aligned), dtype, structured, to)
    plan: _Plan | Literal[False] | None = block.plans.get(key)
    if plan is None:
        plan = block.plans[key] = _scatter_plan(block, aligned, dtype, structured, to)
    if plan is False:
        return None
    nbytes = n * plan.itemsize
    if out is None:
        buf = _new_records(nbytes, gpu)
    else:
        if not out.flags.c_contiguous or out.nbytes != nbytes or (
                not gpu and not out.flags.writeable):
            return None
        buf = out.reshape(-1).view(np.uint8 if not gpu else "u1")
    if gpu:
        plan.launch(buf, n)
    else:
        _cpu.run(n, block.address(), buf.ctypes.data, plan.moves)
    return _shape_result(buf, n, plan.layout, plan.structured, plan.framework, gpu)


def _new_records(nbytes: int, gpu: bool) -> Any:
    if gpu:
        import cupy

        return cupy.empty(nbytes, cupy.uint8)
    return np.empty(nbytes, np.uint8)


def _scatter_plan(block: ColumnBlock, aligned: bool, dtype: object, structured: bool | None,
                  to: str | None) -> _Plan | Literal[False]:
    """The plan for to_records(block, ...) of this kind, or False (general path)."""
    gpu = block.device == "cuda"
    names, views = list(block.names), list(block.views())
    try:
        layout, cols, want_matrix = _target_layout(names, views, aligned, dtype, gpu)
        layout.check_writable()
    except ZeroCopyError:
        return False
    by_name = dict(zip(names, views, strict=True))
    if any(c is not by_name[f.name] for c, f in zip(cols, layout.fields, strict=True)):
        return False  # a cast or a copy per call: the general path
    plan = _Plan()
    framework = to or (_interop.DEVICE if gpu else _interop.HOST)
    plan.layout, plan.itemsize = layout, layout.itemsize
    plan.structured = (framework == "numpy" and not want_matrix) if structured is None \
        else structured
    plan.framework = framework
    if gpu:
        plan.launch = _gpu.Launch(layout, "scatter", cols)
    else:
        base = block.address()
        plan.moves = _scatter_moves(layout, [c.strides[0] for c in cols],
                                    [c.ctypes.data - base for c in cols])
    return plan


def _common_length(names: list[str], cols: list[Any]) -> int:
    lengths = {int(c.shape[0]) for c in cols}
    if len(lengths) > 1:
        raise LayoutError(message("columns differ in length", expected="equal lengths",
                                  got=", ".join(f"{n}:{c.shape[0]}" for n, c in
                                                zip(names, cols, strict=True))))
    return lengths.pop() if lengths else 0


def _target_layout(names: list[str], cols: list[Any], aligned: bool, dtype: Any,
                   gpu: bool) -> tuple[RecordLayout, list[Any], bool]:
    """The record layout to write, columns in field order (cast where needed)."""
    want_matrix = False
    if dtype is not None and np.dtype(dtype).names is None:
        scalar = check_column_dtype(np.dtype(dtype), "(dtype)")
        layout = RecordLayout.build(names, [scalar] * len(names))
        want_matrix = True
    elif dtype is not None:
        layout = record_layout(dtype)
    else:
        layout = RecordLayout.build(names, [c.dtype for c in cols],
                                    [tuple(c.shape[1:]) for c in cols], aligned=aligned)
    by_name = dict(zip(names, cols, strict=True))
    ordered = []
    for f in layout.fields:
        if f.name not in by_name:
            raise LayoutError(message(f"no column for field {f.name!r}",
                                      expected=f"columns {list(layout.names)}", got=str(names)))
        ordered.append(_fit_column(by_name[f.name], f, gpu))
    return layout, ordered, want_matrix


def _fit_column(col: Any, f: Field, gpu: bool) -> Any:
    if col.dtype != f.dtype:  # the field's own dtype passed these checks already
        check_column_dtype(np.dtype(col.dtype), f.name)
    if tuple(col.shape[1:]) != f.shape:
        raise LayoutError(message(f"column {f.name!r} does not fit its field",
                                  expected=f"rows of shape {f.shape}",
                                  got=f"rows of shape {tuple(col.shape[1:])}"))
    if np.dtype(col.dtype) != f.dtype:
        col = col.astype(f.dtype)  # documented: a cast costs one extra pass
    if (f.shape or gpu) and not col.flags.c_contiguous:
        col = col.copy()
    return col


def _result_framework(columns: object, gpu: bool) -> str:
    if isinstance(columns, Mapping) and columns:
        first = next(iter(columns.values()))
        name = _interop.array_framework(first)
        if not _interop.is_table_framework(name):
            return name
    return _interop.DEVICE if gpu else _interop.HOST


def _record_buffer(out: Any, n: int, layout: RecordLayout, gpu: bool) -> Any:
    """Flat uint8 buffer of ``n * itemsize`` bytes: ``out`` viewed as bytes, or new."""
    nbytes = n * layout.itemsize
    if out is None:
        if gpu:
            import cupy

            return cupy.empty(nbytes, cupy.uint8)
        return np.empty(nbytes, np.uint8)
    # Written in place: a copy of ``out`` would lose the writes, so the hop must share.
    arr = _interop.as_device(out, copy=False) if gpu else _interop.as_host(out, copy=False)
    ok = arr.flags.c_contiguous and arr.size * arr.dtype.itemsize == nbytes
    if not ok or (not gpu and not arr.flags.writeable):
        raise LayoutError(message(
            "out= cannot hold the records", expected=f"a writable C-contiguous buffer of "
            f"{nbytes} bytes", got=f"{arr.size * arr.dtype.itemsize} bytes, "
            f"contiguous={arr.flags.c_contiguous}"))
    return arr.reshape(-1).view(np.uint8 if not gpu else "u1")


def _move_scatter(cols: list[Any], n: int, layout: RecordLayout, buf: Any, gpu: bool) -> None:
    if gpu:
        _gpu.scatter(cols, n, layout, buf)
        return
    strides = tuple(c.strides[0] for c in cols)
    moves = _cpu.moves(("scatter", layout, strides), lambda: _scatter_moves(layout, strides))
    _cpu.run(n, 0, buf.ctypes.data, moves, src=moves.addresses([c.ctypes.data for c in cols]))


def _scatter_moves(layout: RecordLayout, strides: Sequence[int],
                   offsets: Sequence[int] | None = None) -> _cpu.Moves:
    """Columns (at ``offsets`` from a base, or per call) -> records, padding zeroed."""
    offsets = offsets or [0] * len(strides)
    size = layout.itemsize
    return _cpu.Moves(((o, cs, f.offset, size, f.width) for f, cs, o in
                       zip(layout.fields, strides, offsets, strict=True)),
                      ((a, size, b - a) for a, b in layout.gaps()))


def _shape_result(buf: Any, n: int, layout: RecordLayout, structured: bool, framework: str,
                  gpu: bool) -> Any:
    if structured:
        if gpu:
            raise UnsupportedDtypeError(message(
                "GPU arrays have no structured dtype", expected="structured=False",
                got="structured=True", hint="records stay (N, itemsize) uint8 on GPU"))
        return buf.view(layout.to_dtype())
    uniform = layout.uniform_dtype()
    arr = (buf.view(uniform).reshape(n, len(layout.fields)) if uniform is not None
           else buf.reshape(n, layout.itemsize))
    return _interop.result(arr, framework)
