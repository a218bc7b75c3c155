"""Leak tracking: every outstanding allocation with the Python stack that made it.

``leaks()`` lists what is still allocated; ``format_leaks()`` prints each with its stack,
innermost user frame last, with zerocopy's own frames cut off so the first line a person
reads is theirs. Capturing a stack costs tens of microseconds: this is a debugging layer.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field

from zerocopy.memory.resource import DIRECT, MemoryResource, ResourceAdaptor

__all__ = ["Allocation", "TrackingAdaptor"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Allocation:
    ptr: int
    nbytes: int
    framework: str
    stream: int
    thread: str
    time: float
    stack: tuple[traceback.FrameSummary, ...] = field(default=(), repr=False)

    def format(self) -> str:
        head = (f"{self.nbytes} bytes at {self.ptr:#x} by {self.framework} "
                f"(thread {self.thread}, stream {self.stream})")
        if not self.stack:
            return head + "\n  (no stack captured)"
        return head + "\n" + "".join(traceback.format_list(list(self.stack))).rstrip()


def _user_stack(limit: int) -> tuple[traceback.FrameSummary, ...]:
    frames = traceback.extract_stack(limit=limit + 8)
    # Drop zerocopy's own frames at the top (adaptors, hooks): they are the same for all.
    while frames and frames[-1].filename.startswith(_PACKAGE_DIR):
        frames.pop()
    return tuple(frames[-limit:])


class TrackingAdaptor(ResourceAdaptor):
    def __init__(self, upstream: MemoryResource, *, capture_stacks: bool = True,
                 stack_limit: int = 12) -> None:
        super().__init__(upstream)
        self.capture_stacks = capture_stacks
        self.stack_limit = stack_limit
        self._lock = threading.Lock()
        self._live: dict[int, Allocation] = {}

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        stack = _user_stack(self.stack_limit) if self.capture_stacks else ()
        ptr = self.upstream.allocate(nbytes, stream, framework=framework)
        record = Allocation(ptr, nbytes, framework or DIRECT, stream or 0,
                            threading.current_thread().name, time.time(), stack)
        with self._lock:
            self._live[ptr] = record
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        with self._lock:
            record = self._live.pop(ptr, None)
        try:
            self.upstream.deallocate(ptr, nbytes, stream)
        except BaseException:
            if record is not None:
                with self._lock:
                    self._live[ptr] = record
            raise

    def leaks(self, framework: str | None = None) -> list[Allocation]:
        """Outstanding allocations, oldest first (optionally of one framework)."""
        with self._lock:
            records = list(self._live.values())
        records.sort(key=lambda a: a.time)
        return [a for a in records if framework is None or a.framework == framework]

    def format_leaks(self, framework: str | None = None) -> str:
        leaks = self.leaks(framework)
        if not leaks:
            return "no outstanding allocations"
        total = sum(a.nbytes for a in leaks)
        parts = [f"{len(leaks)} outstanding allocation(s), {total} bytes:"]
        parts += [a.format() for a in leaks]
        return "\n".join(parts)
