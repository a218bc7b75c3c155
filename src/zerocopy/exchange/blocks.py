"""Column blocks: when a table's columns are one 2-D tensor without a copy. One rule, here.

A table becomes a ``(rows, k)`` tensor without a copy only when its columns lie in one
allocation at a constant distance, with one dtype, one length and one stride. Two columns
that merely happen to be adjacent in memory are not enough: whether they are would
depend on the allocator, so the same code would share on one run and copy on the next.
The allocation is found one of two ways:

- a *registered* block: whoever allocated it declared it (``zerocopy.layout``'s column
  block, ``read_parquet``); a view of it is as writable as the block;
- a *common base*: every column is a view of the same array (a pandas block, the columns
  of one 2-D array, one CuPy allocation); a view of it is writable only if every column
  is (pandas hands out read-only columns under copy-on-write).

:func:`one_block` is that rule. ``zerocopy.to`` (through :func:`block_edge`, the
table -> 2-D array edge of every table framework) and ``zerocopy.stack`` (through
``zerocopy.layout.tables``) both ask it, so they give the same answer for the same table.
Blocks are NumPy arrays (host) or CuPy arrays (device); pointers of both live in one
address space.

The small column checks every table framework's ``columns()`` needs (nulls, numeric
types, copies refused under ``copy=False``) live here too, so their messages are one.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerocopy import copies
from zerocopy.errors import NotZeroCopyError, NullValuesError, UnsupportedDtypeError, message
from zerocopy.exchange.edges import Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, TABLE, Info

__all__ = ["block_edge", "copy_refused", "find_block", "is_ordered", "no_nulls", "not_numeric",
           "one_block", "register", "stack_view"]

_BLOCKS: dict[int, tuple[int, int, weakref.ref[Any]]] = {}
_LOCK = threading.Lock()


def _pointer(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(x.__array_interface__["data"][0])
    return int(x.data.ptr)  # CuPy


def register(owner: Any) -> Any:
    """Declare ``owner`` (a contiguous NumPy or CuPy array) a block whose slices may be
    stacked back. The declaration lasts as long as the memory: a table's columns keep the
    allocation alive after ``owner`` itself (a slice of it, say) is gone."""
    start = _pointer(owner)
    end = start + owner.nbytes
    alive = _lifetime(owner)
    key = id(alive)
    with _LOCK:
        _BLOCKS[key] = (start, end, weakref.ref(alive, lambda _: _forget(key)))
    return owner


def _lifetime(owner: Any) -> Any:
    """The object whose life is the memory's: the NumPy array that owns it (views name it
    as their base), or CuPy's allocation (views hold it through their memory pointer)."""
    if isinstance(owner, np.ndarray):
        return _root(owner)
    try:
        weakref.ref(owner.data.mem)
    except TypeError:  # an allocation type without weak references: the array then
        return owner
    return owner.data.mem


def _forget(key: int) -> None:
    with _LOCK:
        _BLOCKS.pop(key, None)


def find_block(start: int, end: int) -> Any:
    """The allocation (see ``_lifetime``) of the registered block that holds bytes
    ``[start, end)``, or None."""
    with _LOCK:
        entries = list(_BLOCKS.values())
    for lo, hi, ref in entries:
        owner = ref()
        if owner is not None and lo <= start and end <= hi:
            return owner
    return None


# ------------------------------------------------------------------------- the one rule


def one_block(columns: Sequence[Any]) -> Any:
    """A ``(rows, k)`` view over ``columns`` (1-D NumPy or CuPy arrays) when they lie in one
    allocation at a constant distance with the same dtype, length and stride; None
    otherwise. The view keeps the allocation alive."""
    if not columns:
        return None
    first = columns[0]
    if first.ndim != 1 or any(type(c) is not type(first) or c.dtype != first.dtype
                              or c.shape != first.shape or c.strides != first.strides
                              for c in columns):
        return None
    pointers = [_pointer(c) for c in columns]
    step = pointers[1] - pointers[0] if len(pointers) > 1 else first.itemsize * len(first)
    if any(b - a != step for a, b in itertools.pairwise(pointers)):
        return None
    lo, hi = _span(pointers, len(first), first.strides[0], first.itemsize)
    shape, strides = (len(first), len(columns)), (first.strides[0], step)
    owner = find_block(lo, hi)
    # A host column over a device block (or the reverse) is no view of it.
    if owner is not None and isinstance(owner, np.ndarray) == isinstance(first, np.ndarray):
        return _registered_view(owner, first, pointers[0], shape, strides)
    if _same_base(columns, lo, hi):
        return _base_view(columns, shape, strides)
    return None


# The former name: the exchange edges called the rule this.
stack_view = one_block


def is_ordered(view: Any, order: str) -> bool:
    """Is ``view`` (rows, k) laid out in ``order``: "F" each column contiguous (column-major,
    any distance between columns), "C" each row contiguous (row-major)?"""
    rows, k = view.shape
    if order == "F":
        return rows <= 1 or view.strides[0] == view.itemsize
    return k <= 1 or view.strides[1] == view.itemsize


def _span(pointers: list[int], rows: int, stride: int, itemsize: int) -> tuple[int, int]:
    """Bytes ``[lo, hi)`` the columns cover (negative strides and steps included)."""
    reach = (rows - 1) * stride if rows else 0
    lo = min(pointers) + min(reach, 0)
    hi = max(pointers) + max(reach, 0) + (itemsize if rows else 0)
    return lo, hi


def _root(x: Any) -> Any:
    """The allocation a column is a view of: the last NumPy array of its ``.base`` chain, or
    CuPy's memory object."""
    if not isinstance(x, np.ndarray):
        return x.data.mem  # CuPy: the allocation itself
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def _same_base(columns: Sequence[Any], lo: int, hi: int) -> bool:
    root = _root(columns[0])
    if any(_root(c) is not root for c in columns[1:]):
        return False
    if isinstance(root, np.ndarray):
        start, end = np.lib.array_utils.byte_bounds(root)
    else:
        start, end = int(root.ptr), int(root.ptr) + int(root.size)
    return start <= lo and hi <= end


def _registered_view(owner: Any, first: Any, start: int, shape: tuple[int, int],
                     strides: tuple[int, int]) -> Any:
    """A view starting at address ``start`` of a registered allocation ``owner``."""
    if isinstance(owner, np.ndarray):
        # np.ndarray over the owner's buffer checks the bounds and keeps the owner alive.
        return np.ndarray(shape, dtype=first.dtype, buffer=owner, offset=start - _pointer(owner),
                          strides=strides)
    if isinstance(owner, type(first)):  # a CuPy array (its allocation had no weak reference)
        return _device_view(owner.data + (start - _pointer(owner)), first.dtype, shape, strides)
    import cupy  # the columns are CuPy arrays, so CuPy is loaded

    memptr = cupy.cuda.MemoryPointer(owner, start - int(owner.ptr))
    return _device_view(memptr, first.dtype, shape, strides)


def _base_view(columns: Sequence[Any], shape: tuple[int, int], strides: tuple[int, int]) -> Any:
    first = columns[0]
    if isinstance(first, np.ndarray):
        # A view of the first column (whose base chain holds the allocation); read-only
        # when any column is (a pandas block under copy-on-write).
        writable = all(c.flags.writeable for c in columns)
        return np.lib.stride_tricks.as_strided(first, shape, strides, writeable=writable)
    return _device_view(first.data, first.dtype, shape, strides)


def _device_view(memptr: Any, dtype: Any, shape: tuple[int, int], strides: tuple[int, int]) -> Any:
    import cupy  # the columns are CuPy arrays, so CuPy is loaded

    # The memory pointer holds the allocation: the view keeps it alive.
    return cupy.ndarray(shape, dtype=dtype, strides=strides, memptr=memptr)


# ------------------------------------------------------------- the table -> tensor edge


def block_edge(source: str, columns_of: Callable[..., Any], project: Any, caveat: str,
               target: str = "numpy", known_block: Callable[[Any], Any] | None = None) -> Edge:
    """The edge table -> 2-D array of a table framework: shared when :func:`one_block` finds
    its columns in one allocation. ``columns_of`` is the framework module's ``columns``:
    ``columns_of(table, copy=False)`` gives ``(name, array)`` pairs (NumPy, or CuPy with
    ``target="cupy"``) or raises where a column has no view. ``known_block(table)``, where
    the framework has one, answers first without a look at every column: the same
    ``(rows, k)`` view :func:`one_block` would give when the framework itself keeps the
    columns as one block (pandas' block manager), None where it cannot tell at once. The
    check runs again on every call for another table of the same signature (the plan
    cache's guard), so its cost is the framework's: per block where it knows its blocks."""

    def arrays(table: Any) -> list[Any]:
        return [array for _, array in columns_of(table, copy=False)]

    def view_of(table: Any) -> Any:
        view = known_block(table) if known_block is not None else None
        return view if view is not None else one_block(arrays(table))

    def start(table: Any) -> int:
        try:
            view = view_of(table)
        except Exception:  # no view: the check refuses the hop anyway
            return 0
        return _pointer(view) if view is not None else 0

    def projected(info: Info, framework: str, kind: str | None) -> Info:
        new = project(info, framework, kind)
        # The view starts at the first column's data, whatever the table reports (a masked
        # or Arrow-backed frame reports no pointer): the alignment checks after this hop
        # (JAX, TensorFlow) must read where the view really starts.
        new._pointer, new._ptr = None, start(info.obj) if info.obj is not None else 0
        return new

    def stackable(info: Info, options: Options) -> Refusal | None:
        if info.nulls or info.dtype is None or info.extra.get("bits"):
            return Refusal("the columns are not one null-free numeric dtype")
        try:
            view = view_of(info.obj)
        except Exception:  # chunked, bit-packed or non-numeric columns have no plain view
            view = None
        if view is None:
            return Refusal(f"{source} keeps each column in its own buffer, so a 2-D tensor "
                           "needs a copy", "allocate the table in zerocopy.column_block() to share it")
        return None

    def run(table: Any, options: Options) -> Any:
        view = known_block(table) if known_block is not None else None
        if view is not None:
            return view
        columns = arrays(table)
        view = one_block(columns)
        if view is None:
            # The route was planned for a table whose columns were one block, and cached
            # under facts that do not say so (a table's signature holds its dtypes and
            # names, not where its columns lie): this one needs the copy.
            return _stale_route_copy(source, target, columns, options)
        return view

    return Edge(source, target, "column block", "strided view over the table's column block",
                run, check=stackable, cost=5.0, kinds=frozenset({TABLE}), result_kind=ARRAY,
                project=projected, caveat=lambda info: caveat, reads_object=True)


def _stale_route_copy(source: str, target: str, columns: list[Any], options: Options) -> Any:
    if options.copy is False:
        raise NotZeroCopyError(message(
            f"the {source} table's columns are not one block, so a 2-D tensor needs a copy",
            expected="columns in one allocation (zerocopy.column_block)", got="separate buffers",
            hint="pass copy=None to accept the copy, or allocate the table in a column block"))
    first = columns[0]
    nbytes = len(columns) * first.nbytes
    if copies.WATCHING:
        copies.copied(f"{source} table", target, nbytes, "its columns are not one block")
    if isinstance(first, np.ndarray):
        out = np.empty((len(first), len(columns)), first.dtype, order="F")
    else:
        import cupy  # CuPy columns: CuPy is loaded

        out = cupy.empty((len(first), len(columns)), first.dtype, order="F")
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


# ------------------------------------------------------------------ column checks


def no_nulls(count: int, name: str) -> None:
    """Refuse a column with nulls: a tensor has no place for them."""
    if count:
        raise NullValuesError(message(
            f"column {name!r} has {count} null values, which a tensor cannot hold",
            expected="no nulls", got=f"{count} nulls",
            hint="fill them first (fill_null / fillna), e.g. with NaN for floats"))


def not_numeric(name: str, what: object) -> UnsupportedDtypeError:
    """The error for a column without a fixed-width numeric form (strings, nested...)."""
    return UnsupportedDtypeError(message(
        f"column {name!r} is not a fixed-width numeric column",
        expected="bool, int, uint, float or temporal values", got=str(what),
        hint="strings and nested values have no tensor form: drop or encode the column"))


def copy_refused(name: str, why: str) -> NotZeroCopyError:
    """The error for a column whose array would be a copy, under ``copy=False``."""
    return NotZeroCopyError(message(
        f"column {name!r} {why}, so its array is a copy", expected="copy=None or True",
        got="copy=False", hint="pass copy=None to accept the copy"))
