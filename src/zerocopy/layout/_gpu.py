"""GPU kernels: tiled records <-> columns through shared memory, generated per layout.

Why generate code per record layout: the record size, field offsets and widths become
compile-time constants, so index arithmetic is multiplies and shifts, the per-field loops
are unrolled, and any mix of widths (1-16 bytes, sub-arrays) and any record size (18, 24,
12 bytes: not only powers of two) gets straight-line code. NVRTC compiles a layout once
per process (CuPy also keeps it on disk); the source is plain text built here, so this
module imports and is checked on machines without a GPU.

One block of 256 threads moves one tile of ``T`` records (about 8 KiB of record bytes, 16
KiB where that measured better; ``T`` a multiple of 16) per loop iteration; both sides of the
tile are plain byte streams in global memory:
the records (``T * itemsize`` bytes) and, per field, a run of its column
(``T * width`` bytes). Because ``T`` is a multiple of 16, every stream of a full tile
starts and ends on a 16-byte boundary whenever its buffer does, so global memory is read
and written with 16-byte vectors, consecutive threads on consecutive vectors (coalesced),
whatever the field widths and the record size (18, 24, 12 bytes alike). Each thread
issues all its loads of a tile (up to 8 vectors; 32 B per thread at 256 threads and
16-byte vectors) before it uses any of them.

The tile of records is staged in shared memory with 4 bytes of padding after every 128
bytes (``zc_p``): record-side vectors are moved as 4-byte words and field elements of
consecutive records land in different banks for every power-of-two record size. Field
vectors are split into pieces no wider than 4 bytes and no wider than the alignment of the
field within the record, each piece placed at its record position. The column chunks of
all fields form one index space that the block's threads share (a bisection on the index
picks the field), so a record of 32 narrow fields keeps every thread busy.
Records -> columns is ``gather``; columns -> records is ``scatter``, which zeroes the
padding of the staged records (bytes no field covers), so padding is written as zeros and
results are reproducible bit for bit. The last, partial tile is
moved byte by byte without staging. A column that does not start on a 16-byte boundary is
still read with aligned 16-byte vectors (see ``kernel_source``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerocopy.layout._layout import RecordLayout

__all__ = ["Launch", "gather", "kernel_source", "scatter"]

_THREADS = 256
_TILE_BYTES = 8 * 1024    # record bytes per tile: 32 B per thread of 256, each direction
_SMEM_MAX = 48 * 1024     # static shared memory limit without opt-in
_MAX_BATCH = 8            # vectors each thread loads before it uses the first
_MIN_BLOCKS = 0           # __launch_bounds__ minimum resident blocks per SM (0: none)
# (direction, record bytes) -> tile bytes where 8 KiB measured worse. H200, 2026-12-03, 1 GiB,
# 8 and 16 KiB tiles in each direction for every layout of the benchmark, three rounds: 16
# KiB was better only for gathering 32-byte records (8 float32: 0.89 -> 0.96 of a device
# copy) and cost 1-13% elsewhere (4xf32 and mixed packed scatter 0.99 -> 0.87).
_TILE_BYTES_FOR = {("gather", 32): 16 * 1024}
# Tile size and residency were picked on the H100 (2026-11-26, 1 GiB per case, kernel
# vs device copy, gather/scatter): 16 KiB tiles without a bound left scatter at 0.93 for
# 3 and 4 float32 fields and the packed 18-byte record; 8 KiB with 6 blocks per SM gave
# 0.96-1.00 on every case, the best of six variants tried. On the H200 (2026-12-03, the
# same kernels, 12 variants: 4/8/16 KiB x no bound/4/6/8 blocks) 8 KiB without a bound
# was as good or better in every case: 3xf32 scatter 0.91 against 0.84 with 6 blocks,
# mixed 24-byte record scatter +9%, packed 18-byte +3%; 8 blocks collapsed scatter (0.55).

_UTYPE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "uint2", 16: "uint4"}
_MEMBER = {1: "b", 2: "h", 4: "w", 8: "d"}

_PRELUDE = r"""
// One vector of up to 16 bytes, seen as pieces of 1, 2, 4 or 8 bytes.
union ZcU { uint4 v; uint2 d[2]; unsigned int w[4]; unsigned short h[8]; unsigned char b[16]; };
// Byte of the staged tile -> its place in shared memory: 4 bytes of padding per 128.
__device__ __forceinline__ int zc_p(int b) { return b + ((b >> 7) << 2); }
"""

_cache: dict[tuple[Any, ...], tuple[Any, bool]] = {}


def _pow2_divisor(value: int, cap: int) -> int:
    """Largest power of two dividing ``value``, at most ``cap`` (0 counts as cap)."""
    return cap if value == 0 else min(value & -value, cap)


def _smem_bytes(tile_bytes: int) -> int:
    padded = tile_bytes + 4 * (-(-tile_bytes // 128))
    return -(-padded // 16) * 16


def _tile(itemsize: int, direction: str) -> tuple[int, int] | None:
    """(records per tile, shared-memory bytes) or None when a record is too big to tile."""
    tile_bytes = _TILE_BYTES_FOR.get((direction, itemsize), _TILE_BYTES)
    tile = max(16, tile_bytes // itemsize // 16 * 16)
    smem = _smem_bytes(tile * itemsize)
    return (tile, smem) if smem <= _SMEM_MAX else None


@dataclass(frozen=True)
class _Col:
    index: int   # kernel argument c<index>
    offset: int  # of the field in the record
    width: int   # bytes per element
    unit: int    # global vector width (1..16)
    piece: int   # shared-memory piece width (1..4)
    start: int   # first chunk of this column in the tile's shared chunk index space
    chunks: int  # vectors of this column in a full tile
    shifted: bool = False  # scatter, column under 16-byte aligned: read from s<index> bytes before


def _plan(layout: RecordLayout, tile: int, col_aligns: list[int], shifted_reads: bool = False) -> list[_Col]:
    plan, start = [], 0
    size = layout.itemsize
    for i, (f, align) in enumerate(zip(layout.fields, col_aligns, strict=True)):
        if f.width == 0:
            continue
        shifted = shifted_reads and align < 16
        if shifted:  # whole aligned vectors from the column's shift before its run, one more per tile
            unit, chunks = 16, tile * f.width // 16 + 1
        else:
            unit = min(16, align, _pow2_divisor(tile * f.width, 16))
            chunks = tile * f.width // unit
        # A piece no wider than the column's alignment: it divides any shift of that class.
        piece = min(4, align, _pow2_divisor(f.width, 4), _pow2_divisor(f.offset, 4), _pow2_divisor(size, 4))
        plan.append(_Col(i, f.offset, f.width, unit, piece, start, chunks, shifted))
        start += chunks
    return plan


def _m(width: int, q: int) -> str:
    """Member of ZcU for piece ``q`` of ``width`` bytes (the whole vector at 16)."""
    return "v" if width == 16 else f"{_MEMBER[width]}[{q}]"


def _tree(plan: list[_Col], idx: str, body: Callable[[_Col, str], str]) -> str:
    """Code that runs ``body(col, local)`` for the column owning chunk ``idx`` (bisection)."""
    if len(plan) == 1:
        c = plan[0]
        return body(c, f"({idx} - {c.start})" if c.start else idx)
    mid = len(plan) // 2
    return (f"if ({idx} < {plan[mid].start}) {{ {_tree(plan[:mid], idx, body)} }} "
            f"else {{ {_tree(plan[mid:], idx, body)} }}")


def _sm_piece(c: _Col, size: int, loc: str, q: int) -> str:
    """Shared-memory address of piece ``q`` of column chunk ``loc``."""
    return _sm_at(c, size, f"(unsigned({loc}) * {c.unit}u + {q * c.piece}u)")


def _sm_at(c: _Col, size: int, cb: str) -> str:
    """Shared-memory address of byte ``cb`` (an unsigned expression) of the column's run:
    unsigned, so that / and % are shifts where the sizes are powers of two."""
    where = f"int({cb} / {c.width}u * {size}u + {c.offset}u + {cb} % {c.width}u)"
    return f"reinterpret_cast<{_UTYPE[c.piece]}*>(sm + zc_p({where}))"


def _shifted_load(c: _Col, tile: int, loc: str) -> str:
    """Load aligned vector ``loc`` of a shifted column's run (the run starts ``s<index>``
    bytes into vector 0); a vector with no byte of the run (the extra one, when the shift
    is 0) is not read at all."""
    return (f"if (int({loc}) * 16 - s{c.index} < {tile * c.width}) "
            f"u[j].v = reinterpret_cast<const uint4*>(c{c.index} - s{c.index} + r0 * {c.width})[{loc}];")


def _shifted_stage(c: _Col, size: int, tile: int, loc: str) -> str:
    """Stage the pieces of a shifted column's vector: the pieces that fall before or after
    this tile's run belong to the neighbouring tiles (which read them too) and are skipped."""
    span = tile * c.width
    return " ".join(
        f"{{ const int b = int({loc}) * 16 + {q * c.piece} - s{c.index}; "
        f"if (b >= 0 && b < {span}) *{_sm_at(c, size, 'unsigned(b)')} = u[j].{_m(c.piece, q)}; }}"
        for q in range(16 // c.piece))


def _batched(count: int, name: str, load: str, use: str) -> str:
    """Loop over ``count`` items, each thread loading a batch before using any of it."""
    batch = max(1, min(_MAX_BATCH, -(-count // _THREADS)))
    return f"""for (int i0 = threadIdx.x; i0 < {count}; i0 += {batch} * blockDim.x) {{
        ZcU {name}[{batch}];
        #pragma unroll
        for (int j = 0; j < {batch}; ++j) {{
          const int i = i0 + j * blockDim.x;
          if (i < {count}) {{ {load} }}
        }}
        #pragma unroll
        for (int j = 0; j < {batch}; ++j) {{
          const int i = i0 + j * blockDim.x;
          if (i < {count}) {{ {use} }}
        }}
      }}"""


def kernel_source(layout: RecordLayout, direction: str, rec_align: int,
                  col_aligns: list[int]) -> tuple[str, str] | None:
    """CUDA source and kernel name for one layout and direction ('gather' or 'scatter').

    Scatter kernels take each column's address modulo 16 as ``int s<i>`` after the columns.
    A column that does not start on a 16-byte boundary would be read in units of its
    alignment (4-byte loads for a column 4 bytes past one: 0.91 of a device copy for 3
    float32 columns on the H200, where a uniform block of n not divisible by 4 puts its
    columns); it is read with aligned 16-byte vectors instead, from up to 15 bytes before
    its run to up to 15 after. Those bytes lie in a 16-byte granule with bytes of the
    column (so never across a page: no fault) and are never used: the pieces outside the
    tile's run are skipped. The shift is an argument, not a constant: one kernel per
    alignment class, whatever the addresses."""
    tiled = _tile(layout.itemsize, direction)
    if tiled is None:
        return None
    tile, smem = tiled
    size = layout.itemsize
    ru = min(16, rec_align, _pow2_divisor(tile * size, 16))  # record-side vector
    rp = min(4, ru)                                           # its shared-memory pieces
    nrec = tile * size // ru
    gather = direction == "gather"
    plan = _plan(layout, tile, col_aligns, shifted_reads=not gather)
    nchunks = sum(c.chunks for c in plan)
    name = f"zc_{direction}"
    cols = ", ".join(f"{'' if gather else 'const '}unsigned char* __restrict__ c{i}"
                     for i in range(len(layout.fields))) + ("" if gather else _shift_params(layout))
    rec = ("const unsigned char* __restrict__ rec" if gather
           else "unsigned char* __restrict__ rec")
    rt = _UTYPE[ru]
    rec_ptr = f"reinterpret_cast<{'const ' if gather else ''}{rt}*>(rec + r0 * {size})"
    rec_pieces = range(ru // rp)

    def rec_sm(q: int) -> str:
        return f"reinterpret_cast<{_UTYPE[rp]}*>(sm + zc_p(i * {ru} + {q * rp}))"

    def col_ptr(c: _Col) -> str:
        return (f"reinterpret_cast<{'' if gather else 'const '}{_UTYPE[c.unit]}*>"
                f"(c{c.index} + r0 * {c.width})")

    if gather:
        records = _batched(
            nrec, "u", f"u[j].{_m(ru, 0)} = {rec_ptr}[i];",
            " ".join(f"*{rec_sm(q)} = u[j].{_m(rp, q)};" for q in rec_pieces))

        def col_out(c: _Col, loc: str) -> str:
            pieces = " ".join(f"u.{_m(c.piece, q)} = *{_sm_piece(c, size, loc, q)};"
                              for q in range(c.unit // c.piece))
            return f"{pieces} {col_ptr(c)}[{loc}] = u.{_m(c.unit, 0)};"

        columns = (f"for (int i = threadIdx.x; i < {nchunks}; i += blockDim.x) {{\n"
                   f"        ZcU u; {_tree(plan, 'i', col_out)}\n      }}") if plan else ""
        phase1, phase2 = records, columns
    else:
        def col_in(c: _Col, loc: str) -> str:
            if c.shifted:
                return _shifted_load(c, tile, loc)
            return f"u[j].{_m(c.unit, 0)} = {col_ptr(c)}[{loc}];"

        def col_stage(c: _Col, loc: str) -> str:
            if c.shifted:
                return _shifted_stage(c, size, tile, loc)
            return " ".join(f"*{_sm_piece(c, size, loc, q)} = u[j].{_m(c.piece, q)};"
                            for q in range(c.unit // c.piece))

        columns = (_batched(nchunks, "u", _tree(plan, "i", col_in), _tree(plan, "i", col_stage))
                   if plan else "")
        records = _batched(
            nrec, "u", " ".join(f"u[j].{_m(rp, q)} = *{rec_sm(q)};" for q in rec_pieces),
            f"{rec_ptr}[i] = u[j].{_m(ru, 0)};")
        phase1, phase2 = columns, records
    zero, gap_zero = _padding_code(layout, tile, smem) if not gather else ("", "")
    phase1 = gap_zero + phase1
    bounds = f"{_THREADS}, {_MIN_BLOCKS}" if _MIN_BLOCKS else f"{_THREADS}"
    source = f"""{_PRELUDE}
extern "C" __global__ void __launch_bounds__({bounds})
{name}({rec}, long long n, {cols}) {{
  __shared__ __align__(16) unsigned char sm[{smem}];
  {zero}
  for (long long t = blockIdx.x; t * {tile} < n; t += gridDim.x) {{
    const long long r0 = t * {tile};
    if (n - r0 >= {tile}) {{
      {phase1}
      __syncthreads();
      {phase2}
      __syncthreads();
    }} else {{
      const int rem = (int)(n - r0);
      {_tail_code(layout, gather)}
    }}
  }}
}}
"""
    return source, name


def _gap_pieces(layout: RecordLayout) -> list[tuple[int, int]]:
    """(offset, width) pieces that cover the record's padding, each 1, 2 or 4 bytes and
    aligned to its width in every staged record (so never across ``zc_p``'s padding)."""
    cap = _pow2_divisor(layout.itemsize, 4)
    pieces = []
    for start, end in layout.gaps():
        at = start
        while at < end:
            width = next(w for w in (4, 2, 1) if w <= cap and at % w == 0 and at + w <= end)
            pieces.append((at, width))
            at += width
    return pieces


def _padding_code(layout: RecordLayout, tile: int, smem: int) -> tuple[str, str]:
    """(once per block, once per tile) code that zeroes the staged records' padding.

    Per tile, only the padding bytes, before the column loads, so the tile's first barrier
    orders them. One block moves one tile, so "once per block" was once per tile anyway:
    zeroing the whole staging area behind a barrier of its own held the 24-byte record
    with 6 bytes of padding at 0.943 of a device copy; the padding alone, with no barrier
    of its own, 0.958, against 0.961 with no zeroing at all (H200, 2026-12-03, 1 GiB,
    best of 4 alternating rounds). Where the padding takes more stores than the whole
    area (wide gaps in records of odd size), the whole area is zeroed once per block."""
    pieces = _gap_pieces(layout)
    if not pieces:
        return "", ""
    if len(pieces) * tile > smem // 4:
        return (f"for (int i = threadIdx.x; i < {smem // 4}; i += blockDim.x)\n"
                f"    reinterpret_cast<unsigned int*>(sm)[i] = 0;\n  __syncthreads();"), ""
    stores = " ".join(f"*reinterpret_cast<{_UTYPE[w]}*>(sm + zc_p(r * {layout.itemsize} + {at})) = 0;"
                      for at, w in pieces)
    return "", f"for (int r = threadIdx.x; r < {tile}; r += blockDim.x) {{ {stores} }}\n      "


def _tail_code(layout: RecordLayout, gather: bool) -> str:
    """The last, partial tile: byte by byte, straight between global buffers."""
    size = layout.itemsize
    lines = []
    for i, f in enumerate(layout.fields):
        if f.width == 0:
            continue
        w = f.width
        at = f"rec[(r0 + x / {w}) * {size} + {f.offset} + x % {w}]"
        move = f"c{i}[r0 * {w} + x] = {at};" if gather else f"{at} = c{i}[r0 * {w} + x];"
        lines.append(f"for (int x = threadIdx.x; x < rem * {w}; x += blockDim.x) {move}")
    if not gather:
        for a, b in layout.gaps():
            w = b - a
            lines.append(f"for (int x = threadIdx.x; x < rem * {w}; x += blockDim.x) "
                         f"rec[(r0 + x / {w}) * {size} + {a} + x % {w}] = 0;")
    return "\n      ".join(lines)


def _direct_source(layout: RecordLayout, direction: str) -> tuple[str, str]:
    """Records too large to tile: one thread per (record, byte), simple and correct."""
    size = layout.itemsize
    name = f"zc_{direction}_direct"
    cols = ", ".join(
        f"{'' if direction == 'gather' else 'const '}unsigned char* __restrict__ c{i}"
        for i in range(len(layout.fields))) + ("" if direction == "gather" else _shift_params(layout))
    rec = "const unsigned char* rec" if direction == "gather" else "unsigned char* rec"
    body = []
    for i, f in enumerate(layout.fields):
        move = (f"c{i}[i] = rec[(i / {f.width}) * {size} + {f.offset} + i % {f.width}];"
                if direction == "gather" else
                f"rec[(i / {f.width}) * {size} + {f.offset} + i % {f.width}] = c{i}[i];")
        body.append(f"for (long long i = g; i < n * {f.width}; i += step) {move}")
    if direction == "scatter":
        for a, b in layout.gaps():
            body.append(f"for (long long i = g; i < n * {b - a}; i += step) "
                        f"rec[(i / {b - a}) * {size} + {a} + i % {b - a}] = 0;")
    lines = "\n  ".join(body)
    return (f"""extern "C" __global__ void {name}({rec}, long long n, {cols}) {{
  const long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long step = (long long)gridDim.x * blockDim.x;
  {lines}
}}
""", name)


def _shift_params(layout: RecordLayout) -> str:
    """A scatter kernel's trailing arguments: each column's address modulo 16."""
    return "".join(f", int s{i}" for i in range(len(layout.fields)))


def _kernel(layout: RecordLayout, direction: str, rec_align: int,
            col_aligns: list[int]) -> tuple[Any, bool]:
    key = (layout, direction, rec_align, tuple(col_aligns))  # a layout hashes once
    if key not in _cache:
        import cupy

        built = kernel_source(layout, direction, rec_align, col_aligns)
        tiled = built is not None
        source, name = built if built is not None else _direct_source(layout, direction)
        _cache[key] = (cupy.RawKernel(source, name, options=("--std=c++17",)), tiled)
    return _cache[key]


def _align(ptr: int) -> int:
    return _pow2_divisor(ptr, 16)


class Launch:
    """Launches for one layout and one fixed set of columns (a block's, cached with it).

    Everything but the record buffer is known in advance: the columns, their alignment,
    the tile; the kernel is looked up per record alignment. A call costs one pointer
    read, one dictionary lookup and the launch itself.
    """

    def __init__(self, layout: RecordLayout, direction: str, columns: list[Any]) -> None:
        self.layout, self.direction = layout, direction
        self.columns = tuple(columns)
        self.col_aligns = [_align(c.data.ptr) for c in columns]
        # Scatter kernels also take where each column starts within its 16-byte granule.
        self.shifts = tuple(np.int32(c.data.ptr % 16) for c in columns) if direction == "scatter" else ()
        self.kernels: dict[int, tuple[Any, int]] = {}

    def __call__(self, records: Any, n: int) -> None:
        if n == 0 or not self.layout.fields:
            if self.direction == "scatter" and n:
                records.fill(0)
            return
        align = _align(records.data.ptr)
        entry = self.kernels.get(align)
        if entry is None:
            kernel, tiled = _kernel(self.layout, self.direction, align, self.col_aligns)
            tiles = _tile(self.layout.itemsize, self.direction) if tiled else None
            entry = self.kernels[align] = (kernel, tiles[0] if tiles is not None else 0)
        kernel, tile = entry
        grid = min(-(-n // tile), 2**31 - 1) if tile else min(-(-n // _THREADS), 65535)
        kernel((grid,), (_THREADS,), (records, _int64(n), *self.columns, *self.shifts))


def _int64(n: int) -> np.int64:
    return np.int64(n)


def _launch(layout: RecordLayout, direction: str, records: Any, n: int, columns: list[Any]) -> None:
    Launch(layout, direction, columns)(records, n)


def gather(records: Any, n: int, layout: RecordLayout, columns: list[Any]) -> None:
    """Records (contiguous CuPy uint8, ``n * layout.itemsize`` bytes) -> columns (CuPy)."""
    _launch(layout, "gather", records, n, columns)


def scatter(columns: list[Any], n: int, layout: RecordLayout, records: Any) -> None:
    """Columns (contiguous CuPy arrays) -> records (contiguous CuPy uint8 buffer)."""
    _launch(layout, "scatter", records, n, columns)
