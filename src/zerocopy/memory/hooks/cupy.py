"""CuPy: its own caching pool in front, the shared pool behind.

``mode="cached"`` (the default): ``cupy.cuda.MemoryPool(allocator=...)`` is CuPy's own
caching allocator (best-fit blocks per stream, 512-byte rounding) with its *segments*
taken from the shared chain. A ``cupy.empty`` that hits the cache costs what it costs with
CuPy's default pool; only a miss reaches the shared pool. Per-framework accounting: the
statistics count what CuPy's cache holds (its segments), CuPy's own counters say how much
of that is in use (``framework_stats``). Governance takes the idle blocks back
(``release_cache`` = ``free_all_blocks``, stream-ordered frees) when the device runs short of
free memory or another framework's allocation fails, so CuPy's idle cache never starves
the others.

``mode="direct"``: every ``cupy.empty`` goes through the chain: per-allocation statistics,
CSV logs, leak stacks and limits per array. It is the debug mode (``share(track=True)`` or
``log=`` pick it unless a mode is given); its cost is a pool allocation and free per array
(``zerocopy bench memory``: ``cupy-shared-direct``). In both modes a refusal raises
``cupy.cuda.memory.OutOfMemoryError``.

The memory is wrapped in ``UnownedMemory`` with an owner whose ``__del__`` frees it on the
stream it was allocated on (``UnownedMemory`` cannot be weak-referenced, so no
``weakref.finalize``). Two allocator paths, picked at install from the chain:

- fused (the default chain: statistics and the out-of-memory callback over the device
  pool): CuPy's Cython ``mallocFromPoolAsync`` on the pool directly, the statistics
  recorded in the Ledger inline; any failure falls back to the whole chain, so the OOM
  callback and its retry still run.
- chain (limits, tracking, logging, failure injection or a non-pool base): every
  allocation goes through ``resource.allocate``.
"""

from __future__ import annotations

import sys
from typing import Any

from zerocopy.memory import _oom  # its oom_type(framework); this module has its own oom_type()
from zerocopy.memory.adaptors.failure import OutOfMemoryCallbackAdaptor
from zerocopy.memory.adaptors.injection import FailureInjectionAdaptor
from zerocopy.memory.adaptors.logging import LoggingAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor
from zerocopy.memory.adaptors.tracking import TrackingAdaptor
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
    "default_mode",
    "framework_stats",
    "idle_bytes",
    "install",
    "oom_type",
    "release_cache",
]

NAME = "cupy"
PACKAGE = "cupy"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install cupy-cuda13x (or the wheel matching your CUDA)"
MODES = ("cached", "direct")
# Adaptors that want to see every array, not CuPy's segments: they make "direct" the default.
_PER_ARRAY = (TrackingAdaptor, LoggingAdaptor, FailureInjectionAdaptor)


def capabilities(mode: str | None = None) -> Capabilities:
    if (mode or "cached") == "cached":
        return Capabilities(
            framework=NAME, mode="cached",
            route="cupy.cuda.MemoryPool(allocator=shared chain): CuPy's cache in front",
            per_allocation=False,
            limits="zerocopy LimitingAdaptor on CuPy's segments -> cupy.cuda.memory.OutOfMemoryError",
            accounting="segments held (statistics) + CuPy's used/total bytes",
            before_runtime=False,
            undoable="yes: the previous allocator is restored (live arrays keep their owners)",
            notes="any time; arrays made before install stay in CuPy's old pool")
    return Capabilities(
        framework=NAME, mode="direct",
        route="cupy.cuda.set_allocator(Python EAI) -> shared resource chain, per array",
        per_allocation=True,
        limits="zerocopy LimitingAdaptor -> cupy.cuda.memory.OutOfMemoryError",
        accounting="per allocation (StatisticsAdaptor)",
        before_runtime=False,
        undoable="yes: the previous allocator is restored (live arrays keep their owners)",
        notes="the debug mode: a pool allocation and free per array")


def check(mode: str | None = None) -> None:
    if mode not in (None, *MODES):
        raise unknown_mode(NAME, mode, MODES)


def default_mode(resource: MemoryResource) -> str:
    """"direct" where the chain logs, tracks or injects failures per allocation, else "cached"."""
    return "direct" if any(isinstance(a, _PER_ARRAY) for a in layers(resource)) else "cached"


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
    # The Ledger's own methods and CuPy's slot, bound once: no name lookup per array.
    ledger = stats.ledger if stats is not None else None
    slot = stats.slot(NAME) if stats is not None else -1
    note_free = ledger.remove if ledger is not None else None
    note_allocation = ledger.add if ledger is not None else None
    note_restore = ledger.restore if ledger is not None else None

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
                if note_restore is not None and record is not None:
                    note_restore(ptr, *record)
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
                    note_allocation(ptr, nbytes, slot)
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


def idle_bytes() -> int:
    """Bytes CuPy's cache holds that no array uses (cached mode), 0 otherwise."""
    return int(_cache[0].free_bytes()) if _cache else 0


# The cache installed by the last install() in "cached" mode (release_cache empties it).
_cache: list[Any] = []


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    check(mode)
    mode = mode or default_mode(resource)
    cupy = import_framework("cupy", NAME, INSTALL_HINT)
    previous = cupy.cuda.memory.get_allocator()
    fusable = _fusable(resource)
    inner = (_fused_allocator(cupy, resource, *fusable) if fusable is not None
             else _allocator(cupy, resource))
    details: dict[str, object] = {"limit": limit, "path": f"{mode}+{inner.zerocopy_path}"}
    if mode == "cached":
        cache = cupy.cuda.MemoryPool(allocator=inner)
        _cache[:] = [cache]
        details["cache"] = cache
        cupy.cuda.set_allocator(cache.malloc)
    else:
        cupy.cuda.set_allocator(inner)

    def undo() -> None:
        cupy.cuda.set_allocator(previous)
        if _cache and details.get("cache") is _cache[0]:
            _cache.clear()

    return Installation(NAME, capabilities(mode), details, undo)


def framework_stats() -> dict[str, int] | None:
    """CuPy's own view where its cache is in front: bytes in use by arrays, bytes held."""
    if not _cache:
        return None  # direct mode: everything CuPy allocates is in our statistics
    cache = _cache[0]
    return {"current_bytes": int(cache.used_bytes()), "reserved_bytes": int(cache.total_bytes()),
            "cached_free_bytes": int(cache.free_bytes())}


def release_cache() -> bool:
    """Give CuPy's idle cached blocks back to the shared pool (and its default pool's)."""
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return False
    for cache in (*_cache, cupy.get_default_memory_pool()):
        cache.free_all_blocks()
    return True


def oom_type() -> type[BaseException] | None:
    import cupy

    return cupy.cuda.memory.OutOfMemoryError
