"""Column blocks: one buffer whose slices are a table's columns.

A table can become a 2-D tensor without a copy only when its columns already sit in one
allocation at a constant distance. Two columns that merely happen to be adjacent in
memory are not enough (freeing one would leave the tensor dangling), so a block must be
*registered* by whoever allocated it (``zerocopy.layout``'s column block, or a pandas
consolidated block, which pandas itself owns). ``stack_view`` then returns a strided view
that keeps the block's owner alive.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

__all__ = ["find_block", "register", "stack_view"]

_BLOCKS: dict[int, tuple[int, int, weakref.ref[Any]]] = {}
_LOCK = threading.Lock()


def _pointer(x: np.ndarray) -> int:
    return int(x.__array_interface__["data"][0])


def register(owner: np.ndarray) -> np.ndarray:
    """Declare ``owner`` (a contiguous array) a block whose slices may be stacked back."""
    base = owner
    while isinstance(base.base, np.ndarray):
        base = base.base
    start = _pointer(owner)
    end = start + owner.nbytes
    key = id(owner)
    with _LOCK:
        _BLOCKS[key] = (start, end, weakref.ref(owner, lambda _: _forget(key)))
    return owner


def _forget(key: int) -> None:
    with _LOCK:
        _BLOCKS.pop(key, None)


def find_block(start: int, end: int) -> np.ndarray | None:
    with _LOCK:
        entries = list(_BLOCKS.values())
    for lo, hi, ref in entries:
        owner = ref()
        if owner is not None and lo <= start and end <= hi:
            return owner
    return None


def stack_view(columns: list[np.ndarray]) -> np.ndarray | None:
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
    if any(b - a != step for a, b in zip(pointers, pointers[1:], strict=False)):
        return None
    lo, hi = min(pointers), max(pointers) + max(len(first) - 1, 0) * first.strides[0] + first.itemsize
    owner = find_block(lo, hi)
    if owner is None:
        return None
    if not (owner.flags.c_contiguous or owner.flags.f_contiguous):
        return None
    # np.ndarray over the owner's buffer checks the bounds and keeps the owner alive.
    return np.ndarray((len(first), len(columns)), dtype=first.dtype, buffer=owner,
                      offset=pointers[0] - _pointer(owner), strides=(first.strides[0], step))
