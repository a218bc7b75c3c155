"""A global budget and per-framework budgets.

Bytes are reserved under the lock *before* the upstream call and returned if it fails, so
many threads can never overshoot a budget together. A refusal raises the framework's own
out-of-memory type (see ``_oom``): CuPy code catching ``cupy.cuda.memory.OutOfMemoryError``
or torch code catching ``torch.OutOfMemoryError`` handles it, and the process goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from zerocopy.errors import message
from zerocopy.memory._oom import oom_error
from zerocopy.memory.resource import DIRECT, MemoryResource, ResourceAdaptor

__all__ = ["LimitingAdaptor"]


class LimitingAdaptor(ResourceAdaptor):
    def __init__(self, upstream: MemoryResource, *, limit: int | None = None,
                 limits: Mapping[str, int] | None = None) -> None:
        super().__init__(upstream)
        self.limit = limit
        self.limits: dict[str, int] = dict(limits or {})
        self._lock = threading.Lock()
        self._live: dict[int, tuple[int, str]] = {}
        self._used_total = 0
        self._used: dict[str, int] = {}
        self.refusals = 0

    def used(self, framework: str | None = None) -> int:
        return self._used_total if framework is None else self._used.get(framework, 0)

    def set_limit(self, framework: str | None, nbytes: int | None) -> None:
        """Change a budget at run time (``framework=None``: the global one; ``None`` lifts it)."""
        with self._lock:
            if framework is None:
                self.limit = nbytes
            elif nbytes is None:
                self.limits.pop(framework, None)
            else:
                self.limits[framework] = nbytes

    def _refusal(self, name: str, nbytes: int) -> str | None:
        own = self.limits.get(name)
        used = self._used.get(name, 0)
        if own is not None and used + nbytes > own:
            return message(f"{name} would exceed its zerocopy memory limit",
                           expected=f"at most {own} bytes in use",
                           got=f"{used} bytes in use and {nbytes} more asked",
                           hint="free arrays no longer needed, or raise share(limits=...)")
        if self.limit is not None and self._used_total + nbytes > self.limit:
            return message(f"{name} would exceed the global zerocopy memory limit",
                           expected=f"at most {self.limit} bytes in use",
                           got=f"{self._used_total} bytes in use and {nbytes} more asked",
                           hint="free arrays no longer needed, or raise share(limit=...)")
        return None

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        name = framework or DIRECT
        with self._lock:
            why = self._refusal(name, nbytes)
            if why is None:
                self._used_total += nbytes
                self._used[name] = self._used.get(name, 0) + nbytes
            else:
                self.refusals += 1
        if why is not None:
            raise oom_error(framework, why)
        try:
            ptr = self.upstream.allocate(nbytes, stream, framework=framework)
        except BaseException:
            self._release(name, nbytes)
            raise
        with self._lock:
            self._live[ptr] = (nbytes, name)
        return ptr

    def _release(self, name: str, nbytes: int) -> None:
        with self._lock:
            self._used_total -= nbytes
            self._used[name] -= nbytes

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
        if record is not None:
            self._release(record[1], record[0])
