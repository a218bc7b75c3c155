"""Shared pieces of the layout tests: record-layout strategies and the NumPy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

# Every fixed-width kind a record field may have.
FIELD_TYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
               "f2", "f4", "f8", "c8", "c16", "M8[ns]", "m8[us]"]


@st.composite
def record_dtypes(draw, max_fields: int = 6, subarrays: bool = True) -> np.dtype:
    """Structured dtypes: any field order, packed, aligned, or with extra padding."""
    k = draw(st.integers(1, max_fields))
    formats = []
    for _ in range(k):
        base = draw(st.sampled_from(FIELD_TYPES))
        shape = draw(st.sampled_from([(), (), (), (2,), (3,), (2, 2)])) if subarrays else ()
        formats.append(np.dtype((base, shape)) if shape else np.dtype(base))
    names = [f"f{i}" for i in range(k)]
    style = draw(st.sampled_from(["packed", "aligned", "padded"]))
    if style != "padded":
        return np.dtype({"names": names, "formats": formats}, align=style == "aligned")
    offsets, pos = [], 0
    for fmt in formats:
        pos += draw(st.integers(0, 5))
        offsets.append(pos)
        pos += fmt.itemsize
    pos += draw(st.integers(0, 7))
    order = draw(st.permutations(range(k)))  # field order differs from memory order
    return np.dtype({"names": [names[i] for i in order],
                     "formats": [formats[i] for i in order],
                     "offsets": [offsets[i] for i in order], "itemsize": pos})


def random_records(dtype: np.dtype, n: int, seed: int = 0) -> np.ndarray:
    """``n`` records of random bytes (NaN payloads, odd bools and all): bit-exactness."""
    raw = np.random.default_rng(seed).integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype)


def field_bytes(records: np.ndarray, name: str) -> bytes:
    """The NumPy reference for one column: the field's bytes, back to back."""
    return np.ascontiguousarray(records[name]).tobytes()


def reference_records(records: np.ndarray, dtype: np.dtype) -> bytes:
    """The NumPy reference for writing records: fields copied, padding zero."""
    out = np.zeros(len(records), dtype)
    for name in dtype.names:
        out[name] = records[name]
    return out.tobytes()
