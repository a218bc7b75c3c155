"""Unified (managed) memory: lets a job oversubscribe the GPU, pages migrate on demand.

``prefetch=True`` moves each new allocation to the device on the allocating stream, so the
first kernel does not page-fault it in. Oversubscription is opt-in: asking for more
managed memory than the device has free can stall the whole GPU (seen on the test card),
so by default an allocation that does not fit in free device memory raises
``OutOfMemoryError`` up front; ``allow_oversubscription=True`` lifts that.
"""

from __future__ import annotations

import threading

from zerocopy import _cuda
from zerocopy.errors import OutOfMemoryError, message

__all__ = ["ManagedMemoryResource"]


class ManagedMemoryResource:
    def __init__(self, device: int | None = None, *, prefetch: bool = True,
                 allow_oversubscription: bool = False) -> None:
        self._rt = _cuda.binding()
        self.device = self._rt.current_device() if device is None else device
        self.prefetch = prefetch
        self.allow_oversubscription = allow_oversubscription
        self._outstanding = 0
        self._lock = threading.Lock()

    def _check_fits(self, nbytes: int) -> None:
        free, _total = self._rt.mem_get_info()
        if nbytes > free:
            raise OutOfMemoryError(message(
                "managed allocation larger than the device's free memory",
                expected=f"at most {free} bytes", got=f"{nbytes} bytes",
                hint="pass allow_oversubscription=True to let pages spill to host memory"))

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        if not self.allow_oversubscription:
            self._check_fits(nbytes)
        ptr = self._rt.malloc_managed(max(nbytes, 1))
        if self.prefetch and nbytes:
            self._rt.prefetch(ptr, nbytes, self.device, stream or 0)
        with self._lock:
            self._outstanding += nbytes
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        self._rt.free(ptr)
        with self._lock:
            self._outstanding -= nbytes

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def __repr__(self) -> str:
        return (f"ManagedMemoryResource(device={self.device}, prefetch={self.prefetch}, "
                f"allow_oversubscription={self.allow_oversubscription})")
