"""One GPU memory pool for every framework: the EAI, resources, adaptors, hooks, governance.

    import zerocopy.memory as zm
    shared = zm.share(limits={"cupy": 8 << 30}, track=True)   # before torch/jax start
    ...
    print(zm.report())

Importing this package imports no framework and changes nothing: ``share()`` does the work.
"""

from __future__ import annotations

from zerocopy.memory.adaptors import (
    FailureInjectionAdaptor,
    LimitingAdaptor,
    LoggingAdaptor,
    OutOfMemoryCallbackAdaptor,
    StatisticsAdaptor,
    Stats,
    TrackingAdaptor,
    release_caches,
)
from zerocopy.memory.governance import PoolEvent, PoolGovernor
from zerocopy.memory.hooks import Capabilities, Installation, capability_table
from zerocopy.memory.report import MemoryReport, report
from zerocopy.memory.resource import (
    MemoryResource,
    ResourceAdaptor,
    get_current_resource,
    set_current_resource,
)
from zerocopy.memory.resources import (
    CudaMallocResource,
    DevicePoolResource,
    HostMemoryResource,
    ManagedMemoryResource,
    PinnedMemoryResource,
)
from zerocopy.memory.share import SharedPool, active, installed_frameworks, share, unshare

__all__ = [
    "Capabilities",
    "CudaMallocResource",
    "DevicePoolResource",
    "FailureInjectionAdaptor",
    "HostMemoryResource",
    "Installation",
    "LimitingAdaptor",
    "LoggingAdaptor",
    "ManagedMemoryResource",
    "MemoryReport",
    "MemoryResource",
    "OutOfMemoryCallbackAdaptor",
    "PinnedMemoryResource",
    "PoolEvent",
    "PoolGovernor",
    "ResourceAdaptor",
    "SharedPool",
    "StatisticsAdaptor",
    "Stats",
    "TrackingAdaptor",
    "active",
    "capability_table",
    "get_current_resource",
    "installed_frameworks",
    "release_caches",
    "report",
    "set_current_resource",
    "share",
    "unshare",
]
