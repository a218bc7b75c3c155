"""Failure injection: every Nth allocation fails, to test code paths that handle OOM.

The failure is the framework's own out-of-memory type (as a real limit would raise), and
happens before the upstream is called, so nothing is allocated by a failed call.
"""

from __future__ import annotations

import threading

from zerocopy.errors import InvalidArgumentError, message
from zerocopy.memory._oom import oom_error
from zerocopy.memory.resource import MemoryResource, ResourceAdaptor

__all__ = ["FailureInjectionAdaptor"]


class FailureInjectionAdaptor(ResourceAdaptor):
    def __init__(self, upstream: MemoryResource, *, every: int) -> None:
        if every < 1:
            raise InvalidArgumentError(message("every must be at least 1", got=str(every)))
        super().__init__(upstream)
        self.every = every
        self.calls = 0
        self.injected = 0
        self._lock = threading.Lock()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        with self._lock:
            self.calls += 1
            fail = self.calls % self.every == 0
            if fail:
                self.injected += 1
        if fail:
            raise oom_error(framework, message(
                "injected allocation failure", got=f"call {self.calls} ({nbytes} bytes)",
                hint=f"FailureInjectionAdaptor(every={self.every}) fails every {self.every}th call"))
        return self.upstream.allocate(nbytes, stream, framework=framework)
