"""The CUDA runtime through CuPy's ``cupy.cuda.runtime``: Cython functions taking and
returning C integers, ``CUDARuntimeError`` on failure. Built only when CuPy is already
loaded or was chosen (``ZEROCOPY_CUDA_BINDING=cupy``): importing it imports all of CuPy."""

from __future__ import annotations

from typing import Any, NoReturn

from zerocopy._cuda.runtime import EVENT_DISABLE_TIMING, CudaRuntime, Free, Malloc, fail

__all__ = ["CupyRuntime"]

_MEMORY_KINDS = {1: "cuda_host", 2: "cuda", 3: "cuda_managed"}  # cudaMemoryType; 0: unregistered


def _fail(exc: Any, call: str, nbytes: int | None = None) -> NoReturn:
    fail(int(getattr(exc, "status", -1)), call, nbytes=nbytes, detail=str(exc) or None)


class CupyRuntime(CudaRuntime):
    name = "cupy.cuda.runtime"

    def __init__(self) -> None:
        from cupy.cuda import runtime

        super().__init__()
        self._rt = runtime

    def _call(self, name: str, *args: Any, nbytes: int | None = None) -> Any:
        try:
            return getattr(self._rt, name)(*args)
        except self._rt.CUDARuntimeError as exc:
            _fail(exc, name, nbytes)

    # --- devices and pointers ---
    def device_count(self) -> int:
        return int(self._call("getDeviceCount"))

    def current_device(self) -> int:
        return int(self._call("getDevice"))

    def set_device(self, device: int) -> None:
        self._call("setDevice", device)

    def pointer_device(self, ptr: int) -> tuple[str, int]:
        attributes = self._call("pointerGetAttributes", ptr)
        memory_type = getattr(attributes, "type", None)
        memory_type = attributes.memoryType if memory_type is None else memory_type  # CuPy's name
        return _MEMORY_KINDS.get(int(memory_type), "cpu"), int(attributes.device)

    def mem_get_info(self) -> tuple[int, int]:
        free, total = self._call("memGetInfo")
        return int(free), int(total)

    # --- streams and events ---
    def event_create(self) -> int:
        return int(self._call("eventCreateWithFlags", EVENT_DISABLE_TIMING))

    def event_record(self, event: int, stream: int) -> None:
        self._call("eventRecord", event, stream)

    def stream_wait_event(self, stream: int, event: int) -> None:
        self._call("streamWaitEvent", stream, event, 0)

    def stream_synchronize(self, stream: int) -> None:
        self._call("streamSynchronize", stream)

    def synchronize(self) -> None:
        self._call("deviceSynchronize")

    # --- the default memory pool ---
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
        """The Cython functions called directly; an error is translated only when one
        happens (a try costs nothing until it raises)."""
        malloc_fn, free_fn, error = self._rt.mallocFromPoolAsync, self._rt.freeAsync, \
            self._rt.CUDARuntimeError

        def malloc(nbytes: int, stream: int) -> int:
            try:
                return malloc_fn(nbytes, pool, stream)
            except error as exc:
                _fail(exc, "mallocFromPoolAsync", nbytes)

        def free(ptr: int, stream: int) -> None:
            try:
                free_fn(ptr, stream)
            except error as exc:
                _fail(exc, "freeAsync")

        return malloc, free

    # --- other allocators ---
    def malloc(self, nbytes: int) -> int:
        return int(self._call("malloc", nbytes, nbytes=nbytes))

    def free(self, ptr: int) -> None:
        self._call("free", ptr)

    def malloc_managed(self, nbytes: int) -> int:
        return int(self._call("mallocManaged", nbytes, 1, nbytes=nbytes))  # cudaMemAttachGlobal

    def prefetch(self, ptr: int, nbytes: int, device: int, stream: int) -> None:
        self._call("memPrefetchAsync", ptr, nbytes, device, stream)

    def malloc_host(self, nbytes: int) -> int:
        return int(self._call("mallocHost", nbytes, nbytes=nbytes))

    def free_host(self, ptr: int) -> None:
        self._call("freeHost", ptr)
