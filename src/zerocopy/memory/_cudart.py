"""The few CUDA runtime calls the memory part needs, behind one small facade.

``cuda.bindings`` (cuda-python) is preferred; CuPy's runtime module is the fallback, so a
machine with either works. Nothing here is imported until a GPU resource is built. Every
function takes and returns plain ints. A CUDA out-of-memory becomes zerocopy's
``OutOfMemoryError``; any other CUDA failure a ``CudaError``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from zerocopy.errors import FrameworkNotInstalledError, OutOfMemoryError, ZeroCopyError, message

__all__ = ["UINT64_MAX", "CudaError", "PoolAttr", "hot_binding", "runtime"]

# The two calls on every allocation: (nbytes, stream) -> ptr and (ptr, stream) -> None.
Malloc = Callable[[int, int], int]
Free = Callable[[int, int], None]

UINT64_MAX = (1 << 64) - 1
_EVENT_DISABLE_TIMING = 2  # cudaEventDisableTiming
_ERROR_MEMORY_ALLOCATION = 2  # cudaErrorMemoryAllocation, the same number in every release


class CudaError(ZeroCopyError, RuntimeError):
    """A CUDA runtime call failed for a reason other than running out of memory."""


class PoolAttr:
    """cudaMemPoolAttr numbers (stable since CUDA 11.2)."""

    RELEASE_THRESHOLD = 4
    RESERVED_MEM_CURRENT = 5
    RESERVED_MEM_HIGH = 6
    USED_MEM_CURRENT = 7
    USED_MEM_HIGH = 8


def _raise(code: int, call: str, nbytes: int | None = None) -> None:
    if code == _ERROR_MEMORY_ALLOCATION:
        raise OutOfMemoryError(message(
            f"CUDA could not allocate ({call})", got=f"{nbytes} bytes" if nbytes else None,
            hint="free device memory, lower a limit, or call zerocopy.memory.report() to see who holds it"))
    raise CudaError(message(f"CUDA call {call} failed", got=f"error {code}"))


class _Bindings:
    """cuda.bindings.runtime: every call returns ``(err, *values)``."""

    name = "cuda.bindings"

    def __init__(self) -> None:
        from cuda.bindings import driver, runtime

        self._rt = runtime
        self._u64 = driver.cuuint64_t
        self._attr = runtime.cudaMemPoolAttr
        self._ok = runtime.cudaError_t.cudaSuccess

    def _call(self, name: str, *args: Any, nbytes: int | None = None) -> Any:
        result = getattr(self._rt, name)(*args)
        if result[0] != self._ok:
            _raise(int(result[0]), name, nbytes)
        values = result[1:]
        return values[0] if len(values) == 1 else (values or None)

    def get_device(self) -> int:
        return int(self._call("cudaGetDevice"))

    def set_device(self, device: int) -> None:
        self._call("cudaSetDevice", device)

    def default_pool(self, device: int) -> int:
        return int(self._call("cudaDeviceGetDefaultMemPool", device))

    def pool_get(self, pool: int, attr: int) -> int:
        return int(self._call("cudaMemPoolGetAttribute", pool, self._attr(attr)))

    def pool_set(self, pool: int, attr: int, value: int) -> None:
        self._call("cudaMemPoolSetAttribute", pool, self._attr(attr), self._u64(value))

    def pool_trim(self, pool: int, keep: int) -> None:
        self._call("cudaMemPoolTrimTo", pool, keep)

    def malloc_from_pool(self, nbytes: int, pool: int, stream: int) -> int:
        return int(self._call("cudaMallocFromPoolAsync", nbytes, pool, stream, nbytes=nbytes))

    def free_async(self, ptr: int, stream: int) -> None:
        self._call("cudaFreeAsync", ptr, stream)

    def hot_path(self, pool: int) -> tuple[Malloc, Free]:
        """Allocation and free bound to ``pool`` with the per-call work taken out.

        ``_call`` looks the function up by name, slices the result tuple and converts the
        plain-int pool and stream into binding objects on every call. Here the functions
        are bound once, the pool is wrapped once, stream objects are cached per handle,
        and success is tested by identity first (the enum member is a singleton).
        """
        rt = self._rt
        malloc_fn, free_fn, ok = rt.cudaMallocFromPoolAsync, rt.cudaFreeAsync, self._ok
        pool_obj = rt.cudaMemPool_t(pool)
        stream_t = rt.cudaStream_t
        streams: dict[int, Any] = {}

        def stream_obj(stream: int) -> Any:
            obj = streams.get(stream)
            if obj is None:
                if len(streams) > 256:  # streams come and go; keep the cache small
                    streams.clear()
                obj = streams[stream] = stream_t(stream)
            return obj

        def malloc(nbytes: int, stream: int) -> int:
            handle = streams.get(stream)
            if handle is None:
                handle = stream_obj(stream)
            err, ptr = malloc_fn(nbytes, pool_obj, handle)
            if err is not ok and err != ok:
                _raise(int(err), "cudaMallocFromPoolAsync", nbytes)
            return ptr  # type: ignore[no-any-return]

        def free(ptr: int, stream: int) -> None:
            handle = streams.get(stream)
            if handle is None:
                handle = stream_obj(stream)
            (err,) = free_fn(ptr, handle)
            if err is not ok and err != ok:
                _raise(int(err), "cudaFreeAsync")

        return malloc, free

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", nbytes, nbytes=nbytes))

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def malloc_managed(self, nbytes: int) -> int:
        return int(self._call("cudaMallocManaged", nbytes, 1, nbytes=nbytes))  # cudaMemAttachGlobal

    def prefetch(self, ptr: int, nbytes: int, device: int, stream: int) -> None:
        rt = self._rt
        try:  # CUDA 13: a cudaMemLocation and flags replace the device number
            location = rt.cudaMemLocation()
            location.type = rt.cudaMemLocationType.cudaMemLocationTypeDevice
            location.id = device
            self._call("cudaMemPrefetchAsync", ptr, nbytes, location, 0, stream)
        except TypeError:  # CUDA 12 signature
            self._call("cudaMemPrefetchAsync", ptr, nbytes, device, stream)

    def malloc_host(self, nbytes: int) -> int:
        return int(self._call("cudaMallocHost", nbytes, nbytes=nbytes))

    def free_host(self, ptr: int) -> None:
        self._call("cudaFreeHost", ptr)

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self._call("cudaMemGetInfo")
        return int(free), int(total)

    def synchronize(self) -> None:
        self._call("cudaDeviceSynchronize")

    def event_create(self) -> int:
        return int(self._call("cudaEventCreateWithFlags", _EVENT_DISABLE_TIMING))

    def event_record(self, event: int, stream: int) -> None:
        self._call("cudaEventRecord", event, stream)

    def stream_wait_event(self, stream: int, event: int) -> None:
        self._call("cudaStreamWaitEvent", stream, event, 0)


class _CuPy:
    """cupy.cuda.runtime: plain ints in and out, CUDARuntimeError on failure."""

    name = "cupy.cuda.runtime"

    def __init__(self) -> None:
        from cupy.cuda import runtime

        self._rt = runtime

    def _call(self, name: str, *args: Any, nbytes: int | None = None) -> Any:
        try:
            return getattr(self._rt, name)(*args)
        except self._rt.CUDARuntimeError as exc:
            _raise(int(getattr(exc, "status", -1)), name, nbytes)

    def get_device(self) -> int:
        return int(self._call("getDevice"))

    def set_device(self, device: int) -> None:
        self._call("setDevice", device)

    def default_pool(self, device: int) -> int:
        return int(self._call("deviceGetDefaultMemPool", device))

    def pool_get(self, pool: int, attr: int) -> int:
        return int(self._call("memPoolGetAttribute", pool, attr))

    def pool_set(self, pool: int, attr: int, value: int) -> None:
        self._call("memPoolSetAttribute", pool, attr, value)

    def pool_trim(self, pool: int, keep: int) -> None:
        self._call("memPoolTrimTo", pool, keep)

    def malloc_from_pool(self, nbytes: int, pool: int, stream: int) -> int:
        return int(self._call("mallocFromPoolAsync", nbytes, pool, stream, nbytes=nbytes))

    def free_async(self, ptr: int, stream: int) -> None:
        self._call("freeAsync", ptr, stream)

    def hot_path(self, pool: int) -> tuple[Malloc, Free]:
        """CuPy's runtime functions are Cython taking C integers: call them directly and
        translate an error only when one happens (a try costs nothing until it raises)."""
        malloc_fn, free_fn, error = self._rt.mallocFromPoolAsync, self._rt.freeAsync, \
            self._rt.CUDARuntimeError

        def malloc(nbytes: int, stream: int) -> int:
            try:
                return malloc_fn(nbytes, pool, stream)  # type: ignore[no-any-return]
            except error as exc:
                _raise(int(getattr(exc, "status", -1)), "mallocFromPoolAsync", nbytes)
                raise  # unreachable: _raise always raises

        def free(ptr: int, stream: int) -> None:
            try:
                free_fn(ptr, stream)
            except error as exc:
                _raise(int(getattr(exc, "status", -1)), "freeAsync")

        return malloc, free

    def malloc(self, nbytes: int) -> int:
        return int(self._call("malloc", nbytes, nbytes=nbytes))

    def free(self, ptr: int) -> None:
        self._call("free", ptr)

    def malloc_managed(self, nbytes: int) -> int:
        return int(self._call("mallocManaged", nbytes, 1, nbytes=nbytes))

    def prefetch(self, ptr: int, nbytes: int, device: int, stream: int) -> None:
        self._call("memPrefetchAsync", ptr, nbytes, device, stream)

    def malloc_host(self, nbytes: int) -> int:
        return int(self._call("mallocHost", nbytes, nbytes=nbytes))

    def free_host(self, ptr: int) -> None:
        self._call("freeHost", ptr)

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self._call("memGetInfo")
        return int(free), int(total)

    def synchronize(self) -> None:
        self._call("deviceSynchronize")

    def event_create(self) -> int:
        return int(self._call("eventCreateWithFlags", _EVENT_DISABLE_TIMING))

    def event_record(self, event: int, stream: int) -> None:
        self._call("eventRecord", event, stream)

    def stream_wait_event(self, stream: int, event: int) -> None:
        self._call("streamWaitEvent", stream, event, 0)


def _has(module: str) -> bool:
    top = module.partition(".")[0]
    return importlib.util.find_spec(top) is not None and importlib.util.find_spec(module) is not None


@functools.cache
def hot_binding() -> _Bindings | _CuPy:
    """The binding for the per-allocation calls: CuPy's Cython runtime where CuPy is
    installed (measured faster per call than cuda.bindings, whose Python-level wrappers
    convert and box every argument), else ``runtime()``. ``ZEROCOPY_CUDA_BINDING=
    cuda.bindings`` or ``=cupy`` forces one. Importing CuPy's runtime creates no context."""
    forced = os.environ.get("ZEROCOPY_CUDA_BINDING", "")
    if forced == "cuda.bindings":
        return _Bindings()
    if forced == "cupy" or (not forced and _has("cupy")):
        return _CuPy()
    return runtime()


@functools.cache
def runtime() -> _Bindings | _CuPy:
    """The CUDA runtime facade; raises FrameworkNotInstalledError where neither binding exists."""
    if importlib.util.find_spec("cuda") is not None and importlib.util.find_spec("cuda.bindings"):
        return _Bindings()
    if importlib.util.find_spec("cupy") is not None:
        return _CuPy()
    raise FrameworkNotInstalledError(message(
        "GPU memory resources need a CUDA runtime binding", expected="cuda-bindings or cupy",
        got="neither", hint="pip install cuda-bindings (or cupy-cuda13x)"))
