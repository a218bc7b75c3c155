"""Numba: an External Memory Management plugin (``numba.cuda.set_memory_manager``).

Numba takes a plugin *class* and instantiates it per context, so it has to be set before
Numba creates its context. ``install`` sets it, then asks for the current context and
checks that the context really uses our manager: if the context existed already, that is
too late and ``FrameworkStartedError`` says so. Limits raise an error that is both
zerocopy's ``OutOfMemoryError`` and Numba's ``CudaAPIError``.
"""

from __future__ import annotations

import sys
from typing import Any

from zerocopy import _cuda
from zerocopy.memory.hooks import Capabilities, Installation
from zerocopy.memory.hooks._common import import_framework, started_error, unknown_mode
from zerocopy.memory.resource import MemoryResource

__all__ = [
    "INSTALL_HINT",
    "MODES",
    "NAME",
    "PACKAGE",
    "capabilities",
    "check",
    "framework_stats",
    "install",
    "oom_type",
    "release_cache",
]

NAME = "numba"
PACKAGE = "numba_cuda"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install numba-cuda"
MODES = ("emm-plugin",)


def capabilities(mode: str | None = None) -> Capabilities:
    return Capabilities(
        framework=NAME, mode="emm-plugin",
        route="numba.cuda.set_memory_manager(plugin class) -> shared resource chain",
        per_allocation=True,
        limits="zerocopy LimitingAdaptor -> error that is also numba's CudaAPIError",
        accounting="per allocation (StatisticsAdaptor)",
        before_runtime=True,
        undoable="partly: later contexts get Numba's default manager; the current one keeps ours",
        notes="set before Numba's first CUDA context; frees are deferred by Numba's own rules")


def check(mode: str | None = None) -> None:
    if mode not in (None, *MODES):
        raise unknown_mode(NAME, mode, MODES)


def _manager_class(cuda: Any, resource: MemoryResource) -> type:
    from numba.cuda import HostOnlyCUDAMemoryManager, MemoryPointer

    class ZeroCopyNumbaManager(HostOnlyCUDAMemoryManager):
        """Device allocations from the zerocopy chain; host ones stay Numba's."""

        def initialize(self) -> None:
            pass  # the shared resource needs no per-context setup

        def memalloc(self, size: int) -> Any:
            ptr = resource.allocate(size, 0, framework=NAME)

            def finalizer() -> None:  # Numba runs it when the MemoryPointer is collected
                resource.deallocate(ptr, size, 0)

            return MemoryPointer(self.context, _device_pointer(ptr), size, finalizer=finalizer)

        def get_memory_info(self) -> Any:
            return _cuda.mem_info()

        def get_ipc_handle(self, memory: Any) -> Any:
            raise NotImplementedError("stream-ordered pool memory has no legacy IPC handle")

        @property
        def interface_version(self) -> int:
            return 1

    return ZeroCopyNumbaManager


def _device_pointer(ptr: int) -> Any:
    # numba-cuda wants a CUdeviceptr when it runs on cuda-python bindings, an int otherwise.
    try:
        from cuda.bindings.driver import CUdeviceptr
        from numba.cuda.cudadrv import driver

        if getattr(driver, "USE_NV_BINDING", True):
            return CUdeviceptr(ptr)
    except ImportError:
        pass
    return ptr


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    check(mode)
    cuda = import_framework("numba.cuda", NAME, INSTALL_HINT)
    manager = _manager_class(cuda, resource)
    cuda.set_memory_manager(manager)
    context = cuda.current_context()
    if not isinstance(context.memory_manager, manager):
        raise started_error(NAME, "its memory manager",
                            "call zerocopy.memory.share() before the first numba.cuda call")

    def undo() -> None:
        from numba.cuda.cudadrv import driver

        cuda.set_memory_manager(driver.NumbaCUDAMemoryManager)

    return Installation(NAME, capabilities(mode), {"limit": limit}, undo)


def framework_stats() -> dict[str, int] | None:
    return None


def release_cache() -> bool:
    numba_cuda = sys.modules.get("numba.cuda")
    if numba_cuda is None or not numba_cuda.is_available():  # imported, but no device/driver
        return False
    context = numba_cuda.current_context()
    context.deallocations.clear()  # run Numba's deferred frees now
    return True


def oom_type() -> type[BaseException] | None:
    from numba.cuda.cudadrv.driver import CudaAPIError

    class _NumbaOOM(CudaAPIError):
        code = 2  # CUDA_ERROR_OUT_OF_MEMORY, for handlers that look at .code

    return _NumbaOOM
