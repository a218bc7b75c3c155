"""The pool's hot path from C (PoolPath) and the statistics' straight path to the pool,
driven on the CPU by stand-ins for the driver's two functions and for the device pool."""

from __future__ import annotations

import ctypes

import pytest

from zerocopy import _native
from zerocopy.errors import OutOfMemoryError
from zerocopy.memory.adaptors.failure import OutOfMemoryCallbackAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor
from zerocopy.memory.resources.device_pool import DevicePoolResource

speedups = _native.speedups()

_ALLOC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_ulonglong), ctypes.c_size_t,
                          ctypes.c_void_p, ctypes.c_void_p)
_FREE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_ulonglong, ctypes.c_void_p)
CUDA_ERROR_OUT_OF_MEMORY, CUDA_ERROR_INVALID_CONTEXT = 2, 201


class FakeDriver:
    """cuMemAllocFromPoolAsync / cuMemFreeAsync stand-ins: what C called, and with what."""

    def __init__(self, capacity: int, free_result: int = 0) -> None:
        self.capacity, self.free_result = capacity, free_result
        self.calls: list[tuple] = []
        self.next = 0x7F00_0000_0000

        def alloc(out, nbytes, pool, stream):
            self.calls.append(("alloc", nbytes, pool, stream))
            if nbytes > self.capacity:
                return CUDA_ERROR_OUT_OF_MEMORY
            out[0] = self.next
            self.next += 512
            return 0

        def free(ptr, stream):
            self.calls.append(("free", ptr, stream))
            return self.free_result

        self.alloc, self.free = _ALLOC(alloc), _FREE(free)  # kept alive with the fake

    def addresses(self) -> tuple[int, int]:
        return (ctypes.cast(self.alloc, ctypes.c_void_p).value or 0,
                ctypes.cast(self.free, ctypes.c_void_p).value or 0)


def _fallbacks(log: list[tuple]) -> tuple:
    def malloc(nbytes: int, stream: int) -> int:
        log.append(("fallback malloc", nbytes, stream))
        raise OutOfMemoryError(f"the binding could not allocate {nbytes} bytes either")

    def free(ptr: int, stream: int) -> None:
        log.append(("fallback free", ptr, stream))

    return malloc, free


needs_c = pytest.mark.skipif(speedups is None, reason=f"no C extension: {_native.reason()}")


@needs_c
def test_pool_path_calls_the_driver_from_c_and_hands_failures_to_the_binding() -> None:
    driver, log = FakeDriver(capacity=1 << 20), []
    path = speedups.PoolPath(0xABC0, *driver.addresses(), *_fallbacks(log))  # type: ignore[union-attr]
    ptr = path.malloc(4096, 7)
    assert ptr == 0x7F00_0000_0000 and driver.calls == [("alloc", 4096, 0xABC0, 7)]
    path.free(ptr, 7)
    assert driver.calls[-1] == ("free", ptr, 7) and path.fallbacks == 0 and log == []
    with pytest.raises(OutOfMemoryError, match="either"):  # the driver refused: binding's turn
        path.malloc(2 << 20, 3)
    assert log == [("fallback malloc", 2 << 20, 3)] and path.fallbacks == 1
    with pytest.raises(OutOfMemoryError):  # 0 bytes: the driver is not asked at all
        path.malloc(0, 0)
    assert driver.calls[-1][1] != 0 and path.fallbacks == 2


@needs_c
def test_pool_path_hands_a_failed_free_to_the_binding() -> None:
    driver, log = FakeDriver(capacity=1 << 20, free_result=CUDA_ERROR_INVALID_CONTEXT), []
    path = speedups.PoolPath(0x10, *driver.addresses(), *_fallbacks(log))  # type: ignore[union-attr]
    path.free(0x7F00_0000_0200, 0)
    assert log == [("fallback free", 0x7F00_0000_0200, 0)] and path.fallbacks == 1


@needs_c
def test_pool_path_refuses_bad_construction() -> None:
    with pytest.raises(ValueError, match="address"):
        speedups.PoolPath(1, 0, 0, print, print)  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="callables"):
        speedups.PoolPath(1, 1, 1, None, print)  # type: ignore[union-attr]


class _FakePool:
    """malloc/free of a device pool without a device (a byte budget, 512-byte steps)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.next = capacity, 0x7E00_0000_0000
        self.live: dict[int, int] = {}

    def malloc(self, nbytes: int, stream: int) -> int:
        if nbytes > self.capacity - sum(self.live.values()):
            raise OutOfMemoryError(f"fake pool: {nbytes} bytes do not fit")
        self.next += 512
        self.live[self.next] = nbytes
        return self.next

    def free(self, ptr: int, stream: int) -> None:
        del self.live[ptr]


def _device_pool(fake: _FakePool) -> DevicePoolResource:
    pool = object.__new__(DevicePoolResource)  # no __init__: there is no CUDA here
    pool.device, pool.pool, pool.binding = 0, 0x1, "fake"
    pool.malloc, pool.free = fake.malloc, fake.free
    return pool


def test_statistics_call_the_pool_straight_and_failures_walk_the_chain() -> None:
    pool = _FakePool(capacity=1000)
    asked: list[tuple] = []

    def release(nbytes: int, framework: str | None, attempt: int) -> bool:
        asked.append((nbytes, framework, attempt))
        for ptr in list(pool.live):  # "another framework's cache" gives its blocks back
            pool.free(ptr, 0)
        return True

    stats = StatisticsAdaptor(OutOfMemoryCallbackAdaptor(_device_pool(pool), release))
    assert stats._straight is not None  # the default chain: no layer acts on success
    a = stats.allocate(600, 0, framework="cupy")
    assert asked == [] and pool.live == {a: 600}
    b = stats.allocate(600, 0, framework="torch")  # does not fit: the callback runs, retry
    assert asked == [(600, "torch", 0)] and pool.live == {b: 600}
    assert stats.statistics("torch").current_bytes == 600
    stats.deallocate(b, 600, 0)
    assert pool.live == {} and stats.statistics("torch").current_bytes == 0
