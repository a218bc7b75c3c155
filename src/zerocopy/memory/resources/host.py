"""Real host memory behind the EAI, so every adaptor and all accounting run on CPU.

Memory comes from the C library (``aligned_alloc``/``free`` through ctypes), so tests can
write into an allocation and read it back, exactly as a framework would use device memory.
The resource also knows its live pointers: a double free or a foreign pointer is an error
here rather than heap corruption, which lets the tests prove that the adaptors above it
never lose or invent an allocation.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from zerocopy.errors import InvalidArgumentError, OutOfMemoryError, message

__all__ = ["HostMemoryResource", "host_buffer"]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.aligned_alloc.restype = ctypes.c_void_p
_libc.aligned_alloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]


class HostMemoryResource:
    """``allocate``/``deallocate`` over the C heap; ``alignment`` like a device allocator's (256 B)."""

    def __init__(self, alignment: int = 256) -> None:
        if alignment <= 0 or alignment & (alignment - 1):
            raise InvalidArgumentError(message("alignment must be a power of two", got=str(alignment)))
        self.alignment = alignment
        self._live: dict[int, int] = {}
        self._lock = threading.Lock()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        if nbytes < 0:
            raise InvalidArgumentError(message("cannot allocate a negative size", got=str(nbytes)))
        # aligned_alloc wants a multiple of the alignment, and never 0 bytes: every
        # allocation gets its own pointer, as cudaMalloc-like allocators do.
        rounded = max(self.alignment, -(-nbytes // self.alignment) * self.alignment)
        ptr = _libc.aligned_alloc(self.alignment, rounded)
        if not ptr:
            raise OutOfMemoryError(message(
                "the host resource could not allocate", got=f"{nbytes} bytes",
                hint="free memory, or lower the request"))
        with self._lock:
            self._live[ptr] = nbytes
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        with self._lock:
            size = self._live.pop(ptr, None)
        if size is None:
            raise InvalidArgumentError(message(
                "pointer was not allocated by this resource, or was freed twice",
                got=hex(ptr), hint="free each pointer once, through the resource that made it"))
        if size != nbytes:
            with self._lock:  # keep the allocation: the caller's bookkeeping is wrong, not ours
                self._live[ptr] = size
            raise InvalidArgumentError(message("deallocate size differs from the allocated size",
                                     expected=str(size), got=str(nbytes)))
        _libc.free(ptr)

    @property
    def live_bytes(self) -> int:
        with self._lock:
            return sum(self._live.values())

    @property
    def live_count(self) -> int:
        with self._lock:
            return len(self._live)

    def __repr__(self) -> str:
        return f"HostMemoryResource(alignment={self.alignment})"


def host_buffer(ptr: int, nbytes: int) -> memoryview:
    """A writable view of host memory at ``ptr`` (tests write and read back through it)."""
    return memoryview((ctypes.c_char * nbytes).from_address(ptr)).cast("B")
