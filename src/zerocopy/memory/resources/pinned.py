"""Page-locked host memory (``cudaMallocHost``): the source and target of fast, truly
asynchronous host<->device copies. Its free (``cudaFreeHost``) synchronises, so keep
pinned buffers for reuse rather than freeing them in a loop."""

from __future__ import annotations

from zerocopy import _cuda

__all__ = ["PinnedMemoryResource"]


class PinnedMemoryResource:
    def __init__(self) -> None:
        self._rt = _cuda.binding()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        return self._rt.malloc_host(max(nbytes, 1))

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        self._rt.free_host(ptr)

    def __repr__(self) -> str:
        return "PinnedMemoryResource()"
