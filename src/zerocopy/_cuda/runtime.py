"""The shape every CUDA binding of zerocopy has, and what they share: the error policy,
the cached event behind :meth:`CudaRuntime.wait`, the constants.

A binding (``via_bindings.py`` for cuda.bindings, ``via_cupy.py`` for CuPy's runtime) is
the one place that names that library's functions. Every method takes and returns plain
ints (pointers, streams, pools, devices), so callers never see which binding runs.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NoReturn

from zerocopy.errors import DeviceError, OutOfMemoryError, message

__all__ = ["EVENT_DISABLE_TIMING", "UINT64_MAX", "CudaRuntime", "Free", "Malloc", "PoolAttr", "fail"]

# The two calls on every allocation: (nbytes, stream) -> ptr and (ptr, stream) -> None.
Malloc = Callable[[int, int], int]
Free = Callable[[int, int], None]

UINT64_MAX = (1 << 64) - 1
EVENT_DISABLE_TIMING = 2  # cudaEventDisableTiming: an ordering event needs no timestamp
_ERROR_MEMORY_ALLOCATION = 2  # cudaErrorMemoryAllocation, the same number in every release
# The codes a machine without a usable GPU answers with (cudaError_t, stable numbers).
_NO_GPU = {34: "cudaErrorStubLibrary", 35: "cudaErrorInsufficientDriver",
           100: "cudaErrorNoDevice", 101: "cudaErrorInvalidDevice"}


class PoolAttr:
    """cudaMemPoolAttr numbers (stable since CUDA 11.2)."""

    RELEASE_THRESHOLD = 4
    RESERVED_MEM_CURRENT = 5
    RESERVED_MEM_HIGH = 6
    USED_MEM_CURRENT = 7
    USED_MEM_HIGH = 8


def fail(code: int, call: str, *, nbytes: int | None = None, detail: str | None = None) -> NoReturn:
    """Raise the error for a failed CUDA call: ``OutOfMemoryError`` when it could not
    allocate, ``DeviceError`` for everything else (no driver, no device, a bad handle)."""
    if code == _ERROR_MEMORY_ALLOCATION:
        raise OutOfMemoryError(message(
            f"CUDA could not allocate ({call})", got=f"{nbytes} bytes" if nbytes else None,
            hint="free device memory, lower a limit, or call zerocopy.memory.report() to see who holds it"))
    name = detail or _NO_GPU.get(code)
    got = f"error {code}" + (f" ({name})" if name else "")
    if code in _NO_GPU:
        hint = ("no usable CUDA GPU is visible to this process: check the driver with nvidia-smi "
                "and CUDA_VISIBLE_DEVICES, or keep the data on the host (device='cpu')")
    else:
        hint = "the CUDA error names the cause; `zerocopy doctor` lists the devices each framework sees"
    raise DeviceError(message(f"CUDA call {call} failed", got=got, hint=hint))


class CudaRuntime(ABC):
    """One CUDA runtime binding. ``name`` says which (shown by ``DevicePoolResource.binding``)."""

    name: str

    def __init__(self) -> None:
        # One ordering event per device, made on first use: a wait captures the event's
        # state when it is enqueued, so re-recording the event later cannot affect it.
        self._events: dict[int, int] = {}
        self._events_lock = threading.Lock()

    def wait(self, consumer: int, producer: int, device: int) -> None:
        """Make stream ``consumer`` wait, on the GPU, for the work queued so far on stream
        ``producer`` (``device`` must be current): record an event, wait on it. The host
        never blocks."""
        event = self._events.get(device)
        if event is None:
            with self._events_lock:
                event = self._events.get(device)
                if event is None:
                    event = self._events[device] = self.event_create()
        self.event_record(event, producer)
        self.stream_wait_event(consumer, event)

    # --- devices and pointers ---
    @abstractmethod
    def device_count(self) -> int: ...

    @abstractmethod
    def current_device(self) -> int: ...

    @abstractmethod
    def set_device(self, device: int) -> None: ...

    @abstractmethod
    def pointer_device(self, ptr: int) -> tuple[str, int]:
        """("cuda" | "cuda_host" | "cuda_managed" | "cpu", device ordinal) of ``ptr``."""

    @abstractmethod
    def mem_get_info(self) -> tuple[int, int]:
        """(free, total) bytes of the current device."""

    # --- streams and events ---
    @abstractmethod
    def event_create(self) -> int: ...

    @abstractmethod
    def event_record(self, event: int, stream: int) -> None: ...

    @abstractmethod
    def stream_wait_event(self, stream: int, event: int) -> None: ...

    @abstractmethod
    def stream_synchronize(self, stream: int) -> None: ...

    @abstractmethod
    def synchronize(self) -> None:
        """Wait on the host until the current device is idle."""

    # --- the default memory pool (stream-ordered allocator) ---
    @abstractmethod
    def default_pool(self, device: int) -> int: ...

    @abstractmethod
    def pool_get(self, pool: int, attr: int) -> int: ...

    @abstractmethod
    def pool_set(self, pool: int, attr: int, value: int) -> None: ...

    @abstractmethod
    def pool_trim(self, pool: int, keep: int) -> None: ...

    @abstractmethod
    def malloc_from_pool(self, nbytes: int, pool: int, stream: int) -> int: ...

    @abstractmethod
    def free_async(self, ptr: int, stream: int) -> None: ...

    @abstractmethod
    def hot_path(self, pool: int) -> tuple[Malloc, Free]:
        """Allocation and free bound to ``pool``, with the per-call work taken out."""

    # --- other allocators ---
    @abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abstractmethod
    def free(self, ptr: int) -> None: ...

    @abstractmethod
    def malloc_managed(self, nbytes: int) -> int: ...

    @abstractmethod
    def prefetch(self, ptr: int, nbytes: int, device: int, stream: int) -> None: ...

    @abstractmethod
    def malloc_host(self, nbytes: int) -> int: ...

    @abstractmethod
    def free_host(self, ptr: int) -> None: ...
