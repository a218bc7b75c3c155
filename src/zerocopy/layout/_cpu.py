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

A layout's copies are planned once (:class:`Moves`, offsets relative to a source and a
destination base address, cached by the callers per layout), so a call only adds the two
base addresses. Copies under 1 MiB run on the calling thread (a serial twin of each
kernel): waking a thread pool costs more than they do, far more on a busy machine.

Uniform records (``k`` fields of one 1/2/4/8-byte width, back to back, columns
contiguous: an ``(N, k)`` array <-> ``k`` columns, a table <-> a C-order tensor) take a
specialised pair of kernels compiled per ``(k, width)`` (see
:func:`._cpu_numba.transpose_kernels`): tiles of 256 bytes per column transposed in
registers, whole runs streamed to memory.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Moves", "moves", "run"]

_BLOCK_BYTES = 128 * 1024
_TILE_BYTES = 16 * 1024
# Below this many bytes, starting threads costs more than it saves.
_PARALLEL_BYTES = 1 << 20

_Transpose = tuple[str, int, int]  # (direction, fields, width) of a uniform transpose
_kernel: list[ModuleType | None] = []  # the _cpu_numba module, or None without Numba; set on first use
# Uniform records of more fields than this use the generic kernel (code size, compile time).
_MAX_UNIFORM_FIELDS = 64


class Moves:
    """Strided byte-field copies, planned once per layout.

    ``entries``: ``(src, sstride, dst, dstride, width)`` per field: ``width`` bytes per row
    from ``sbase + src + i * sstride`` to ``dbase + dst + i * dstride``, the bases given
    per call (:func:`run`). ``zeros``: ``(dst, dstride, width)`` byte ranges to fill with
    zeros (record padding), cut here into aligned 8/4/2/1-byte pieces.
    """

    __slots__ = ("cols", "dst", "dstride", "fields", "order", "rec", "row_bytes", "src",
                 "sstride", "streamed", "tile", "uniform", "width")

    uniform: _Transpose | None
    order: Any  # np.ndarray: the entries in record order, set with ``uniform``

    def __init__(self, entries: Iterable[tuple[int, int, int, int, int]],
                 zeros: Iterable[tuple[int, int, int]] = ()) -> None:
        rows = list(entries)
        self.fields = len(rows)
        for dst, dstride, width in zeros:
            pos = 0
            while pos < width:
                piece = 8
                while piece > 1 and ((dst + pos) % piece or pos + piece > width):
                    piece //= 2
                rows.append((0, 0, dst + pos, dstride, -piece))
                pos += piece
        cols = list(zip(*rows, strict=True)) if rows else [()] * 5
        self.src, self.sstride, self.dst, self.dstride, self.width = (
            np.asarray(c, np.int64) for c in cols)
        self.row_bytes = int(np.abs(self.width).sum())
        self.uniform, self.order = _uniform(rows)
        self.streamed = None if self.uniform is not None else _streamed(rows)
        # Rows per tile of the streamed kernels: ~16 KiB of records, a multiple of 64.
        self.tile = max(64, (_TILE_BYTES // max(1, self.row_bytes)) // 64 * 64)
        if self.uniform is not None:  # the record's start and the columns in field order
            rec_side, col_side = ((self.src, self.dst) if self.uniform[0] == "gather"
                                  else (self.dst, self.src))
            self.rec = int(rec_side[self.order[0]])
            self.cols = col_side[self.order]


    def addresses(self, per_field: list[int]) -> np.ndarray:
        """Per-call offsets: ``per_field`` for the fields, 0 for the padding pieces."""
        return np.asarray(per_field + [0] * (len(self.width) - self.fields), np.int64)


_cache: dict[tuple[Any, ...], Moves] = {}


def moves(key: tuple[Any, ...], make: Callable[[], Moves]) -> Moves:
    """The cached :class:`Moves` for ``key``, made by ``make()`` the first time."""
    found = _cache.get(key)
    if found is None:
        if len(_cache) > 512:  # layouts seen once each: start over rather than grow
            _cache.clear()
        found = _cache[key] = make()
    return found


def _streamed(rows: list[tuple[int, int, int, int, int]]) -> str | None:
    """"gather" when every entry writes a contiguous column; "scatter" when the entries
    fill records of one size exactly, padding included (each byte once) (see
    :mod:`._cpu_numba`); else None."""
    if not rows:
        return None
    if all(r[4] > 0 and r[3] == r[4] for r in rows):
        return "gather"
    size = rows[0][3]
    spans = sorted((r[2], r[2] + abs(r[4])) for r in rows if r[4])
    if (size <= 0 or not spans or any(r[3] != size for r in rows) or spans[0][0] < 0
            or spans[-1][1] > size):
        return None
    covered = sum(b - a for a, b in spans)
    disjoint = all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    return "scatter" if covered == size and disjoint else None


def _uniform(rows: list[tuple[int, int, int, int, int]]) -> tuple[_Transpose | None, np.ndarray | None]:
    """``((direction, k, width), field order)`` when the moves are a uniform transpose.

    Records -> columns ("gather"): every entry reads ``width`` bytes with record stride
    ``k * width`` from one record block whose fields are exactly ``0, w, ..., (k-1) w``
    past its first, and writes a contiguous column. Columns -> records ("scatter") is the
    mirror image. The order lists the entries by record offset (the kernels' field order).
    """
    k = len(rows)
    if k < 2 or k > _MAX_UNIFORM_FIELDS:
        return None, None
    w = rows[0][4]
    if w not in (1, 2, 4, 8) or any(r[4] != w for r in rows):
        return None, None
    for direction, rec, rstride, cstride in (("gather", 0, 1, 3), ("scatter", 2, 3, 1)):
        if any(r[rstride] != k * w or r[cstride] != w for r in rows):
            continue
        order = sorted(range(k), key=lambda e: rows[e][rec])
        base = rows[order[0]][rec]
        if [rows[e][rec] - base for e in order] == [j * w for j in range(k)]:
            return (direction, k, w), np.asarray(order, np.int64)
    return None, None


def run(n: int, sbase: int, dbase: int, moves: Moves, src: np.ndarray | None = None,
        dst: np.ndarray | None = None) -> None:
    """Execute ``moves`` over ``n`` rows between the two base addresses.

    ``src`` / ``dst``: per-call offsets replacing the planned ones (absolute column
    addresses with a base of 0, for columns that are separate arrays).
    """
    if n == 0 or not moves.row_bytes:
        return
    kernels = _numba()
    small = n * moves.row_bytes < _PARALLEL_BYTES
    # A small copy takes the uniform kernels only once compiled (by a large one): it would
    # not repay their compilation.
    if kernels is not None and moves.uniform is not None and (
            not small or moves.uniform[1:] in kernels.compiled_transposers):
        _run_uniform(kernels, n, sbase, dbase, moves, src, dst, small)
        return
    src = moves.src if src is None else src
    dst = moves.dst if dst is None else dst
    if kernels is None:
        _run_numpy(n, sbase, dbase, moves, src, dst)
    elif small:
        kernels.copy_fields_serial(n, sbase, src, moves.sstride, dbase, dst, moves.dstride,
                                   moves.width)
    elif moves.streamed == "gather":
        kernels.gather_streamed(n, moves.tile, sbase, src, moves.sstride, dbase, dst,
                                moves.width, _threads())
    elif moves.streamed == "scatter" and len(moves.width) <= _MAX_UNIFORM_FIELDS:
        # The record written whole per row, by a kernel made for this layout (its columns'
        # addresses are per call, its offsets and widths constants).
        size = int(moves.dstride[0])
        fields = tuple((int(d), int(w)) for d, w in zip(dst, moves.width, strict=True) if w > 0)
        live = np.flatnonzero(moves.width > 0)
        kernels.record_scatter(size, fields)(n, sbase, src[live], moves.sstride[live], dbase,
                                             _threads())
    elif moves.streamed == "scatter":
        kernels.scatter_streamed(n, moves.tile, int(moves.dstride[0]), sbase, src,
                                 moves.sstride, dbase, dst, moves.width, _threads())
    else:
        block = max(64, _BLOCK_BYTES // moves.row_bytes)
        kernels.copy_fields_parallel(n, sbase, src, moves.sstride, dbase, dst,
                                     moves.dstride, moves.width, block)


def _run_uniform(kernels: ModuleType, n: int, sbase: int, dbase: int, moves: Moves,
                 src: np.ndarray | None, dst: np.ndarray | None, small: bool) -> None:
    direction, k, w = moves.uniform or ("", 0, 0)  # uniform: run() checked
    gather, scatter, gather_serial, scatter_serial = kernels.transpose_kernels(k, w)
    if direction == "gather":
        rec = sbase + (moves.rec if src is None else int(src[moves.order[0]]))
        cols = moves.cols if dst is None else dst[moves.order]
        if small:
            gather_serial(n, rec, cols, dbase)
        else:
            gather(n, rec, cols, dbase, _threads())
    else:
        rec = dbase + (moves.rec if dst is None else int(dst[moves.order[0]]))
        cols = moves.cols if src is None else src[moves.order]
        if small:
            scatter_serial(n, cols, sbase, rec)
        else:
            scatter(n, cols, sbase, rec, _threads())


def _threads() -> int:
    import numba

    return max(1, numba.get_num_threads())


def _run_numpy(n: int, sbase: int, dbase: int, moves: Moves, src: np.ndarray,
               dst: np.ndarray) -> None:
    for s, ss, d, ds, w in zip(src.tolist(), moves.sstride.tolist(), dst.tolist(),
                               moves.dstride.tolist(), moves.width.tolist(), strict=True):
        if not w:
            continue
        target = _byte_view(dbase + d, n, ds, abs(w))
        if w < 0:
            target[...] = 0
        else:
            np.copyto(target, _byte_view(sbase + s, n, ss, w))


def _byte_view(addr: int, n: int, stride: int, width: int) -> np.ndarray:
    """A writable (n, width) uint8 view of memory we were handed by address."""
    lo = addr + min(0, (n - 1) * stride)
    span = abs((n - 1) * stride) + width
    buf = np.frombuffer((ctypes.c_char * span).from_address(lo), np.uint8)  # type: ignore[call-overload]
    return np.lib.stride_tricks.as_strided(buf[addr - lo:], shape=(n, width),
                                           strides=(stride, 1))


def _numba() -> ModuleType | None:
    """The kernels module; Numba is imported on first use so importing us stays cheap."""
    if not _kernel:
        try:
            from zerocopy.layout import _cpu_numba
        except ImportError:  # Numba is an optional extra: fall back to NumPy
            _kernel.append(None)
        else:
            _kernel.append(_cpu_numba)
    return _kernel[0]
