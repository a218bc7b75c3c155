"""CPU kernel: copy many strided byte fields at once, cache-blocked and multi-threaded.

Every CPU layout transform here (records -> columns, columns -> records, table ->
row-major tensor and back, zero-filling record padding) is the same operation: for each
entry ``e`` and row ``i``, copy ``width[e]`` bytes from ``src[e] + i * sstride[e]`` to
``dst[e] + i * dstride[e]``. One Numba kernel with one signature does them all, so it is
compiled once per machine (``cache=True``) whatever the record layout is.

Why raw addresses: a packed record puts an int64 at byte 18, which no aligned NumPy view
can reach, and a variable number of differently typed columns would make Numba compile
one specialisation per layout. Loads and stores go through two tiny intrinsics that
emit unaligned (``align 1``) LLVM memory operations, which x86 and ARM do at full speed.

Why blocks of rows: the rows are split into blocks of about 128 KiB of records; each
thread moves every field of one block while that block sits in its L2 cache, so the
record memory is read from DRAM once, not once per field.

Uniform records (``k`` fields of one 1/2/4/8-byte width, back to back, columns
contiguous: an ``(N, k)`` array <-> ``k`` columns, a table <-> a C-order tensor) take a
specialised pair of kernels compiled per ``(k, width)`` (see
:func:`._cpu_numba.transpose_kernels`): tiles of 256 bytes per column transposed in
registers, whole runs streamed to memory.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CopyPlan", "run"]

_BLOCK_BYTES = 128 * 1024
# Below this many bytes, starting threads costs more than it saves.
_PARALLEL_BYTES = 1 << 20

_kernel: list[object] = []  # the compiled kernel, or None without Numba; set on first use
# Uniform records of more fields than this use the generic kernel (code size, compile time).
_MAX_UNIFORM_FIELDS = 64


@dataclass
class CopyPlan:
    """Strided byte-field copies over ``n`` rows; ``keep`` holds the arrays the addresses need."""

    n: int
    src: list[int] = field(default_factory=list)
    sstride: list[int] = field(default_factory=list)
    dst: list[int] = field(default_factory=list)
    dstride: list[int] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    keep: list[object] = field(default_factory=list)

    def add(self, src: int, sstride: int, dst: int, dstride: int, width: int) -> None:
        if width:
            self.src.append(src)
            self.sstride.append(sstride)
            self.dst.append(dst)
            self.dstride.append(dstride)
            self.width.append(width)

    def zero(self, dst: int, dstride: int, width: int) -> None:
        """Fill ``width`` bytes per row with zeros (record padding): a stride-0 source.

        The gap is cut into aligned 8/4/2/1-byte pieces so each runs in a tight loop.
        """
        zeros = np.zeros(8, np.uint8)
        self.keep.append(zeros)
        pos, end = 0, width
        while pos < end:
            piece = 8
            while piece > 1 and ((dst + pos) % piece or pos + piece > end):
                piece //= 2
            self.add(zeros.ctypes.data, 0, dst + pos, dstride, piece)
            pos += piece

    @property
    def row_bytes(self) -> int:
        return sum(self.width)


def run(plan: CopyPlan) -> None:
    """Execute a plan: Numba when available, else a NumPy loop over the entries."""
    if plan.n == 0 or not plan.width:
        return
    kernel = _numba_kernel()
    if kernel is None:
        _run_numpy(plan)
        return
    # Small copies go as one block (one thread): waking threads would cost more.
    small = plan.n * plan.row_bytes < _PARALLEL_BYTES
    if _run_uniform(plan, small):
        return
    block = plan.n if small else max(64, _BLOCK_BYTES // max(1, plan.row_bytes))
    arrays = [np.asarray(v, np.int64) for v in
              (plan.src, plan.sstride, plan.dst, plan.dstride, plan.width)]
    kernel(plan.n, *arrays, block)


def _uniform(plan: CopyPlan) -> tuple[str, int, int, list[int]] | None:
    """``(direction, k, width, column addresses)`` when the plan is a uniform transpose.

    Records -> columns ("gather"): every entry reads ``width`` bytes with record stride
    ``k * width`` from one record block whose fields are exactly ``0, w, ..., (k-1) w``,
    and writes a contiguous column. Columns -> records ("scatter") is the mirror image.
    Column addresses come in field order; the record address is first in the list.
    """
    k = len(plan.width)
    w = plan.width[0]
    if k < 2 or k > _MAX_UNIFORM_FIELDS or w not in (1, 2, 4, 8):
        return None
    if any(x != w for x in plan.width):
        return None
    for direction, rec, rstride, col, cstride in (
            ("gather", plan.src, plan.sstride, plan.dst, plan.dstride),
            ("scatter", plan.dst, plan.dstride, plan.src, plan.sstride)):
        if any(x != k * w for x in rstride) or any(x != w for x in cstride):
            continue
        base = min(rec)
        order = sorted(range(k), key=lambda e: rec[e])
        if [rec[e] - base for e in order] != [j * w for j in range(k)]:
            continue
        return direction, k, w, [base] + [col[e] for e in order]
    return None


def _run_uniform(plan: CopyPlan, small: bool) -> bool:
    found = _uniform(plan)
    if found is None:
        return False
    from . import _cpu_numba  # the caller made sure Numba imports

    direction, k, w, addrs = found
    gather, scatter = _cpu_numba.transpose_kernels(k, w)
    cols = np.asarray(addrs[1:], np.int64)
    chunks = 1 if small else _threads()
    if direction == "gather":
        gather(plan.n, addrs[0], cols, chunks)
    else:
        scatter(plan.n, cols, addrs[0], chunks)
    return True


def _threads() -> int:
    import numba

    return max(1, numba.get_num_threads())


def _run_numpy(plan: CopyPlan) -> None:
    for s, ss, d, ds, w in zip(plan.src, plan.sstride, plan.dst, plan.dstride, plan.width,
                               strict=True):
        np.copyto(_byte_view(d, plan.n, ds, w), _byte_view(s, plan.n, ss, w))


def _byte_view(addr: int, n: int, stride: int, width: int) -> np.ndarray:
    """A writable (n, width) uint8 view of memory we were handed by address."""
    lo = addr + min(0, (n - 1) * stride)
    span = abs((n - 1) * stride) + width
    buf = np.frombuffer((ctypes.c_char * span).from_address(lo), np.uint8)
    return np.lib.stride_tricks.as_strided(buf[addr - lo:], shape=(n, width),
                                           strides=(stride, 1))


def _numba_kernel():
    """The compiled kernel; Numba is imported on first use so importing us stays cheap."""
    if not _kernel:
        try:
            from . import _cpu_numba
        except ImportError:  # Numba is an optional extra: fall back to NumPy
            _kernel.append(None)
        else:
            _kernel.append(_cpu_numba.copy_fields_parallel)
    return _kernel[0]
