"""Current, peak and count of allocations, in total and per framework.

Only allocations that succeeded are counted. The pointer -> (size, framework) record is
removed *before* the upstream free and restored if that free fails, so a pointer the
upstream hands out again on another thread can never have its record deleted by a late
free of the old one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from zerocopy.memory.resource import DIRECT, MemoryResource, ResourceAdaptor

__all__ = ["StatisticsAdaptor", "Stats"]


@dataclass(frozen=True)
class Stats:
    """A snapshot. ``*_bytes`` are what callers asked for, not what the pool rounded to."""

    current_bytes: int = 0
    peak_bytes: int = 0
    current_count: int = 0
    peak_count: int = 0
    total_count: int = 0
    total_bytes: int = 0


class _Counter:
    __slots__ = ("current_bytes", "current_count", "peak_bytes", "peak_count",
                 "total_bytes", "total_count")

    def __init__(self) -> None:
        self.current_bytes = self.peak_bytes = self.total_bytes = 0
        self.current_count = self.peak_count = self.total_count = 0

    def snapshot(self) -> Stats:
        return Stats(self.current_bytes, self.peak_bytes, self.current_count, self.peak_count,
                     self.total_count, self.total_bytes)

    def reset_peaks(self) -> None:
        self.peak_bytes, self.peak_count = self.current_bytes, self.current_count


class StatisticsAdaptor(ResourceAdaptor):
    def __init__(self, upstream: MemoryResource) -> None:
        super().__init__(upstream)
        self._lock = threading.Lock()
        self._live: dict[int, tuple[int, str]] = {}
        self._total = _Counter()
        self._per: dict[str, _Counter] = {}
        self.unknown_frees = 0  # frees of pointers allocated before this adaptor existed

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        ptr = self.upstream.allocate(nbytes, stream, framework=framework)
        self.note_allocation(ptr, nbytes, framework or DIRECT)
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        record = self.note_free(ptr)
        try:
            self.upstream.deallocate(ptr, nbytes, stream)
        except BaseException:
            self.note_restore(ptr, record)
            raise

    # --- the bookkeeping, also called by fused hook paths (hooks.cupy) that skip the chain ---
    def note_allocation(self, ptr: int, nbytes: int, name: str) -> None:
        """Count a successful allocation (hot path: one lock, no loops, no calls)."""
        with self._lock:
            self._live[ptr] = (nbytes, name)
            total = self._total
            counter = self._per.get(name)
            if counter is None:
                counter = self._per[name] = _Counter()
            total.current_bytes += nbytes
            total.current_count += 1
            total.total_bytes += nbytes
            total.total_count += 1
            total.peak_bytes = max(total.peak_bytes, total.current_bytes)
            total.peak_count = max(total.peak_count, total.current_count)
            counter.current_bytes += nbytes
            counter.current_count += 1
            counter.total_bytes += nbytes
            counter.total_count += 1
            counter.peak_bytes = max(counter.peak_bytes, counter.current_bytes)
            counter.peak_count = max(counter.peak_count, counter.current_count)

    def note_free(self, ptr: int) -> tuple[int, str] | None:
        """Uncount ``ptr`` *before* it is freed; returns its record (for ``note_restore``)."""
        with self._lock:
            record = self._live.pop(ptr, None)
            if record is None:
                self.unknown_frees += 1
                return None
            nbytes = record[0]
            total, counter = self._total, self._per[record[1]]
            total.current_bytes -= nbytes
            total.current_count -= 1
            counter.current_bytes -= nbytes
            counter.current_count -= 1
        return record

    def note_restore(self, ptr: int, record: tuple[int, str] | None) -> None:
        """The free failed: the memory is still allocated, so count it again."""
        if record is None:
            return
        with self._lock:
            self._live[ptr] = record
            self._move(record, +1)

    def _move(self, record: tuple[int, str], sign: int) -> None:
        for c in (self._total, self._per[record[1]]):
            c.current_bytes += sign * record[0]
            c.current_count += sign

    def statistics(self, framework: str | None = None) -> Stats:
        """Totals, or one framework's numbers (zeros for a framework never seen)."""
        with self._lock:
            if framework is None:
                return self._total.snapshot()
            counter = self._per.get(framework)
            return counter.snapshot() if counter else Stats()

    def per_framework(self) -> dict[str, Stats]:
        with self._lock:
            return {name: counter.snapshot() for name, counter in sorted(self._per.items())}

    def framework_of(self, ptr: int) -> str | None:
        record = self._live.get(ptr)
        return record[1] if record else None

    def reset_peaks(self) -> None:
        with self._lock:
            self._total.reset_peaks()
            for counter in self._per.values():
                counter.reset_peaks()
