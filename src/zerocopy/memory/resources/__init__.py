"""Resources: where memory comes from. One per file; GPU ones import CUDA only when built."""

from __future__ import annotations

__all__ = [
    "CudaMallocResource",
    "DevicePoolResource",
    "HostMemoryResource",
    "ManagedMemoryResource",
    "PinnedMemoryResource",
]

from zerocopy.memory.resources.cuda_malloc import CudaMallocResource
from zerocopy.memory.resources.device_pool import DevicePoolResource
from zerocopy.memory.resources.host import HostMemoryResource
from zerocopy.memory.resources.managed import ManagedMemoryResource
from zerocopy.memory.resources.pinned import PinnedMemoryResource
