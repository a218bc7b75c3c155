"""Column blocks: one buffer whose slices are a table's columns.

A table can become a 2-D tensor without a copy only when its columns already sit in one
allocation at a constant distance. Two columns that merely happen to be adjacent in
memory are not enough (freeing one would leave the tensor dangling), so a block must be
*registered* by whoever allocated it (``zerocopy.layout``'s column block, or a pandas
consolidated block, which pandas itself owns). ``stack_view`` then returns a strided view
that keeps the block's owner alive. Blocks are NumPy arrays (host) or CuPy arrays (device:
cuDF tables over a GPU column block); pointers of both live in one address space.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any

import numpy as np

from zerocopy.exchange.edges import Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, TABLE, Info

__all__ = ["block_edge", "find_block", "register", "stack_view"]

_BLOCKS: dict[int, tuple[int, int, weakref.ref[Any]]] = {}
_LOCK = threading.Lock()


def _pointer(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(x.__array_interface__["data"][0])
    return int(x.data.ptr)  # CuPy


def register(owner: Any) -> Any:
    """Declare ``owner`` (a contiguous NumPy or CuPy array) a block whose slices may be
    stacked back."""
    start = _pointer(owner)
    end = start + owner.nbytes
    key = id(owner)
    with _LOCK:
        _BLOCKS[key] = (start, end, weakref.ref(owner, lambda _: _forget(key)))
    return owner


def _forget(key: int) -> None:
    with _LOCK:
        _BLOCKS.pop(key, None)


def find_block(start: int, end: int) -> Any:
    with _LOCK:
        entries = list(_BLOCKS.values())
    for lo, hi, ref in entries:
        owner = ref()
        if owner is not None and lo <= start and end <= hi:
            return owner
    return None


def stack_view(columns: list[Any]) -> Any:
    """A (rows, k) view over ``columns`` if they lie in one registered block at a constant
    distance with the same dtype and stride; None otherwise."""
    if not columns:
        return None
    first = columns[0]
    if any(c.dtype != first.dtype or c.shape != first.shape or c.strides != first.strides
           for c in columns) or first.ndim != 1:
        return None
    pointers = [_pointer(c) for c in columns]
    step = pointers[1] - pointers[0] if len(pointers) > 1 else first.itemsize * len(first)
    if any(b - a != step for a, b in itertools.pairwise(pointers)):
        return None
    lo, hi = min(pointers), max(pointers) + max(len(first) - 1, 0) * first.strides[0] + first.itemsize
    owner = find_block(lo, hi)
    if owner is None:
        return None
    # A host column over a device block (or the reverse) is no view of it.
    usable = (owner.flags.c_contiguous or owner.flags.f_contiguous) and type(owner) is type(first)
    return _view(owner, first, pointers[0] - _pointer(owner), len(columns), step) if usable else None


def _view(owner: Any, first: Any, offset: int, count: int, step: int) -> Any:
    shape, strides = (len(first), count), (first.strides[0], step)
    if isinstance(owner, np.ndarray):
        # np.ndarray over the owner's buffer checks the bounds and keeps the owner alive.
        return np.ndarray(shape, dtype=first.dtype, buffer=owner, offset=offset, strides=strides)
    import cupy  # the owner is a CuPy array, so CuPy is loaded

    # The memory pointer holds the owner's allocation: the view keeps it alive.
    return cupy.ndarray(shape, dtype=first.dtype, strides=strides, memptr=owner.data + offset)


def block_edge(source: str, columns_of: Any, project: Any, caveat: str, target: str = "numpy") -> Edge:
    """The edge table -> 2-D array of a framework whose columns ``columns_of(table)``
    returns as NumPy (or, with ``target="cupy"``, CuPy) views: shared when they lie in one
    registered block."""

    def stackable(info: Info, options: Options) -> Refusal | None:
        if info.nulls or info.dtype in (None, "bool") or info.extra.get("bits"):
            return Refusal("the columns are not one null-free numeric dtype")
        try:
            view = stack_view(columns_of(info.obj))
        except Exception:  # chunked, bit-packed or Arrow-backed columns have no plain view
            view = None
        if view is None:
            return Refusal(f"{source} keeps each column in its own buffer, so a 2-D tensor "
                           "needs a copy", "allocate the table in zerocopy.column_block() to share it")
        return None

    def run(table: Any, options: Options) -> Any:
        view = stack_view(columns_of(table))
        if view is None:  # the plan's check saw a block; the table changed since
            raise BufferError("the table's columns no longer lie in one block")
        return view

    return Edge(source, target, "column block", "strided view over the table's column block",
                run, check=stackable, cost=5.0, kinds=frozenset({TABLE}), result_kind=ARRAY,
                project=project, caveat=lambda info: caveat)
