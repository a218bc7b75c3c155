"""One vocabulary for dtypes: canonical names, NumPy dtypes and DLPack type codes.

Every framework module maps its own dtype objects to these names, so "no silent dtype
change" is checked by comparing two strings.
"""

from __future__ import annotations

import sys
from functools import cache

import numpy as np

from zerocopy.errors import UnsupportedDtypeError, message

__all__ = ["DLPACK_CODES", "SHARED_DTYPES", "from_dlpack_code", "name_of_numpy", "numpy_dtype"]

# The dtypes the frameworks share, in the order tables and tests show them.
SHARED_DTYPES: tuple[str, ...] = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
)

# DLPack DLDataTypeCode: 0 int, 1 uint, 2 float, 4 bfloat, 5 complex, 6 bool.
DLPACK_CODES: dict[str, tuple[int, int]] = {
    "bool": (6, 8),
    **{f"int{b}": (0, b) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (1, b) for b in (8, 16, 32, 64)},
    **{f"float{b}": (2, b) for b in (16, 32, 64)},
    "bfloat16": (4, 16),
    "complex64": (5, 64),
    "complex128": (5, 128),
}
_FROM_DLPACK = {code: name for name, code in DLPACK_CODES.items()}


def from_dlpack_code(code: int, bits: int) -> str | None:
    return _FROM_DLPACK.get((code, bits))


def _bfloat16_numpy() -> np.dtype | None:
    try:  # ml_dtypes is optional
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


@cache
def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a canonical name (bfloat16 needs ml_dtypes)."""
    if name == "bfloat16":
        dtype = _bfloat16_numpy()
        if dtype is None:
            raise UnsupportedDtypeError(message(
                "NumPy has no bfloat16 of its own",
                hint="pip install ml-dtypes (or zerocopy-ml[bfloat16])"))
        return dtype
    return np.dtype(name)


@cache
def name_of_numpy(dtype: np.dtype) -> str | None:
    """Canonical name of a NumPy dtype, or None if it is none of the shared ones.

    Byte order matters: a big-endian float32 is *not* float32 to any importer.
    """
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        return None
    if dtype.kind == "V" and dtype.names is None and dtype.itemsize == 2 and dtype.name == "bfloat16":
        return "bfloat16"
    name = dtype.name
    return name if name in DLPACK_CODES and dtype.kind != "V" else None
