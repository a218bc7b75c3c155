"""The shared substrate: the device's default CUDA memory pool (stream-ordered allocator).

It is the one pool that CuPy (``MemoryAsyncPool``), PyTorch (``backend:cudaMallocAsync``),
JAX (``cuda_async``), TensorFlow (``cuda_malloc_async``) and RMM
(``CudaAsyncViewMemoryResource``) can all join, so everything zerocopy routes lands in the
same reserve. Allocation is ``cudaMallocFromPoolAsync`` on the default pool (not
``cudaMallocAsync``, which uses the *current* pool, and someone may have changed that).
Frees are ``cudaFreeAsync``: they never wait for the GPU, unlike ``cudaFree``.

The two per-allocation calls are bound once: from C through the driver
(:mod:`zerocopy._cuda.driver_path`, where the C extension is active), with the binding
:func:`zerocopy._cuda.binding` picks as the fallback for every failure; else that binding's
``hot_path(pool)`` alone (CuPy's Cython runtime where CuPy is loaded, else cuda.bindings
with the pool and stream objects made once). ``binding`` names which one serves.
"""

from __future__ import annotations

import os

from zerocopy import _cuda
from zerocopy._cuda import UINT64_MAX, PoolAttr, driver_path

__all__ = ["DevicePoolResource"]


class DevicePoolResource:
    """EAI over the default pool of ``device``; also the handle on that pool's attributes."""

    def __init__(self, device: int | None = None) -> None:
        self._rt = _cuda.binding()
        self.device = self._rt.current_device() if device is None else device
        self.pool = self._rt.default_pool(self.device)
        self.binding = self._rt.name
        self.malloc, self.free = self._rt.hot_path(self.pool)  # (nbytes, stream), (ptr, stream)
        forced = os.environ.get(_cuda.ENVIRONMENT)  # a binding named: its own path only
        from_c = None if forced else driver_path.hot_path(self.pool, self.malloc, self.free)
        if from_c is not None:
            self.malloc, self.free = from_c
            self.binding = f"{driver_path.NAME}, falling back to {self._rt.name}"

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        return self.malloc(nbytes, stream or 0)

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        if ptr:  # a 0-byte allocation may come back as NULL; there is nothing to free
            self.free(ptr, stream or 0)

    # --- the pool's state, read by report() and governance ---
    def reserved(self) -> int:
        """Bytes of device memory the pool holds (used or cached)."""
        return self._rt.pool_get(self.pool, PoolAttr.RESERVED_MEM_CURRENT)

    def used(self) -> int:
        """Bytes handed out and not yet freed, by every framework in this pool."""
        return self._rt.pool_get(self.pool, PoolAttr.USED_MEM_CURRENT)

    def reserved_high(self) -> int:
        return self._rt.pool_get(self.pool, PoolAttr.RESERVED_MEM_HIGH)

    def used_high(self) -> int:
        return self._rt.pool_get(self.pool, PoolAttr.USED_MEM_HIGH)

    def reset_peaks(self) -> None:
        # Only 0 is accepted: it resets the high watermark to the current value.
        self._rt.pool_set(self.pool, PoolAttr.RESERVED_MEM_HIGH, 0)
        self._rt.pool_set(self.pool, PoolAttr.USED_MEM_HIGH, 0)

    @property
    def release_threshold(self) -> int:
        return self._rt.pool_get(self.pool, PoolAttr.RELEASE_THRESHOLD)

    @release_threshold.setter
    def release_threshold(self, nbytes: int) -> None:
        self._rt.pool_set(self.pool, PoolAttr.RELEASE_THRESHOLD, min(int(nbytes), UINT64_MAX))

    def device_memory(self) -> tuple[int, int]:
        """(free, total) bytes of the current device (governance's pressure check)."""
        free, total = self._rt.mem_get_info()
        return int(free), int(total)

    def bind_thread(self) -> None:
        """Make this pool's device current on the calling thread (governance's watcher)."""
        self._rt.set_device(self.device)

    def trim(self, keep: int = 0) -> None:
        """Give cached memory above ``keep`` bytes back to the device.

        ``cudaMemPoolTrimTo`` releases only blocks whose frees have completed; it does not
        wait for pending work (measured behind a 20 ms kernel by ``zerocopy bench memory``),
        so a free still in flight stays reserved until a later trim."""
        self._rt.pool_trim(self.pool, keep)

    def handoff(self, consumer: int, producer: int = 0) -> None:
        """Make the frees already queued on ``producer`` reusable by allocations on
        ``consumer``, without waiting on the host.

        A block freed on one stream is reused by another stream only once the pool knows
        the free has happened: the GPU has passed it (opportunistic reuse) or the other
        stream waits on an event recorded after it (measured on the H100: a 64 MiB block
        freed on stream 0 behind a kernel was not reused by a second stream, which grew
        the pool by 64 MiB; after ``cudaStreamWaitEvent`` on an event recorded after the
        free, the same block was reused). This records that event on ``producer`` and makes
        ``consumer`` wait on it (:func:`zerocopy._cuda.wait`, on this pool's device):
        stream-ordered, the host does not block."""
        if consumer == producer:
            return
        _cuda.wait(consumer, producer, device=self.device)

    def __repr__(self) -> str:
        return f"DevicePoolResource(device={self.device}, pool={self.pool:#x})"
