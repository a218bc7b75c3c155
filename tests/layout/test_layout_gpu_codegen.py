"""The generated CUDA kernels, checked on a machine without a GPU.

The kernel text is compiled with the host C++ compiler behind a tiny header that maps
CUDA keywords to C++ and runs one block of one thread. Every loop in the kernels is a
``threadIdx.x .. step blockDim.x`` loop between barriers, so a single thread walking
them in order computes exactly what the block computes; this checks the index
arithmetic, shared-memory padding, vector units, full and partial tiles (n up to 20011
spans several full tiles of every layout here) and padding zeroing bit for bit.
The real GPU runs are in ``test_layout_gpu.py`` (marked ``gpu``).
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest
from layout_support import field_bytes, random_records, reference_records

from zerocopy.layout import _gpu, record_layout

_HOST_CUDA = r"""
#include <algorithm>
#include <cstring>
struct ZcDim { unsigned x; };
static ZcDim threadIdx{0}, blockIdx{0}, blockDim{1}, gridDim{1};
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
using std::min;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __syncthreads()
"""

LAYOUTS = [
    [(f"f{i}", "f4") for i in range(4)],
    [(f"f{i}", "f4") for i in range(3)],
    [(f"f{i}", "f4") for i in range(2)],
    [("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")],
    np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")], align=True),
    [("z", "c16"), ("v", "f4", (3,)), ("h", "u2"), ("b", "?")],
    [(f"f{i}", "f4") for i in range(32)],
    [(f"f{i}", "f4") for i in range(8)],  # 32-byte records: gathered in 16 KiB tiles
    [("a", "u1"), ("b", "i2", (3,)), ("c", "f2")],
    np.dtype({"names": ["y", "x"], "formats": ["i4", "f8"], "offsets": [12, 1],
              "itemsize": 19}),
]
# (record alignment, column alignment) the launcher can see at run time
ALIGNS = [(16, 16), (1, 16), (4, 2), (2, 1)]


def _poisoned(body: str) -> str:
    """Shared memory holds garbage when a block starts: poison it, so that a staged byte
    the kernel never writes (padding it forgot to zero) shows in the result."""
    out, found = re.subn(r"(__shared__ __align__\(16\) unsigned char sm\[\d+\];)",
                         r"\1 memset(sm, 0xCD, sizeof sm);", body)
    assert found == body.count("__shared__"), "a shared array the poisoning does not know"
    return out


def _host_library(tmp_path_factory, bodies: list[str]) -> ctypes.CDLL:
    """The kernels' text (prelude removed, names made unique) compiled for the host."""
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no host C++ compiler to check the generated CUDA code")
    tmp = tmp_path_factory.mktemp("zc_host")
    bodies = [_poisoned(b) for b in bodies]
    (tmp / "k.cpp").write_text("\n".join([_HOST_CUDA, _gpu._PRELUDE, *bodies]))
    subprocess.run([cxx, "-std=c++17", "-O1", "-fno-strict-aliasing", "-shared", "-fPIC",
                    "-o", str(tmp / "k.so"), str(tmp / "k.cpp")], check=True)
    return ctypes.CDLL(str(tmp / "k.so"))


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """Compile every (layout, direction, alignment) kernel into one host library."""
    parts, names = [], {}
    for i, desc in enumerate(LAYOUTS):
        layout = record_layout(desc)
        for ra, ca in ALIGNS:
            for direction in ("gather", "scatter"):
                src, name = _gpu.kernel_source(layout, direction, ra, [ca] * len(layout.fields))
                unique = f"{name}_{i}_{ra}_{ca}"
                body = src.replace(_gpu._PRELUDE, "").replace(name + "(", unique + "(")
                parts.append(body + "#undef ZC_T\n#undef ZC_PS\n")
                names[(i, ra, ca, direction)] = unique
    return _host_library(tmp_path_factory, parts), names


def _call(lib, name: str, records: np.ndarray, n: int, columns: list) -> None:
    fn = getattr(lib, name)
    args = [ctypes.c_void_p(records.ctypes.data), ctypes.c_longlong(n)]
    args += [ctypes.c_void_p(c.ctypes.data) for c in columns]
    if "scatter" in name:  # scatter kernels take each column's address modulo 16, as Launch passes
        args += [ctypes.c_int(c.ctypes.data % 16) for c in columns]
    fn(*args)


@pytest.mark.parametrize("index", range(len(LAYOUTS)))
@pytest.mark.parametrize(("ra", "ca"), ALIGNS)
@pytest.mark.parametrize("n", [0, 1, 255, 257, 1000, 5000, 20011])
def test_generated_kernels_round_trip(kernels, index, ra, ca, n):
    lib, names = kernels
    dtype = np.dtype(LAYOUTS[index])
    layout = record_layout(dtype)
    aos = random_records(dtype, n, seed=n + index)
    cols = [np.zeros((n, *f.shape), f.dtype) for f in layout.fields]
    _call(lib, names[(index, ra, ca, "gather")], aos, n, cols)
    for f, col in zip(layout.fields, cols, strict=True):
        assert col.tobytes() == field_bytes(aos, f.name), f.name
    back = np.full(n * dtype.itemsize, 0xAB, np.uint8)  # garbage where padding goes
    _call(lib, names[(index, ra, ca, "scatter")], back, n, cols)
    assert back.tobytes() == reference_records(aos, dtype)


def test_oversized_records_use_direct_kernel():
    layout = record_layout([("big", "f8", (4000,))])
    assert _gpu.kernel_source(layout, "gather", 16, [16]) is None
    src, name = _gpu._direct_source(layout, "scatter")
    assert name in src and "long long" in src


SHIFTS = [4, 8, 12, 2, 6, 1]  # a column's address modulo 16


@pytest.fixture(scope="module")
def shifted_kernels(tmp_path_factory):
    """Scatter kernels for columns that start past a 16-byte boundary (read as aligned
    vectors from before the run, the outside pieces skipped; the shift is an argument)."""
    parts, names = [], {}
    for i, desc in enumerate(LAYOUTS):
        layout = record_layout(desc)
        for shift in SHIFTS:
            shifts = [shift if k % 2 == 0 else 0 for k in range(len(layout.fields))]  # mixed too
            aligns = [_gpu._pow2_divisor(sh, 16) for sh in shifts]
            src, name = _gpu.kernel_source(layout, "scatter", 16, aligns)
            assert "if (b >= 0" in src, "no column took the shifted read"
            unique = f"{name}_shifted_{i}_{shift}"
            parts.append(src.replace(_gpu._PRELUDE, "").replace(name + "(", unique + "("))
            names[(i, shift)] = (unique, shifts)
    return _host_library(tmp_path_factory, parts), names


def _column_at(nbytes: int, shift: int, dtype: np.dtype, shape: tuple[int, ...], n: int) -> np.ndarray:
    """A column whose data starts ``shift`` bytes past a 16-byte boundary, with 16 bytes of
    other data on both sides (the aligned reads touch them and must not use them)."""
    raw = np.full(nbytes + 64, 0x5A, np.uint8)
    start = (-raw.ctypes.data % 16) + 16 + shift
    return raw[start:start + nbytes].view(dtype).reshape((n, *shape))


@pytest.mark.parametrize("index", range(len(LAYOUTS)))
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("n", [0, 1, 255, 257, 1000, 5000, 20011, "2 tiles"])
def test_scatter_reads_misaligned_columns_as_aligned_vectors(shifted_kernels, index, shift, n):
    lib, names = shifted_kernels
    dtype = np.dtype(LAYOUTS[index])
    layout = record_layout(dtype)
    if n == "2 tiles":  # the run ends where the column ends: the last vector reads past no granule
        n = 2 * _gpu._tile(dtype.itemsize, "scatter")[0]
    aos = random_records(dtype, n, seed=n + index + shift)
    name, shifts = names[(index, shift)]
    cols = []
    for f, sh in zip(layout.fields, shifts, strict=True):
        col = _column_at(n * f.width, sh, f.dtype, f.shape, n)
        assert n == 0 or col.ctypes.data % 16 == sh
        col.reshape(-1).view(np.uint8)[:] = np.frombuffer(field_bytes(aos, f.name), np.uint8)
        cols.append(col)
    back = np.full(n * dtype.itemsize, 0xAB, np.uint8)
    _call(lib, name, back, n, cols)
    assert back.tobytes() == reference_records(aos, dtype)
