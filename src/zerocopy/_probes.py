"""Probe objects of every framework over memory we control, used by ``zerocopy matrix``,
the benchmarks and the tests, so all three prove the same things the same way."""

from __future__ import annotations

from typing import Any

import numpy as np

from zerocopy.adapters import adapter
from zerocopy.adapters.numpy import aligned
from zerocopy.exchange.convert import inspect

__all__ = ["ProbeUnavailable", "make_device_source", "make_source", "pointer", "same_bits", "values",
           "writable_alias"]


class ProbeUnavailable(Exception):
    """The framework cannot hold this dtype itself (a matrix cell "n/a", not a failure)."""


def make_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    """(source object, writable alias of its memory). Sources sit in 64-byte aligned
    buffers where the framework lets us choose, so every framework could share them; JAX
    and TensorFlow allocate their own (aligned) memory, written through a DLPack alias.
    Writing 0 to the alias's first byte sets element 0 to zero/False in the source."""
    from zerocopy._dtypes import name_of_numpy

    wanted = name_of_numpy(data.dtype)
    if wanted is None or (wanted not in adapter(name).dtypes() and name != "jax"):
        raise ProbeUnavailable(f"{name} has no {data.dtype}")
    if data.dtype == np.bool_ and name in ("pyarrow", "polars"):
        return _bit_packed_source(name, data)
    try:
        source, writer = _make_source(name, data)
    except Exception as exc:
        raise ProbeUnavailable(f"{name} cannot build a {data.dtype} probe: {exc}") from exc
    if inspect(source).dtype != wanted:
        raise ProbeUnavailable(f"{name} stores {data.dtype} as {inspect(source).dtype}")
    return source, writer


def make_device_source(name: str, data: np.ndarray, device: int = 0) -> tuple[Any, Any]:
    """(device array of ``name`` on cuda:``device``, writable CuPy view of its memory)."""
    from zerocopy._dtypes import name_of_numpy

    wanted = name_of_numpy(data.dtype)
    if wanted is None or wanted not in adapter(name).dtypes():
        raise ProbeUnavailable(f"{name} has no {data.dtype}")
    try:
        import cupy

        if name in ("cupy", "numba"):
            source = adapter(name).make(data, device)
        elif name == "torch":
            source = adapter("torch").make(data).to(f"cuda:{device}")
        elif name == "jax":
            import jax

            gpu = next(d for d in jax.devices() if d.platform in ("gpu", "cuda") and d.id == device)
            source = jax.device_put(data, gpu)
        else:
            raise ProbeUnavailable(f"no device probe for {name}")
        writer = cupy.from_dlpack(source) if hasattr(source, "__dlpack__") else cupy.asarray(source)
    except ProbeUnavailable:
        raise
    except Exception as exc:
        raise ProbeUnavailable(f"{name} cannot build a {data.dtype} device probe: {exc}") from exc
    if inspect(source).dtype != wanted or int(writer.data.ptr) != pointer(source):
        raise ProbeUnavailable(f"{name} device probe is not what was asked for")
    return source, writer


def _bit_packed_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    import ctypes

    import pyarrow as pa

    array = pa.array(data)
    buffer = array.buffers()[1]
    writer = np.frombuffer((ctypes.c_uint8 * buffer.size).from_address(buffer.address), np.uint8)
    if name == "polars":
        import polars as pl

        return pl.Series(array), writer
    return array, writer


def _make_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    base = aligned(data.copy())
    if name == "numpy":
        return base, base
    if name == "torch":
        import torch

        if base.dtype.name == "bfloat16":
            t = torch.from_numpy(base.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(base)
        return t, base
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
    # A private copy: jax.device_put may alias an aligned host buffer, and the caller's
    # `data` is what the probe's values are compared against.
    source = adapter(name).make(data.copy())
    return source, writable_alias(source)


def writable_alias(obj: Any) -> Any:
    """A writable NumPy view over ``obj``'s memory, checked by pointer."""
    from zerocopy.exchange.dlpack import to_numpy

    if hasattr(obj, "__dlpack__"):
        capsule = obj.__dlpack__()
    elif hasattr(obj, "to_dlpack_for_write"):  # MXNet hands out raw capsules
        capsule = obj.to_dlpack_for_write()
    else:
        capsule = obj
    alias = to_numpy(capsule)
    alias = np.lib.stride_tricks.as_strided(alias, writeable=True) if not alias.flags.writeable else alias
    if alias.size and int(alias.__array_interface__["data"][0]) != pointer(obj):
        raise AssertionError("the alias does not share the object's memory")
    return alias


def pointer(obj: Any) -> int:
    return inspect(obj).ptr


def values(obj: Any) -> np.ndarray:
    return np.asarray(adapter(inspect(obj).framework).to_host(obj))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return (a.shape == b.shape and a.dtype == b.dtype
            and a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes())
