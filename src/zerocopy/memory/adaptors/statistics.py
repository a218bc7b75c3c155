"""Current, peak and count of allocations, in total and per framework.

Only allocations that succeeded are counted. The pointer -> (size, framework) record is
removed *before* the upstream free and restored if that free fails, so a pointer the
upstream hands out again on another thread can never have its record deleted by a late
free of the old one.

The book itself is ``zerocopy._speedups.Ledger`` (C: an open-addressing table and integer
counters, 0.06 us per alloc+free pair on the dev VM) where the extension is active, else
:class:`PyLedger`, its pure-Python twin (a dict and counter objects under a lock, 1.2 us per
pair there). Frameworks get small integer slots; the names live here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from zerocopy import _native
from zerocopy.memory.adaptors.failure import OutOfMemoryCallbackAdaptor
from zerocopy.memory.resource import DIRECT, MemoryResource, ResourceAdaptor
from zerocopy.memory.resources.device_pool import DevicePoolResource

__all__ = ["PyLedger", "StatisticsAdaptor", "Stats", "new_ledger"]


@dataclass(frozen=True)
class Stats:
    """A snapshot. ``*_bytes`` are what callers asked for, not what the pool rounded to."""

    current_bytes: int = 0
    peak_bytes: int = 0
    current_count: int = 0
    peak_count: int = 0
    total_count: int = 0
    total_bytes: int = 0


SLOTS = 64  # as many frameworks (and DIRECT) as one book counts; the C Ledger's LEDGER_SLOTS


class _Counter:
    __slots__ = ("current_bytes", "current_count", "peak_bytes", "peak_count",
                 "total_bytes", "total_count")

    def __init__(self) -> None:
        self.current_bytes = self.peak_bytes = self.total_bytes = 0
        self.current_count = self.peak_count = self.total_count = 0

    def add(self, nbytes: int, fresh: bool) -> None:
        self.current_bytes += nbytes
        self.current_count += 1
        if fresh:
            self.total_bytes += nbytes
            self.total_count += 1
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        self.peak_count = max(self.peak_count, self.current_count)

    def take(self, nbytes: int) -> None:
        self.current_bytes -= nbytes
        self.current_count -= 1

    def values(self) -> tuple[int, int, int, int, int, int]:
        return (self.current_bytes, self.peak_bytes, self.current_count, self.peak_count,
                self.total_count, self.total_bytes)

    def reset_peaks(self) -> None:
        self.peak_bytes, self.peak_count = self.current_bytes, self.current_count


class PyLedger:
    """The C Ledger's interface in Python: the reference, and the pure-Python path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, tuple[int, int]] = {}
        self._total = _Counter()
        self._per = [_Counter() for _ in range(SLOTS)]
        self.unknown_frees = 0

    @property
    def live(self) -> int:
        return len(self._live)

    def add(self, ptr: int, nbytes: int, slot: int) -> None:
        self._insert(ptr, nbytes, slot, fresh=True)

    def restore(self, ptr: int, nbytes: int, slot: int) -> None:
        self._insert(ptr, nbytes, slot, fresh=False)

    def _insert(self, ptr: int, nbytes: int, slot: int, *, fresh: bool) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"ledger slot {slot} is outside 0..{SLOTS - 1}")
        with self._lock:
            old = self._live.get(ptr)
            if old is not None:  # recorded twice: the pool handed it out again; replace
                self._total.take(old[0])
                self._per[old[1]].take(old[0])
            self._live[ptr] = (nbytes, slot)
            self._total.add(nbytes, fresh)
            self._per[slot].add(nbytes, fresh)

    def remove(self, ptr: int) -> tuple[int, int] | None:
        with self._lock:
            record = self._live.pop(ptr, None)
            if record is None:
                self.unknown_frees += 1
                return None
            self._total.take(record[0])
            self._per[record[1]].take(record[0])
            return record

    def slot_of(self, ptr: int) -> int:
        record = self._live.get(ptr)
        return record[1] if record else -1

    def counters(self, slot: int) -> tuple[int, int, int, int, int, int]:
        with self._lock:
            return (self._total if slot == -1 else self._per[slot]).values()

    def reset_peaks(self) -> None:
        with self._lock:
            self._total.reset_peaks()
            for counter in self._per:
                counter.reset_peaks()


def new_ledger() -> Any:
    """The C Ledger where the extension is active, else the Python one."""
    speedups = _native.speedups()
    return speedups.Ledger() if speedups is not None else PyLedger()


def _straight_to_pool(upstream: MemoryResource) -> tuple[Any, Any] | None:
    """The base pool's (malloc, free) where everything between is pass-through on success
    (only out-of-memory callbacks, which act on failure): the default ``share()`` chain."""
    resource = upstream
    while type(resource) is OutOfMemoryCallbackAdaptor:
        resource = resource.upstream
    if type(resource) is not DevicePoolResource:
        return None
    malloc, free = getattr(resource, "malloc", None), getattr(resource, "free", None)
    return (malloc, free) if malloc is not None and free is not None else None


class StatisticsAdaptor(ResourceAdaptor):
    """Statistics over ``upstream``. Over the default chain (OOM callback -> device pool)
    a successful allocation skips the layers between: the pool is called directly and the
    Ledger records it (a failure goes down the whole chain, callbacks and retries included).
    """

    def __init__(self, upstream: MemoryResource) -> None:
        super().__init__(upstream)
        self.ledger = new_ledger()
        self._slots: dict[str, int] = {}
        self._names: list[str] = []
        self._slot_lock = threading.Lock()
        self._straight = _straight_to_pool(upstream)

    @property
    def unknown_frees(self) -> int:
        """Frees of pointers allocated before this adaptor existed."""
        return int(self.ledger.unknown_frees)

    def slot(self, name: str) -> int:
        """The ledger slot of a framework name (hooks bind it once, then skip this lookup)."""
        slot = self._slots.get(name)
        if slot is None:
            with self._slot_lock:
                slot = self._slots.get(name)
                if slot is None:
                    if len(self._names) >= SLOTS:
                        raise ValueError(f"more than {SLOTS} names to count allocations under")
                    slot = self._slots[name] = len(self._names)
                    self._names.append(name)
        return slot

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        ptr = 0
        if self._straight is not None and nbytes:
            try:
                ptr = self._straight[0](nbytes, stream or 0)
            except Exception:  # out of memory or a CUDA error: the chain retries and types it
                ptr = 0
        if not ptr:
            ptr = self.upstream.allocate(nbytes, stream, framework=framework)
        self.ledger.add(ptr, nbytes, self.slot(framework or DIRECT))
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        record = self.ledger.remove(ptr)
        try:
            if self._straight is not None:
                if ptr:  # a 0-byte allocation may be NULL; there is nothing to free
                    self._straight[1](ptr, stream or 0)
            else:
                self.upstream.deallocate(ptr, nbytes, stream)
        except BaseException:
            if record is not None:
                self.ledger.restore(ptr, *record)
            raise

    # --- the bookkeeping on its own, for an allocator that skips the chain (hooks.cupy's
    # fused path binds the Ledger's add/remove/restore and its slot directly instead) ---
    def note_allocation(self, ptr: int, nbytes: int, name: str) -> None:
        """Count a successful allocation."""
        self.ledger.add(ptr, nbytes, self.slot(name))

    def note_free(self, ptr: int) -> tuple[int, int] | None:
        """Uncount ``ptr`` *before* it is freed; returns its record (for ``note_restore``)."""
        record: tuple[int, int] | None = self.ledger.remove(ptr)
        return record

    def note_restore(self, ptr: int, record: tuple[int, int] | None) -> None:
        """The free failed: the memory is still allocated, so count it again."""
        if record is not None:
            self.ledger.restore(ptr, *record)

    def statistics(self, framework: str | None = None) -> Stats:
        """Totals, or one framework's numbers (zeros for a framework never seen)."""
        if framework is None:
            return Stats(*self.ledger.counters(-1))
        slot = self._slots.get(framework)
        return Stats(*self.ledger.counters(slot)) if slot is not None else Stats()

    def per_framework(self) -> dict[str, Stats]:
        return {name: Stats(*self.ledger.counters(slot))
                for name, slot in sorted(self._slots.items())}

    def framework_of(self, ptr: int) -> str | None:
        slot = self.ledger.slot_of(ptr)
        return self._names[slot] if slot >= 0 else None

    def reset_peaks(self) -> None:
        self.ledger.reset_peaks()
