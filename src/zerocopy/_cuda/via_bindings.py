"""The CUDA runtime through cuda.bindings (cuda-python): every call returns ``(err, *values)``."""

from __future__ import annotations

from typing import Any

from zerocopy._cuda.runtime import EVENT_DISABLE_TIMING, CudaRuntime, Free, Malloc, fail

__all__ = ["BindingsRuntime"]

_MEMORY_KINDS = {1: "cuda_host", 2: "cuda", 3: "cuda_managed"}  # cudaMemoryType; 0: unregistered


class BindingsRuntime(CudaRuntime):
    name = "cuda.bindings"

    def __init__(self) -> None:
        from cuda.bindings import driver, runtime

        super().__init__()
        self._rt = runtime
        self._u64 = driver.cuuint64_t
        self._attr = runtime.cudaMemPoolAttr
        self._ok = runtime.cudaError_t.cudaSuccess

    def _call(self, name: str, *args: Any, nbytes: int | None = None) -> Any:
        result = getattr(self._rt, name)(*args)
        if result[0] != self._ok:
            fail(int(result[0]), name, nbytes=nbytes, detail=getattr(result[0], "name", None))
        values = result[1:]
        return values[0] if len(values) == 1 else (values or None)

    # --- devices and pointers ---
    def device_count(self) -> int:
        return int(self._call("cudaGetDeviceCount"))

    def current_device(self) -> int:
        return int(self._call("cudaGetDevice"))

    def set_device(self, device: int) -> None:
        self._call("cudaSetDevice", device)

    def pointer_device(self, ptr: int) -> tuple[str, int]:
        attributes = self._call("cudaPointerGetAttributes", ptr)
        return _MEMORY_KINDS.get(int(attributes.type), "cpu"), int(attributes.device)

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self._call("cudaMemGetInfo")
        return int(free), int(total)

    # --- streams and events ---
    def event_create(self) -> int:
        return int(self._call("cudaEventCreateWithFlags", EVENT_DISABLE_TIMING))

    def event_record(self, event: int, stream: int) -> None:
        self._call("cudaEventRecord", event, stream)

    def stream_wait_event(self, stream: int, event: int) -> None:
        self._call("cudaStreamWaitEvent", stream, event, 0)

    def stream_synchronize(self, stream: int) -> None:
        self._call("cudaStreamSynchronize", stream)

    def synchronize(self) -> None:
        self._call("cudaDeviceSynchronize")

    # --- the default memory pool ---
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
        """``_call`` looks the function up by name, slices the result tuple and converts the
        plain-int pool and stream into binding objects on every call. Here the functions
        are bound once, the pool is wrapped once, stream objects are cached per handle,
        and success is tested by identity first (the enum member is a singleton)."""
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
                fail(int(err), "cudaMallocFromPoolAsync", nbytes=nbytes)
            return ptr

        def free(ptr: int, stream: int) -> None:
            handle = streams.get(stream)
            if handle is None:
                handle = stream_obj(stream)
            (err,) = free_fn(ptr, handle)
            if err is not ok and err != ok:
                fail(int(err), "cudaFreeAsync")

        return malloc, free

    # --- other allocators ---
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
