"""GPU kernels: tiled records <-> columns through shared memory, generated per layout.

Why generate code per record layout: the record size, field offsets and widths become
compile-time constants, so index arithmetic is multiplies and shifts, the per-field loops
are unrolled, and any mix of widths (1-16 bytes, sub-arrays) and any record size (18, 24,
12 bytes: not only powers of two) gets straight-line code. NVRTC compiles a layout once
per process (CuPy also keeps it on disk); the source is plain text built here, so this
module imports and is checked on machines without a GPU.

Records -> columns (``gather``), one tile of ``T`` records per block iteration:
  1. the tile's bytes are read from global memory with the widest aligned unit (16, 8, 4,
     2 or 1 bytes; coalesced, several loads in flight per thread) and staged in shared
     memory with a record pitch ``PS`` of an odd number of 4-byte words, so that 32
     threads reading the same field of 32 consecutive records hit 32 different banks;
  2. each field is written out as a contiguous run of its column, consecutive threads
     writing consecutive units (coalesced whatever the field width).
Columns -> records (``scatter``) is the mirror image; bytes of the record that no field
covers (padding) are written as zeros, so results are reproducible bit for bit.
"""

from __future__ import annotations

from ._layout import RecordLayout

__all__ = ["gather", "kernel_source", "scatter"]

_THREADS = 256
_SMEM_TARGET = 32 * 1024  # bytes of staging per block: leaves room for several blocks/SM
_SMEM_MAX = 48 * 1024     # static shared memory limit without opt-in
_BATCH = 4                # loads each thread issues before it waits for any of them

_UTYPE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "uint2", 16: "uint4"}
_WTYPE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int",
          8: "unsigned long long"}

_PRELUDE = r"""
template <typename W, typename G>
__device__ __forceinline__ W rd(const unsigned char* s) {
  if constexpr (sizeof(G) >= sizeof(W)) { return *reinterpret_cast<const W*>(s); }
  else {
    W v; G* pv = reinterpret_cast<G*>(&v);
    #pragma unroll
    for (int j = 0; j < int(sizeof(W) / sizeof(G)); ++j) pv[j] = reinterpret_cast<const G*>(s)[j];
    return v;
  }
}
template <typename W, typename G>
__device__ __forceinline__ void wr(unsigned char* s, W v) {
  if constexpr (sizeof(G) >= sizeof(W)) { *reinterpret_cast<W*>(s) = v; }
  else {
    const G* pv = reinterpret_cast<const G*>(&v);
    #pragma unroll
    for (int j = 0; j < int(sizeof(W) / sizeof(G)); ++j) reinterpret_cast<G*>(s)[j] = pv[j];
  }
}
// A record unit of U bytes to/from shared memory, whose position is only 4-byte aligned.
template <typename U> __device__ __forceinline__ void stage(unsigned char* s, U v) {
  if constexpr (sizeof(U) <= 4) { *reinterpret_cast<U*>(s) = v; }
  else { wr<U, unsigned int>(s, v); }
}
template <typename U> __device__ __forceinline__ U unstage(const unsigned char* s) {
  if constexpr (sizeof(U) <= 4) { return *reinterpret_cast<const U*>(s); }
  else { return rd<U, unsigned int>(s); }
}
"""

_cache: dict[tuple, object] = {}


def _pow2_divisor(value: int, cap: int) -> int:
    """Largest power of two dividing ``value``, at most ``cap`` (0 counts as cap)."""
    return cap if value == 0 else min(value & -value, cap)


def _tile(itemsize: int) -> tuple[int, int] | None:
    """(records per tile, shared-memory pitch) or None when a record is too big to tile."""
    pitch = -(-itemsize // 4) * 4
    if (pitch // 4) % 2 == 0:
        pitch += 4
    tile = _THREADS
    while tile * pitch > _SMEM_TARGET and tile > 32:
        tile //= 2
    return (tile, pitch) if tile * pitch <= _SMEM_MAX else None


def _field_units(layout: RecordLayout, col_aligns: list[int]) -> list[tuple[int, int, int]]:
    """Per field: (offset, width, write unit). The unit is the widest aligned piece <= 8."""
    return [(f.offset, f.width, min(_pow2_divisor(f.width, 8), a))
            for f, a in zip(layout.fields, col_aligns, strict=True)]


def _gap_code(layout: RecordLayout) -> str:
    lines = []
    for a, b in layout.gaps():
        lines.append(f"for (int j = {a}; j < {b}; ++j) sm[r * ZC_PS + j] = 0;")
    if not lines:
        return ""
    body = "\n      ".join(lines)
    return f"for (int r = threadIdx.x; r < rem; r += blockDim.x) {{\n      {body}\n    }}"


def kernel_source(layout: RecordLayout, direction: str, rec_align: int,
                  col_aligns: list[int]) -> tuple[str, str] | None:
    """CUDA source and kernel name for one layout and direction ('gather' or 'scatter')."""
    tiled = _tile(layout.itemsize)
    if tiled is None:
        return None
    tile, pitch = tiled
    size = layout.itemsize
    unit = min(_pow2_divisor(size, 16), rec_align)
    fields = _field_units(layout, col_aligns)
    name = f"zc_{direction}"
    cols = ", ".join(
        f"{'' if direction == 'gather' else 'const '}unsigned char* __restrict__ c{i}"
        for i in range(len(fields)))
    rec = ("const unsigned char* __restrict__ rec" if direction == "gather"
           else "unsigned char* __restrict__ rec")
    field_code = []
    for i, (off, width, wu) in enumerate(fields):
        gran = min(4, _pow2_divisor(off, 4), wu)
        wt, gt = _WTYPE[wu], _WTYPE[gran]
        if direction == "gather":
            move = f"d[i] = rd<{wt}, {gt}>(sm + r * ZC_PS + {off} + p * {wu});"
            ptr = f"{wt}* d = reinterpret_cast<{wt}*>(c{i} + r0 * {width});"
        else:
            move = f"wr<{wt}, {gt}>(sm + r * ZC_PS + {off} + p * {wu}, d[i]);"
            ptr = f"const {wt}* d = reinterpret_cast<const {wt}*>(c{i} + r0 * {width});"
        field_code.append(
            f"{{ {ptr}\n      const int nu = rem * {width // wu};\n"
            f"      for (int i = threadIdx.x; i < nu; i += blockDim.x) {{\n"
            f"        const int r = i / {width // wu}, p = i - r * {width // wu};\n"
            f"        {move}\n      }} }}")
    fields_block = "\n    ".join(field_code)
    ut = _UTYPE[unit]
    if direction == "gather":
        phase1 = _records_in(ut, unit, size)
        phase2 = fields_block
    else:
        phase1 = fields_block + "\n    " + _gap_code(layout)
        phase2 = _records_out(ut, unit, size)
    source = f"""{_PRELUDE}
#define ZC_T {tile}
#define ZC_PS {pitch}
extern "C" __global__ void __launch_bounds__({_THREADS})
{name}({rec}, long long n, {cols}) {{
  __shared__ __align__(16) unsigned char sm[ZC_T * ZC_PS];
  for (long long t = blockIdx.x; t * ZC_T < n; t += gridDim.x) {{
    const long long r0 = t * ZC_T;
    const int rem = (int)min((long long)ZC_T, n - r0);
    {phase1}
    __syncthreads();
    {phase2}
    __syncthreads();
  }}
}}
"""
    return source, name


def _records_in(ut: str, unit: int, size: int) -> str:
    """Tile of records: global -> shared, a batch of loads in flight per thread."""
    spu = size // unit
    return f"""{{ const {ut}* s = reinterpret_cast<const {ut}*>(rec + r0 * {size});
      const int nu = rem * {spu};
      for (int i0 = threadIdx.x; i0 < nu; i0 += {_BATCH} * blockDim.x) {{
        {ut} v[{_BATCH}];
        #pragma unroll
        for (int j = 0; j < {_BATCH}; ++j) {{
          const int i = i0 + j * blockDim.x;
          if (i < nu) v[j] = s[i];
        }}
        #pragma unroll
        for (int j = 0; j < {_BATCH}; ++j) {{
          const int i = i0 + j * blockDim.x;
          if (i < nu) {{
            const int r = i / {spu}, c = i - r * {spu};
            stage<{ut}>(sm + r * ZC_PS + c * {unit}, v[j]);
          }}
        }}
      }} }}"""


def _records_out(ut: str, unit: int, size: int) -> str:
    """Tile of records: shared -> global, coalesced units."""
    spu = size // unit
    return f"""{{ {ut}* d = reinterpret_cast<{ut}*>(rec + r0 * {size});
      const int nu = rem * {spu};
      for (int i = threadIdx.x; i < nu; i += blockDim.x) {{
        const int r = i / {spu}, c = i - r * {spu};
        d[i] = unstage<{ut}>(sm + r * ZC_PS + c * {unit});
      }} }}"""


def _direct_source(layout: RecordLayout, direction: str) -> tuple[str, str]:
    """Records too large to tile: one thread per (record, byte), simple and correct."""
    size = layout.itemsize
    name = f"zc_{direction}_direct"
    cols = ", ".join(
        f"{'' if direction == 'gather' else 'const '}unsigned char* __restrict__ c{i}"
        for i in range(len(layout.fields)))
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


def _kernel(layout: RecordLayout, direction: str, rec_align: int, col_aligns: list[int]):
    key = (tuple((f.offset, f.width) for f in layout.fields), layout.itemsize, direction,
           rec_align, tuple(col_aligns))
    if key not in _cache:
        import cupy

        built = kernel_source(layout, direction, rec_align, col_aligns)
        tiled = built is not None
        source, name = built if tiled else _direct_source(layout, direction)
        _cache[key] = (cupy.RawKernel(source, name, options=("--std=c++17",)), tiled)
    return _cache[key]


def _align(ptr: int) -> int:
    return _pow2_divisor(ptr, 16)


def _launch(layout: RecordLayout, direction: str, records, n: int, columns: list) -> None:
    import cupy

    if n == 0 or not layout.fields:
        if direction == "scatter" and n:
            records.fill(0)
        return
    col_aligns = [_align(c.data.ptr) for c in columns]
    kernel, tiled = _kernel(layout, direction, _align(records.data.ptr), col_aligns)
    if tiled:
        tile = _tile(layout.itemsize)[0]
        grid = min(-(-n // tile), 2**31 - 1)
    else:
        grid = min(-(-n // _THREADS), 65535)
    kernel((grid,), (_THREADS,), (records, cupy.int64(n), *columns))


def gather(records, n: int, layout: RecordLayout, columns: list) -> None:
    """Records (contiguous CuPy uint8, ``n * layout.itemsize`` bytes) -> columns (CuPy)."""
    _launch(layout, "gather", records, n, columns)


def scatter(columns: list, n: int, layout: RecordLayout, records) -> None:
    """Columns (contiguous CuPy arrays) -> records (contiguous CuPy uint8 buffer)."""
    _launch(layout, "scatter", records, n, columns)
