"""The Numba side of :mod:`._cpu`; imported only when a kernel first runs.

Loads and stores go through tiny intrinsics that turn an integer address into an
unaligned (``align 1``) LLVM load or store: packed records put 8-byte fields at any byte,
and x86/ARM read those at full speed. Everything is defined at module level so that
``cache=True`` can keep the machine code between runs.
"""

from __future__ import annotations

import platform
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["compiled_transposers", "copy_fields_parallel", "copy_fields_serial",
           "gather_streamed", "record_scatter", "scatter_streamed", "transpose_kernels"]


def _memory_ops(bits: int) -> tuple[Any, Any]:
    utype = getattr(types, f"uint{bits}")

    @intrinsic
    def load(typingctx: Any, addr: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            return builder.load(ptr, align=1)
        return utype(types.int64), codegen

    @intrinsic
    def store(typingctx: Any, addr: Any, value: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            builder.store(args[1], ptr, align=1)
            return context.get_dummy_value()
        return types.void(types.int64, utype), codegen

    return load, store


def _indexed_ops(bits: int) -> tuple[Any, Any]:
    """Load/store element ``index`` of a ``bits``-wide array at an integer address.

    The pointer is made once from the base address and indexed with a GEP, so LLVM sees
    an affine access it can vectorise (an ``inttoptr`` of ``base + i * w`` it cannot).
    """
    utype = getattr(types, f"uint{bits}")

    @intrinsic
    def load(typingctx: Any, base: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            return builder.load(builder.gep(ptr, [args[1]], inbounds=True), align=1)
        return utype(types.int64, types.int64), codegen

    @intrinsic
    def store(typingctx: Any, base: Any, index: Any, value: Any) -> Any:
        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            builder.store(args[2], builder.gep(ptr, [args[1]], inbounds=True), align=1)
            return context.get_dummy_value()
        return types.void(types.int64, types.int64, utype), codegen

    return load, store


@intrinsic
def _memcpy(typingctx: Any, dst: Any, src: Any, nbytes: Any) -> Any:
    """``memcpy(dst, src, nbytes)`` on integer addresses (LLVM's intrinsic, align 1)."""
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        i8p = ir.IntType(8).as_pointer()
        cgutils.raw_memcpy(builder, builder.inttoptr(args[0], i8p),
                           builder.inttoptr(args[1], i8p), args[2], 1, align=1)
        return context.get_dummy_value()
    return types.void(types.int64, types.int64, types.int64), codegen


@intrinsic
def _stream64(typingctx: Any, dst: Any, src: Any) -> Any:
    """Copy 64 bytes, ``dst`` 64-byte aligned, with a non-temporal (streaming) store.

    A streaming store skips the read-for-ownership of the destination line, which an
    ordinary store pays: the difference between 2 and 3 bytes of DRAM traffic per byte.
    """
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vec = ir.VectorType(ir.IntType(64), 8)
        value = builder.load(builder.inttoptr(args[1], vec.as_pointer()), align=1)
        store = builder.store(value, builder.inttoptr(args[0], vec.as_pointer()), align=64)
        one = ir.Constant(ir.IntType(32), 1)
        store.set_metadata("nontemporal", builder.module.add_metadata([one]))
        return context.get_dummy_value()
    return types.void(types.int64, types.int64), codegen


@intrinsic
def _store_fence(typingctx: Any) -> Any:
    """``sfence``: streaming stores are weakly ordered; publish them before returning."""
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.x86.sse.sfence", fnty=ir.FunctionType(
            ir.VoidType(), []))
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


_load1, _store1 = _memory_ops(8)
_load2, _store2 = _memory_ops(16)
_load4, _store4 = _memory_ops(32)
_load8, _store8 = _memory_ops(64)


@numba.njit(cache=True)
def _copy_rows(r0: int, r1: int, sbase: int, src: np.ndarray, sstride: np.ndarray, dbase: int,  # noqa: PLR0912 (one Numba kernel)
               dst: np.ndarray, dstride: np.ndarray, width: np.ndarray) -> None:
    """Rows ``[r0, r1)`` of every entry; a negative width writes that many zero bytes."""
    for e in range(width.shape[0]):
        w = width[e]
        d = dbase + dst[e]
        ds = dstride[e]
        if w < 0:  # record padding, cut into aligned 8/4/2/1-byte pieces by the planner
            if w == -8:
                for i in range(r0, r1):
                    _store8(d + i * ds, np.uint64(0))
            elif w == -4:
                for i in range(r0, r1):
                    _store4(d + i * ds, np.uint32(0))
            elif w == -2:
                for i in range(r0, r1):
                    _store2(d + i * ds, np.uint16(0))
            else:
                for i in range(r0, r1):
                    for j in range(-w):
                        _store1(d + i * ds + j, np.uint8(0))
            continue
        s = sbase + src[e]
        ss = sstride[e]
        # One loop per common width keeps the inner loops tight; the last one is
        # generic (sub-arrays, complex128, odd sizes): 8-byte words, then 4/2/1.
        if w == 4:
            for i in range(r0, r1):
                _store4(d + i * ds, _load4(s + i * ss))
        elif w == 8:
            for i in range(r0, r1):
                _store8(d + i * ds, _load8(s + i * ss))
        elif w == 1:
            for i in range(r0, r1):
                _store1(d + i * ds, _load1(s + i * ss))
        elif w == 2:
            for i in range(r0, r1):
                _store2(d + i * ds, _load2(s + i * ss))
        else:
            for i in range(r0, r1):
                so = s + i * ss
                do = d + i * ds
                j = 0
                while j + 8 <= w:
                    _store8(do + j, _load8(so + j))
                    j += 8
                if j + 4 <= w:  # tails (and padding gaps such as 6 bytes) as 4/2/1
                    _store4(do + j, _load4(so + j))
                    j += 4
                if j + 2 <= w:
                    _store2(do + j, _load2(so + j))
                    j += 2
                if j < w:
                    _store1(do + j, _load1(so + j))


@numba.njit(parallel=True, cache=True)
def copy_fields_parallel(n: int, sbase: int, src: np.ndarray, sstride: np.ndarray, dbase: int,
                         dst: np.ndarray, dstride: np.ndarray, width: np.ndarray, block: int) -> None:
    """Blocks of rows across threads; every field of a block while it is in cache.

    Entry ``e`` copies ``width[e]`` bytes per row from ``sbase + src[e] + i * sstride[e]``
    to ``dbase + dst[e] + i * dstride[e]`` (a negative width: that many zero bytes).
    """
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        r0 = b * block
        _copy_rows(r0, min(n, r0 + block), sbase, src, sstride, dbase, dst, dstride, width)


@numba.njit(cache=True)
def copy_fields_serial(n: int, sbase: int, src: np.ndarray, sstride: np.ndarray, dbase: int, dst: np.ndarray,
                       dstride: np.ndarray, width: np.ndarray) -> None:
    """:func:`copy_fields_parallel` on the calling thread: small copies wake no threads."""
    _copy_rows(0, n, sbase, src, sstride, dbase, dst, dstride, width)


# ------------------------------------------------------------- mixed records, streamed
#
# Records -> columns for records of fields of different widths (an int64, two float32,
# an int8, a bool): one kernel for every layout (compiled once per machine, cache=True),
# like the generic one, but each field of a tile of ``tile`` rows (a multiple of 64, so
# each column's run is whole cache lines) is gathered into an L1 scratch block and then
# written to its column as whole cache lines with streaming stores (x86): the column is
# never read for ownership, so DRAM moves 2 bytes per byte copied instead of 3, as
# memcpy does. A column that is not 64-byte aligned streams from its first whole line
# (the partial lines at both ends are plain stores). Columns -> records the same way
# (a tile's records assembled in scratch, then streamed) pays off only for records with
# padding: the scratch is zeroed once per chunk and no field ever writes the padding, so
# the zero-fill passes disappear (aligned mixed record, 2 threads, 128 MiB: 0.90-0.94x
# memcpy against 0.84-0.88x); packed records keep the generic kernel's direct stores
# (1.01-1.06x against 0.74-0.79x streamed).

_STREAMS = platform.machine().lower() in {"x86_64", "amd64"}


@numba.njit(inline="always")
def _stream_copy(dst: int, src: int, nbytes: int) -> None:
    """``memcpy`` whose whole, aligned 64-byte lines are streaming stores."""
    if not _STREAMS:
        _memcpy(dst, src, nbytes)
        return
    head = min(nbytes, (64 - dst % 64) % 64)
    if head:
        _memcpy(dst, src, head)
    o = head
    while o + 64 <= nbytes:
        _stream64(dst + o, src + o)
        o += 64
    if o < nbytes:
        _memcpy(dst + o, src + o, nbytes - o)


@numba.njit(cache=True)
def _gather_tiles(n: int, b0: int, b1: int, tile: int, sbase: int, src: np.ndarray, sstride: np.ndarray,  # noqa: PLR0912 (one Numba kernel)
                  dbase: int, dst: np.ndarray, width: np.ndarray, scratch: np.ndarray) -> None:
    """Tiles ``[b0, b1)`` of records -> contiguous columns, through ``scratch``."""
    t = scratch.ctypes.data
    for b in range(b0, b1):
        r0 = b * tile
        m = min(tile, n - r0)
        for e in range(width.shape[0]):
            w = width[e]
            ss = sstride[e]
            s = sbase + src[e] + r0 * ss
            if w == 4:
                for i in range(m):
                    _store4(t + 4 * i, _load4(s + i * ss))
            elif w == 8:
                for i in range(m):
                    _store8(t + 8 * i, _load8(s + i * ss))
            elif w == 1:
                for i in range(m):
                    _store1(t + i, _load1(s + i * ss))
            elif w == 2:
                for i in range(m):
                    _store2(t + 2 * i, _load2(s + i * ss))
            else:
                for i in range(m):
                    _memcpy(t + w * i, s + i * ss, w)
            _stream_copy(dbase + dst[e] + r0 * w, t, m * w)
    if _STREAMS:
        _store_fence()


@numba.njit(parallel=True, cache=True)
def gather_streamed(n: int, tile: int, sbase: int, src: np.ndarray, sstride: np.ndarray, dbase: int,
                    dst: np.ndarray, width: np.ndarray, nchunks: int) -> None:
    """Records -> contiguous columns, ``nchunks`` contiguous runs of tiles in parallel."""
    ntiles = (n + tile - 1) // tile
    per = (ntiles + nchunks - 1) // nchunks
    wmax = 1
    for e in range(width.shape[0]):
        wmax = max(wmax, width[e])
    for c in numba.prange(nchunks):
        scratch = np.empty(tile * wmax, np.uint8)
        _gather_tiles(n, c * per, min(ntiles, (c + 1) * per), tile, sbase, src, sstride,
                      dbase, dst, width, scratch)


@numba.njit(cache=True)
def _scatter_tiles(n: int, b0: int, b1: int, tile: int, size: int, sbase: int, src: np.ndarray,  # noqa: PLR0912 (one Numba kernel)
                   sstride: np.ndarray, dbase: int, dst: np.ndarray, width: np.ndarray,
                   scratch: np.ndarray) -> None:
    """Tiles ``[b0, b1)`` of columns -> records of ``size`` bytes, built in ``scratch``
    (zeroed once: the padding no field writes stays zero) and streamed out."""
    t = scratch.ctypes.data
    for b in range(b0, b1):
        r0 = b * tile
        m = min(tile, n - r0)
        for e in range(width.shape[0]):
            w = width[e]
            if w <= 0:  # padding: already zero in scratch
                continue
            o = t + dst[e]
            ss = sstride[e]
            s = sbase + src[e] + r0 * ss
            if w == 4:
                for i in range(m):
                    _store4(o + i * size, _load4(s + i * ss))
            elif w == 8:
                for i in range(m):
                    _store8(o + i * size, _load8(s + i * ss))
            elif w == 1:
                for i in range(m):
                    _store1(o + i * size, _load1(s + i * ss))
            elif w == 2:
                for i in range(m):
                    _store2(o + i * size, _load2(s + i * ss))
            else:
                for i in range(m):
                    _memcpy(o + i * size, s + i * ss, w)
        _stream_copy(dbase + r0 * size, t, m * size)
    if _STREAMS:
        _store_fence()


@numba.njit(parallel=True, cache=True)
def scatter_streamed(n: int, tile: int, size: int, sbase: int, src: np.ndarray, sstride: np.ndarray,
                     dbase: int, dst: np.ndarray, width: np.ndarray, nchunks: int) -> None:
    """Columns -> records with padding, ``nchunks`` contiguous runs of tiles in parallel."""
    ntiles = (n + tile - 1) // tile
    per = (ntiles + nchunks - 1) // nchunks
    for c in numba.prange(nchunks):
        scratch = np.zeros(tile * size, np.uint8)
        _scatter_tiles(n, c * per, min(ntiles, (c + 1) * per), tile, size, sbase, src,
                       sstride, dbase, dst, width, scratch)


# ------------------------------------------------------------------ uniform records

_INDEXED = {w: _indexed_ops(8 * w) for w in (1, 2, 4, 8)}
_RUN_BYTES = 256  # bytes of each column per tile: 4 cache lines, one streaming burst
_STREAM = platform.machine().lower() in {"x86_64", "amd64"}
_transposers: dict[tuple[int, int], tuple[object, object, object, object]] = {}
compiled_transposers = _transposers.keys()  # (k, w) pairs made so far (a live view)


def transpose_kernels(k: int, w: int) -> tuple[Any, Any, Any, Any]:
    """``(gather, scatter, gather_serial, scatter_serial)`` for records of ``k`` fields of
    ``w`` bytes each.

    ``gather(n, rec, cols, cbase, nchunks)``: records at ``rec`` (``k * w`` bytes each,
    back to back) -> ``k`` contiguous columns at the addresses ``cbase + cols[j]``;
    ``scatter(n, cols, cbase, rec, nchunks)`` the way back; the ``_serial`` twins take no
    ``nchunks`` and run on the calling thread (small copies: no threads to wake). ``k``,
    ``w`` and the tile height ``T`` (256 bytes of each column) are constants of the
    compiled code, so the record side is an interleaved access that LLVM turns into wide
    loads/stores and in-register shuffles. A tile is transposed through a ``(k, T)``
    scratch block in L1, so the vectorised loop has one load and one store stream (no
    aliasing checks between ``k`` column pointers), and the memory side is whole
    256-byte runs per column and ``256 * k`` bytes of records. On x86 those runs are
    written with streaming stores where 64-byte aligned (no read-for-ownership, as memcpy
    does for large copies). The rows are cut into ``nchunks`` contiguous chunks, one
    ``prange`` iteration each (one scratch block per chunk). Compiled once per ``(k, w)``
    per process (about 1.5 s): Numba's disk cache did not hit for these closures (their
    intrinsic cells change its key), so it is off.
    """
    key = (k, w)
    if key not in _transposers:
        _transposers[key] = _make_transposers(k, w, _STREAM)
    return _transposers[key]


@numba.njit(inline="always")
def _put(dst: int, src: int, nbytes: int, full: bool, run: int, stream: bool) -> None:
    """Copy a run out of scratch: streamed when whole and aligned, else memcpy."""
    if stream and full and dst % 64 == 0:
        for o in range(0, run, 64):
            _stream64(dst + o, src + o)
    elif full:
        _memcpy(dst, src, run)
    else:
        _memcpy(dst, src, nbytes)


def _make_transposers(k: int, w: int, stream: bool) -> tuple[Any, Any, Any, Any]:  # noqa: PLR0915 (four small kernels)
    load, store = _INDEXED[w]
    tile = _RUN_BYTES // w  # rows per tile
    run = _RUN_BYTES
    row_bytes = k * w

    @numba.njit
    def gather_tiles(n: int, rec: int, cols: np.ndarray, cbase: int, b0: int, b1: int,
                     scratch: np.ndarray) -> None:
        """Tiles ``[b0, b1)``; ``scratch``: ``k * 256`` bytes (alive while we run)."""
        t = scratch.ctypes.data
        for b in range(b0, b1):
            r0 = b * tile
            m = min(tile, n - r0)
            s = rec + r0 * row_bytes
            if m == tile:
                for i in range(tile):
                    for j in range(k):
                        store(t, j * tile + i, load(s, i * k + j))
            else:
                for i in range(m):
                    for j in range(k):
                        store(t, j * tile + i, load(s, i * k + j))
            for j in range(k):
                _put(cbase + cols[j] + r0 * w, t + j * run, m * w, m == tile, run, stream)
        if stream:
            _store_fence()

    @numba.njit
    def scatter_tiles(n: int, cols: np.ndarray, cbase: int, rec: int, b0: int, b1: int, scratch: np.ndarray,
                      recs: np.ndarray) -> None:
        """Tiles ``[b0, b1)``; ``scratch``, ``recs``: a tile's columns and records."""
        t = scratch.ctypes.data
        u = recs.ctypes.data
        for b in range(b0, b1):
            r0 = b * tile
            m = min(tile, n - r0)
            d = rec + r0 * row_bytes
            if m == tile:
                for j in range(k):
                    _memcpy(t + j * run, cbase + cols[j] + r0 * w, run)
                for i in range(tile):
                    for j in range(k):
                        store(u, i * k + j, load(t, j * tile + i))
                for q in range(k):
                    _put(d + q * run, u + q * run, run, True, run, stream)
            else:
                for j in range(k):
                    _memcpy(t + j * run, cbase + cols[j] + r0 * w, m * w)
                for i in range(m):
                    for j in range(k):
                        store(d, i * k + j, load(t, j * tile + i))
        if stream:
            _store_fence()

    @numba.njit(parallel=True)
    def gather(n: int, rec: int, cols: np.ndarray, cbase: int, nchunks: int) -> None:
        ntiles = (n + tile - 1) // tile
        per = (ntiles + nchunks - 1) // nchunks
        for c in numba.prange(nchunks):
            scratch = np.empty(k * _RUN_BYTES, np.uint8)  # once per chunk of tiles
            gather_tiles(n, rec, cols, cbase, c * per, min(ntiles, (c + 1) * per), scratch)

    @numba.njit(parallel=True)
    def scatter(n: int, cols: np.ndarray, cbase: int, rec: int, nchunks: int) -> None:
        ntiles = (n + tile - 1) // tile
        per = (ntiles + nchunks - 1) // nchunks
        for c in numba.prange(nchunks):
            scratch = np.empty(k * _RUN_BYTES, np.uint8)  # the tile's columns
            recs = np.empty(k * _RUN_BYTES, np.uint8)     # the tile's records
            scatter_tiles(n, cols, cbase, rec, c * per, min(ntiles, (c + 1) * per),
                          scratch, recs)

    @numba.njit
    def gather_serial(n: int, rec: int, cols: np.ndarray, cbase: int) -> None:
        scratch = np.empty(k * _RUN_BYTES, np.uint8)
        gather_tiles(n, rec, cols, cbase, 0, (n + tile - 1) // tile, scratch)

    @numba.njit
    def scatter_serial(n: int, cols: np.ndarray, cbase: int, rec: int) -> None:
        scratch = np.empty(k * _RUN_BYTES, np.uint8)
        recs = np.empty(k * _RUN_BYTES, np.uint8)
        scatter_tiles(n, cols, cbase, rec, 0, (n + tile - 1) // tile, scratch, recs)

    return gather, scatter, gather_serial, scatter_serial


# ------------------------------------------------------------------ mixed records, columns -> records

_record_scatters: dict[tuple[int, tuple[tuple[int, int], ...]], Any] = {}
_SCATTER_TILE_BYTES = 8 * 1024  # one tile of records in L1, with the columns' lines beside it
_OPS = {1: ("_load1", "_store1"), 2: ("_load2", "_store2"), 4: ("_load4", "_store4"),
        8: ("_load8", "_store8")}


def record_scatter(size: int, fields: tuple[tuple[int, int], ...]) -> Any:
    """``scatter(n, sbase, src, sstride, dbase, nchunks)`` for records of ``size`` bytes
    whose ``fields`` are ``(offset in the record, width)``, in the order of ``src`` and
    ``sstride`` (column ``e`` at ``sbase + src[e] + i * sstride[e]``).

    The generic ``scatter_streamed`` walks one field at a time down a tile (a loop and a
    width branch per field, strided stores into the tile): 0.70x a 1-thread memcpy for an
    18-byte mixed record on the dev VM. Here the record is written whole, row by row, with
    one load and one store per field unrolled at their constant offsets and widths, into a
    tile in L1 that is then streamed out (padding stays zero: the tile is zeroed once):
    1.14x memcpy in the same run. Generated and compiled once per layout per process
    (about a second), so :mod:`._cpu` uses it for large copies only.
    """
    key = (size, fields)
    kernel = _record_scatters.get(key)
    if kernel is None:
        kernel = _record_scatters[key] = _make_record_scatter(size, fields)
    return kernel


def _make_record_scatter(size: int, fields: tuple[tuple[int, int], ...]) -> Any:
    tile = max(64, _SCATTER_TILE_BYTES // size // 64 * 64)
    lines = ["def tiles(n, b0, b1, sbase, src, sstride, dbase, scratch):",
             "    t = scratch.ctypes.data"]
    for e in range(len(fields)):
        lines.append(f"    c{e} = sbase + src[{e}]")
        lines.append(f"    s{e} = sstride[{e}]")
    lines += ["    for b in range(b0, b1):",
              f"        r0 = b * {tile}",
              f"        m = min({tile}, n - r0)",
              "        for i in range(m):",
              f"            o = t + i * {size}",
              "            r = r0 + i"]
    for e, (offset, width) in enumerate(fields):
        if width in _OPS:
            load, store = _OPS[width]
            lines.append(f"            {store}(o + {offset}, {load}(c{e} + r * s{e}))")
        else:
            lines.append(f"            _memcpy(o + {offset}, c{e} + r * s{e}, {width})")
    lines += [f"        _stream_copy(dbase + r0 * {size}, t, m * {size})",
              "    if _STREAMS:",
              "        _store_fence()",
              "",
              "def scatter(n, sbase, src, sstride, dbase, nchunks):",
              f"    ntiles = (n + {tile} - 1) // {tile}",
              "    per = (ntiles + nchunks - 1) // nchunks",
              "    for c in numba.prange(nchunks):",
              f"        scratch = np.zeros({tile * size}, np.uint8)",
              "        tiles(n, c * per, min(ntiles, (c + 1) * per), sbase, src, sstride, dbase,"
              " scratch)"]
    namespace: dict[str, Any] = {
        "numba": numba, "np": np, "_memcpy": _memcpy, "_stream_copy": _stream_copy,
        "_store_fence": _store_fence, "_STREAMS": _STREAMS, "_load1": _load1, "_store1": _store1,
        "_load2": _load2, "_store2": _store2, "_load4": _load4, "_store4": _store4,
        "_load8": _load8, "_store8": _store8}
    exec(compile("\n".join(lines), f"<zerocopy record scatter {size}B {fields}>", "exec"), namespace)
    namespace["tiles"] = numba.njit(namespace["tiles"])
    return numba.njit(parallel=True)(namespace["scatter"])
