"""CuPy: a Python allocator (``cupy.cuda.set_allocator``) in front of the shared chain.

Every ``cupy.empty`` goes through our resource, so CuPy gets per-allocation statistics,
logging, leak stacks and limits that raise ``cupy.cuda.memory.OutOfMemoryError``. The
memory is wrapped in ``UnownedMemory`` with an owner whose ``__del__`` frees it on the
stream it was allocated on (``UnownedMemory`` cannot be weak-referenced, so no
``weakref.finalize``). Measured on the H100: a Python allocator like this costs about the
same as CuPy's own ``MemoryAsyncPool`` (3.5 vs 3.7 us per ``cupy.empty``).

Two paths, picked at install from the chain ``share()`` built:

- fused (the default chain: statistics and the out-of-memory callback over the device
  pool): the allocator calls CuPy's Cython ``mallocFromPoolAsync`` on the pool directly
  and does the statistics bookkeeping inline (``StatisticsAdaptor.note_*``); the owner
  frees with ``freeAsync``. No adaptor layers, no stream or device conversion per call.
  Any failure falls back to the whole chain, so the OOM callback and its retry still run.
- chain (limits, tracking, logging, failure injection or a non-pool base): every
  allocation goes through ``resource.allocate``; each layer's cost is in
  ``zerocopy bench memory`` (host part).
"""

from __future__ import annotations

import sys
from typing import Any

from zerocopy.memory import _oom  # its oom_type(framework); this module has its own oom_type()
from zerocopy.memory.adaptors.failure import OutOfMemoryCallbackAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor
from zerocopy.memory.hooks import Capabilities, Installation
from zerocopy.memory.hooks._common import import_framework, unknown_mode
from zerocopy.memory.resource import MemoryResource, layers
from zerocopy.memory.resources.device_pool import DevicePoolResource

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

NAME = "cupy"
PACKAGE = "cupy"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install cupy-cuda13x (or the wheel matching your CUDA)"
MODES = ("allocator",)


def capabilities(mode: str | None = None) -> Capabilities:
    return Capabilities(
        framework=NAME, mode="allocator",
        route="cupy.cuda.set_allocator(Python EAI) -> shared resource chain",
        per_allocation=True,
        limits="zerocopy LimitingAdaptor -> cupy.cuda.memory.OutOfMemoryError",
        accounting="per allocation (StatisticsAdaptor)",
        before_runtime=False,
        undoable="yes: the previous allocator is restored (live arrays keep their owners)",
        notes="any time; arrays made before install stay in CuPy's old pool")


def check(mode: str | None = None) -> None:
    if mode not in (None, *MODES):
        raise unknown_mode(NAME, mode, MODES)


class _Owner:
    """Keeps one allocation alive; frees it when CuPy drops the last reference."""

    __slots__ = ("nbytes", "ptr", "resource", "stream")

    def __init__(self, resource: MemoryResource, ptr: int, nbytes: int, stream: int) -> None:
        self.resource, self.ptr, self.nbytes, self.stream = resource, ptr, nbytes, stream

    def __del__(self) -> None:
        if sys.is_finalizing():  # the CUDA context may already be gone
            return
        self.resource.deallocate(self.ptr, self.nbytes, self.stream)


def _fusable(resource: MemoryResource) -> tuple[Any, Any] | None:
    """(device pool, statistics or None) when the chain holds nothing per-allocation but
    statistics and the OOM callback (which only acts on failure); else None."""
    chain = list(layers(resource))
    base, adaptors = chain[-1], chain[:-1]
    if type(base) is not DevicePoolResource:
        return None
    stats = [a for a in adaptors if type(a) is StatisticsAdaptor]
    if len(stats) > 1 or any(type(a) not in (StatisticsAdaptor, OutOfMemoryCallbackAdaptor)
                             for a in adaptors):
        return None
    return base, (stats[0] if stats else None)


def _fused_allocator(cupy: Any, resource: MemoryResource, base: Any, stats: Any) -> Any:
    rt = cupy.cuda.runtime
    malloc, free, pool, device = rt.mallocFromPoolAsync, rt.freeAsync, base.pool, base.device
    get_stream = cupy.cuda.get_current_stream
    unowned, pointer = cupy.cuda.UnownedMemory, cupy.cuda.MemoryPointer
    finalizing = sys.is_finalizing
    note_allocation = stats.note_allocation if stats is not None else None
    note_free = stats.note_free if stats is not None else None
    note_restore = stats.note_restore if stats is not None else None

    class FusedOwner(tuple[int, int]):
        """(ptr, stream); frees it straight into the pool when CuPy drops it. A tuple
        subclass is built in C (``tuple.__new__``): no Python ``__init__`` per allocation."""

        __slots__ = ()

        def __del__(self) -> None:
            if finalizing():  # the CUDA context may already be gone
                return
            ptr, stream = self
            record = note_free(ptr) if note_free is not None else None
            try:
                free(ptr, stream)
            except BaseException:
                if note_restore is not None:
                    note_restore(ptr, record)
                raise

    new_owner = tuple.__new__

    def allocate(nbytes: int) -> Any:
        stream = get_stream().ptr
        ptr = 0
        if nbytes:
            try:
                ptr = malloc(nbytes, pool, stream)
            except Exception:  # OOM or another CUDA error: the chain retries and translates
                ptr = 0
            else:
                if note_allocation is not None:
                    note_allocation(ptr, nbytes, NAME)
        if not ptr:
            return _chain_memory(cupy, resource, nbytes, stream, device)
        return pointer(unowned(ptr, nbytes, new_owner(FusedOwner, (ptr, stream)), device), 0)

    allocate.zerocopy_path = "fused"  # type: ignore[attr-defined]
    return allocate


def _chain_allocate(resource: MemoryResource, nbytes: int, stream: int) -> int:
    """``resource.allocate``, with a CUDA out-of-memory raised as CuPy's own type too."""
    try:
        return resource.allocate(nbytes, stream, framework=NAME)
    except MemoryError as exc:
        wanted = _oom.oom_type(NAME)
        if isinstance(exc, wanted):
            raise
        raise wanted(str(exc)) from exc


def _chain_memory(cupy: Any, resource: MemoryResource, nbytes: int, stream: int,
                  device: int) -> Any:
    ptr = _chain_allocate(resource, nbytes, stream)
    owner = _Owner(resource, ptr, nbytes, stream)
    return cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(ptr, nbytes, owner, device), 0)


def _allocator(cupy: Any, resource: MemoryResource) -> Any:
    get_stream = cupy.cuda.get_current_stream
    get_device = cupy.cuda.runtime.getDevice
    unowned, pointer = cupy.cuda.UnownedMemory, cupy.cuda.MemoryPointer

    def allocate(nbytes: int) -> Any:
        stream = get_stream().ptr
        ptr = _chain_allocate(resource, nbytes, stream)
        owner = _Owner(resource, ptr, nbytes, stream)
        # An explicit device id spares CuPy a pointer-attribute query per allocation.
        return pointer(unowned(ptr, nbytes, owner, get_device()), 0)

    allocate.zerocopy_path = "chain"  # type: ignore[attr-defined]
    return allocate


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    check(mode)
    cupy = import_framework("cupy", NAME, INSTALL_HINT)
    previous = cupy.cuda.memory.get_allocator()
    fusable = _fusable(resource)
    allocator = (_fused_allocator(cupy, resource, *fusable) if fusable is not None
                 else _allocator(cupy, resource))
    cupy.cuda.set_allocator(allocator)
    return Installation(NAME, capabilities(mode), {"limit": limit,
                                                   "path": allocator.zerocopy_path},
                        lambda: cupy.cuda.set_allocator(previous))


def framework_stats() -> dict[str, int] | None:
    return None  # everything CuPy allocates is in our statistics


def release_cache() -> bool:
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return False
    cupy.get_default_memory_pool().free_all_blocks()  # only CuPy's own (pre-install) pool
    return True


def oom_type() -> type[BaseException] | None:
    import cupy

    return cupy.cuda.memory.OutOfMemoryError
