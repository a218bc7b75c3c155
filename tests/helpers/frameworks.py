"""Test helpers shared by the exchange tests: sources of every framework over memory we
control, a writable alias for mutation proofs, pointers and values."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

import zerocopy
from zerocopy.frameworks import CPU_FRAMEWORKS, adapter

MAIN_ENV = tuple(n for n in CPU_FRAMEWORKS if n != "mxnet" and importlib.util.find_spec(adapter(n).IMPORT_NAME))
# Frameworks whose own memory is immutable: the test writes through a DLPack alias instead.
OWN_MEMORY = {"jax", "tensorflow"}


def make_source(name: str, values: np.ndarray) -> tuple[Any, Any]:
    """(source object, writable alias of its memory). Sources sit in 64-byte aligned
    buffers where the framework lets us choose, so every framework could share them."""
    base = zerocopy.aligned(values.copy())
    if name == "numpy":
        return base, base
    if name == "torch":
        import torch

        t = torch.from_numpy(base)
        return t, t
    if name == "pandas":
        import pandas as pd

        return pd.Series(base, copy=False), base
    if name == "polars":
        import polars as pl

        return pl.Series(base), base
    if name == "pyarrow":
        import pyarrow as pa

        return pa.Array.from_buffers(pa.from_numpy_dtype(base.dtype), len(base),
                                     [None, pa.py_buffer(base)]), base
    src = adapter(name).make(values)
    return src, writable_alias(src)


def writable_alias(obj: Any) -> Any:
    """A torch tensor over obj's memory (checked by pointer), to write through."""
    import torch

    alias = torch.from_dlpack(obj)
    assert alias.data_ptr() == pointer(obj)
    return alias


def pointer(obj: Any) -> int:
    return zerocopy.inspect(obj).ptr


def values(obj: Any) -> np.ndarray:
    return np.asarray(adapter(zerocopy.inspect(obj).framework).to_host(obj))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()
