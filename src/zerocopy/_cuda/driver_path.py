"""The pool's allocation hot path from C: the driver's cuMemAllocFromPoolAsync and
cuMemFreeAsync called by ``zerocopy._speedups.PoolPath``, with the Python binding's own
calls as the fallback for every failure (out of memory, a thread without a current
context, a 0-byte request), so the errors stay the typed ones of :mod:`zerocopy._cuda`.

Measured on the H200 (``zerocopy bench memory --gpu``, raw part): a 64 MiB alloc+free pair
on the default pool costs 2.8 us through cuda.bindings' wrappers, 2.1 us through CuPy's
Cython ones; the C path's figure is in the benchmark (``default pool (bare, C driver)``).

Not used where the C extension is not active or libcuda cannot be loaded; the device pool
also skips it where ``ZEROCOPY_CUDA_BINDING`` names a binding (the tests and benchmarks
run each binding's own path that way).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

from zerocopy import _native

__all__ = ["CACHE_FUNCTIONS", "NAME", "cache_addresses", "hot_path"]

NAME = "C (driver API)"
Malloc = Callable[[int, int], int]
Free = Callable[[int, int], None]


@functools.cache
def _driver_addresses() -> tuple[int, int] | None:
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        alloc = ctypes.cast(driver.cuMemAllocFromPoolAsync, ctypes.c_void_p).value
        free = ctypes.cast(driver.cuMemFreeAsync, ctypes.c_void_p).value
    except (OSError, AttributeError):  # no driver here, or one older than CUDA 11.2
        return None
    return (alloc, free) if alloc and free else None


# What the block cache in front of the pool calls (``zerocopy._speedups.cache_setup``), in
# the order it takes them. cuEventDestroy and the context stack are exported under _v2 names.
CACHE_FUNCTIONS = ("cuMemAllocFromPoolAsync", "cuMemFreeAsync", "cuDeviceGet",
                   "cuDeviceGetDefaultMemPool", "cuStreamIsCapturing", "cuEventCreate",
                   "cuEventRecord", "cuStreamWaitEvent", "cuEventDestroy_v2",
                   "cuDevicePrimaryCtxRetain", "cuCtxGetCurrent", "cuCtxPushCurrent_v2",
                   "cuCtxPopCurrent_v2")


@functools.cache
def cache_addresses() -> tuple[int, ...] | None:
    """The addresses of :data:`CACHE_FUNCTIONS` in libcuda; None without a driver that has
    them all (CUDA 11.2 or newer)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        found = tuple(ctypes.cast(getattr(driver, name), ctypes.c_void_p).value
                      for name in CACHE_FUNCTIONS)
    except (OSError, AttributeError):
        return None
    return found if all(found) else None  # type: ignore[return-value]


def hot_path(pool: int, malloc: Malloc, free: Free) -> tuple[Malloc, Free] | None:
    """(malloc, free) on ``pool`` from C, falling back to ``malloc``/``free``; None where
    the C path does not apply (see the module docstring)."""
    speedups = _native.speedups()
    if speedups is None:
        return None
    addresses = _driver_addresses()
    if addresses is None:
        return None
    path = speedups.PoolPath(pool, *addresses, malloc, free)
    return path.malloc, path.free
