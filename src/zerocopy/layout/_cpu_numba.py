"""The Numba side of :mod:`._cpu`; imported only when a kernel first runs.

Loads and stores go through tiny intrinsics that turn an integer address into an
unaligned (``align 1``) LLVM load or store: packed records put 8-byte fields at any byte,
and x86/ARM read those at full speed. Everything is defined at module level so that
``cache=True`` can keep the machine code between runs.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["copy_fields_parallel"]


def _memory_ops(bits: int):
    utype = getattr(types, f"uint{bits}")

    @intrinsic
    def load(typingctx, addr):
        def codegen(context, builder, sig, args):
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            return builder.load(ptr, align=1)
        return utype(types.int64), codegen

    @intrinsic
    def store(typingctx, addr, value):
        def codegen(context, builder, sig, args):
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            builder.store(args[1], ptr, align=1)
            return context.get_dummy_value()
        return types.void(types.int64, utype), codegen

    return load, store


_load1, _store1 = _memory_ops(8)
_load2, _store2 = _memory_ops(16)
_load4, _store4 = _memory_ops(32)
_load8, _store8 = _memory_ops(64)


@numba.njit(parallel=True, cache=True)
def copy_fields_parallel(n, src, sstride, dst, dstride, width, block):  # noqa: PLR0912 (one Numba kernel)
    """Blocks of rows across threads; every field of a block while it is in cache."""
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        r0 = b * block
        r1 = min(n, r0 + block)
        for e in range(width.shape[0]):
            w = width[e]
            s = src[e]
            ss = sstride[e]
            d = dst[e]
            ds = dstride[e]
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
