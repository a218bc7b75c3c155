"""What the exchange remembers between calls: one bounded store, one lock, one ``clear()``.

Everything the exchange learns once and reuses lives here, under one policy:

- per class: how to read its objects (the adapter's ``inspect``, ``fast_key`` and
  ``fast_pointer``);
- per (source, target) framework pair and edge set: the ranked routes (``plan.routes``);
- per (object signature, target, options): the :class:`~zerocopy.exchange.plan.Plan`
  that ``to()`` runs, and per fast key (the fast lane) the same Plan again.

Keys of different kinds never collide (a class, or a tuple whose first item says which
table it belongs to). Reads take no lock: one ``dict.get`` is atomic, and the hot path is
one read. Writes take the lock. When the store holds ``BOUND`` entries, the oldest one goes
(a dict keeps insertion order), so a program that meets many shapes keeps its recent
routes rather than losing all of them at once.

``clear()`` forgets everything: for tests and programs that change what a plan depended on
(``jax_enable_x64``, a framework installed or monkeypatched after the first call).
Facts kept elsewhere are facts of the machine, not of objects: which frameworks are
installed and their edges (``zerocopy.registry``, cached for the process), the CUDA device
count (``zerocopy._cuda``).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

__all__ = ["BOUND", "Store", "clear", "get", "items", "put", "size"]

BOUND = 4096


class Store:
    """A bounded dict: lock-free reads, locked writes, oldest entry evicted first."""

    __slots__ = ("_items", "_lock", "bound", "get")

    def __init__(self, bound: int = BOUND) -> None:
        self._items: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.bound = bound
        self.get = self._items.get  # the hot path: one C call

    def put(self, key: Hashable, value: Any) -> Any:
        with self._lock:
            if key not in self._items:
                while len(self._items) >= self.bound:
                    del self._items[next(iter(self._items))]
            self._items[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()  # in place: ``get`` stays bound to the same dict

    def __len__(self) -> int:
        return len(self._items)


_STORE = Store()
get = _STORE.get
put = _STORE.put


def items() -> dict[Hashable, Any]:
    """The store's dict itself, for the C fast lane (zerocopy._speedups.lane): reads only,
    and ``clear()`` empties it in place, so a reference taken once stays current."""
    return _STORE._items


def clear() -> None:
    """Forget every learned class, route and plan (the next call plans afresh)."""
    _STORE.clear()


def size() -> int:
    """How many entries the store holds now (at most ``BOUND``)."""
    return len(_STORE)
