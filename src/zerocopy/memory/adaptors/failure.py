"""On out-of-memory, ask for memory back and retry.

``callback(nbytes, framework, attempt) -> bool`` runs when the upstream raises a
``MemoryError`` (zerocopy's, CUDA's, or a framework's OOM built on it); returning True
retries, up to ``retries`` times. ``release_caches`` is the ready-made callback: it
collects Python garbage (dropped arrays whose memory is still held), then asks every
*other* imported framework to empty its cache. Those cache flushes block until the GPU
is idle, so they run only on this failure path, never routinely.
"""

from __future__ import annotations

import gc
import importlib
import sys
import threading
from collections.abc import Callable

from zerocopy.memory.hooks import HOOKS
from zerocopy.memory.resource import MemoryResource, ResourceAdaptor

__all__ = ["OutOfMemoryCallbackAdaptor", "release_caches"]

Callback = Callable[[int, "str | None", int], bool]


def release_caches(nbytes: int, framework: str | None, attempt: int) -> bool:
    """Free garbage, then other frameworks' caches; retry once after each kind of release."""
    if attempt == 0:
        gc.collect()
        return True
    if attempt == 1:
        released = False
        for name, module_name in HOOKS.items():
            if name != framework and name in sys.modules:
                released |= _release(module_name)
        return released
    return False


def _release(module_name: str) -> bool:
    # Asking a cache to shrink must never turn one error into another: a framework that is
    # imported but has no usable device (numba.cuda without a driver) simply frees nothing.
    try:
        return bool(importlib.import_module(module_name).release_cache())
    except Exception:
        return False


class OutOfMemoryCallbackAdaptor(ResourceAdaptor):
    def __init__(self, upstream: MemoryResource, callback: Callback = release_caches, *,
                 retries: int = 2) -> None:
        super().__init__(upstream)
        self.callback = callback
        self.retries = retries
        self.calls = 0
        self._lock = threading.Lock()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        attempt = 0
        while True:
            try:
                return self.upstream.allocate(nbytes, stream, framework=framework)
            except MemoryError:
                if attempt >= self.retries:
                    raise
                with self._lock:
                    self.calls += 1
                if not self.callback(nbytes, framework, attempt):
                    raise
                attempt += 1
