"""Plain ``cudaMalloc``/``cudaFree``: no pool. The benchmark's baseline, and a way to see
what pooling buys (90 us vs 1.1 us per 64 MiB pair on the H100). ``cudaFree`` waits for
the whole GPU to be idle, so never put this under a framework in a training loop."""

from __future__ import annotations

from zerocopy import _cuda

__all__ = ["CudaMallocResource"]


class CudaMallocResource:
    def __init__(self) -> None:
        self._rt = _cuda.binding()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        return self._rt.malloc(nbytes)

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        if ptr:
            self._rt.free(ptr)

    def __repr__(self) -> str:
        return "CudaMallocResource()"
