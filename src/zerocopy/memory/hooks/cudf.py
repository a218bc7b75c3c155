"""cuDF (and everything else on RMM): RMM's current device resource.

``mode="view"`` (default): ``rmm.mr.CudaAsyncViewMemoryResource`` on the default pool, so
cuDF allocates straight from the shared pool at RMM's C++ speed (pool-level accounting).
``mode="callback"``: ``rmm.mr.CallbackMemoryResource`` calling our resource chain from
Python, so cuDF gets per-allocation statistics, logs, leak stacks and limits. Needs the
``rmm`` extra. cuDF itself is too large to carry to the GPU test machine; RMM is carried,
so the GPU tests exercise this hook through RMM's ``DeviceBuffer``.
"""

from __future__ import annotations

import sys
from typing import Any

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

NAME = "cudf"
PACKAGE = "rmm"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install rmm-cu13 (cuDF: pip install cudf-cu13)"
MODES = ("view", "callback")


def capabilities(mode: str | None = None) -> Capabilities:
    if (mode or "view") == "view":
        return Capabilities(
            framework=NAME, mode="view",
            route="rmm.mr.CudaAsyncViewMemoryResource(default pool) as RMM's current resource",
            per_allocation=False,
            limits="none in this mode (use mode='callback')",
            accounting="pool-level only",
            before_runtime=False,
            undoable="yes: RMM's previous current resource is restored",
            notes="also routes CuPy/Numba if the user later plugs RMM's allocators in")
    return Capabilities(
        framework=NAME, mode="callback",
        route="rmm.mr.CallbackMemoryResource -> shared resource chain",
        per_allocation=True,
        limits="zerocopy LimitingAdaptor -> MemoryError raised through RMM (cuDF on the H200: tests/memory)",
        accounting="per allocation (StatisticsAdaptor)",
        before_runtime=False,
        undoable="yes: RMM's previous current resource is restored",
        notes="a Python call per allocation")


def check(mode: str | None = None) -> None:
    if (mode or "view") not in MODES:
        raise unknown_mode(NAME, mode or "", MODES)


def _stream_handle(stream: Any) -> int:
    # RMM passes its Stream object; its raw handle is spelled differently across releases.
    for attr in ("handle", "value"):
        value = getattr(stream, attr, None)
        if isinstance(value, int):
            return value
    protocol = getattr(stream, "__cuda_stream__", None)
    return int(protocol()[1]) if protocol else 0


def _view_resource(rmm: Any, resource: MemoryResource) -> Any:
    base = list(layers(resource))[-1]
    pool = base.pool if isinstance(base, DevicePoolResource) else DevicePoolResource().pool
    return rmm.mr.CudaAsyncViewMemoryResource(_pool_handle(pool))


def _pool_handle(pool: int) -> Any:
    """RMM (26.x) takes only a typed handle, ``cudaMemPool_t`` or ``CUmemoryPool``, and
    refuses a plain int with ValueError. RMM itself depends on cuda.bindings, so the
    runtime type is always importable where RMM is."""
    from cuda.bindings import runtime as cudart

    return cudart.cudaMemPool_t(int(pool))


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    mode = mode or "view"
    check(mode)
    rmm = import_framework("rmm", NAME, INSTALL_HINT)
    previous = rmm.mr.get_current_device_resource()
    if mode == "view":
        mr = _view_resource(rmm, resource)
    else:
        mr = rmm.mr.CallbackMemoryResource(
            lambda nbytes, stream: resource.allocate(nbytes, _stream_handle(stream), framework=NAME),
            lambda ptr, nbytes, stream: resource.deallocate(ptr, nbytes, _stream_handle(stream)))
    rmm.mr.set_current_device_resource(mr)
    return Installation(NAME, capabilities(mode), {"limit": limit, "rmm_resource": repr(mr)},
                        lambda: rmm.mr.set_current_device_resource(previous))


def framework_stats() -> dict[str, int] | None:
    return None


def release_cache() -> bool:
    return False  # RMM over the shared pool caches nothing of its own


def oom_type() -> type[BaseException] | None:
    rmm = sys.modules.get("rmm")
    return getattr(rmm, "RMMError", None) if rmm else None
