from __future__ import annotations

import pytest

from zerocopy.memory import HostMemoryResource, MemoryResource
from zerocopy.memory.resources.host import host_buffer


def test_is_a_memory_resource() -> None:
    assert isinstance(HostMemoryResource(), MemoryResource)


@pytest.mark.parametrize("nbytes", [1, 255, 256, 4096, 1 << 20])
def test_memory_is_real_and_aligned(nbytes: int) -> None:
    mr = HostMemoryResource(alignment=256)
    ptr = mr.allocate(nbytes)
    assert ptr % 256 == 0
    view = host_buffer(ptr, nbytes)
    pattern = bytes(i % 251 for i in range(nbytes))
    view[:] = pattern
    assert bytes(host_buffer(ptr, nbytes)) == pattern
    mr.deallocate(ptr, nbytes)
    assert mr.live_count == 0


def test_zero_bytes_get_distinct_pointers() -> None:
    mr = HostMemoryResource()
    a, b = mr.allocate(0), mr.allocate(0)
    assert a and b and a != b
    mr.deallocate(a, 0)
    mr.deallocate(b, 0)


def test_double_free_and_foreign_pointer_are_errors() -> None:
    mr = HostMemoryResource()
    ptr = mr.allocate(64)
    mr.deallocate(ptr, 64)
    with pytest.raises(ValueError, match="freed twice"):
        mr.deallocate(ptr, 64)
    with pytest.raises(ValueError, match="not allocated by this resource"):
        mr.deallocate(12345, 64)


def test_size_mismatch_keeps_the_allocation() -> None:
    mr = HostMemoryResource()
    ptr = mr.allocate(64)
    with pytest.raises(ValueError, match="Expected 64"):
        mr.deallocate(ptr, 65)
    assert mr.live_count == 1
    mr.deallocate(ptr, 64)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="power of two"):
        HostMemoryResource(alignment=100)
    with pytest.raises(ValueError, match="negative"):
        HostMemoryResource().allocate(-1)
