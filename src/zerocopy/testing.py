"""Probes: objects of every framework over memory we control, and the proof that one
conversion shares memory (a matrix cell). ``zerocopy matrix``, the benchmarks and the
tests all use them, so all three prove the same things the same way.

A cell is "Z" only when the result's data pointer equals the source's AND a write through
the source's memory is seen in the result; "C" when zerocopy copied (with the plan's
reason); "E" with the typed error when the pair cannot hold the data; "n/a" when the source
framework cannot hold the dtype.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerocopy._dtypes import name_of_numpy, numpy_dtype
from zerocopy.adapters.numpy import aligned
from zerocopy.exchange.convert import explain, inspect, to
from zerocopy.exchange.dlpack import to_numpy
from zerocopy.registry import adapter, record

__all__ = ["Cell", "ProbeUnavailable", "make_device_source", "make_source", "pointer", "probe_pair",
           "probe_values", "same_bits", "values", "writable_alias"]


class ProbeUnavailable(Exception):
    """The framework cannot hold this dtype itself (a matrix cell "n/a", not a failure)."""


def make_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    """(source object, writable alias of its memory). Sources sit in 64-byte aligned
    buffers where the framework lets us choose, so every framework could share them; JAX
    and TensorFlow allocate their own (aligned) memory, written through a DLPack alias.
    Writing 0 to the alias's first byte sets element 0 to zero/False in the source."""
    wanted = name_of_numpy(data.dtype)
    if wanted is None or wanted not in adapter(name).dtypes():
        raise ProbeUnavailable(f"{name} has no {data.dtype}")
    if data.dtype == np.bool_ and getattr(adapter(name), "BOOL_BITS", False):
        return _bit_packed_source(name, data)
    try:
        source, writer = _make_source(name, data)
    except Exception as exc:
        raise ProbeUnavailable(f"{name} cannot build a {data.dtype} probe: {exc}") from exc
    if inspect(source).dtype != wanted:
        raise ProbeUnavailable(f"{name} stores {data.dtype} as {inspect(source).dtype}")
    return source, writer


def make_device_source(name: str, data: np.ndarray, device: int = 0) -> tuple[Any, Any]:
    """(device array of ``name`` on cuda:``device``, writable CuPy view of its memory).
    Frameworks whose registry record has ``device_probe`` build one: their adapter's
    ``move`` copies the NumPy values onto the device."""
    wanted = name_of_numpy(data.dtype)
    if not record(name).device_probe:
        raise ProbeUnavailable(f"no device probe for {name}")
    if wanted is None or wanted not in adapter(name).dtypes():
        raise ProbeUnavailable(f"{name} has no {data.dtype}")
    try:
        source = adapter(name).move(data, ("cuda", device))
        # The writer is a CuPy view made by zerocopy itself: TensorFlow tensors have no
        # __dlpack__ and cuDF columns no writable view of their own.
        writer = to(source, "cupy", copy=False)
    except Exception as exc:
        raise ProbeUnavailable(f"{name} cannot build a {data.dtype} device probe: {exc}") from exc
    if inspect(source).dtype != wanted or int(writer.data.ptr) != pointer(source):
        raise ProbeUnavailable(f"{name} device probe is not what was asked for")
    return source, writer


def _bit_packed_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    """Bool one bit per value (the adapter's ``BOOL_BITS``): an Arrow array, written through
    its bit buffer, taken as it is by the framework (copy=False: were the bits copied, this
    raises rather than probe other memory than the writer's)."""
    import pyarrow as pa

    array = pa.array(data)
    buffer = array.buffers()[1]
    writer = np.frombuffer((ctypes.c_uint8 * buffer.size).from_address(buffer.address), np.uint8)
    return to(array, name, copy=False), writer


def _numpy_over(base: np.ndarray) -> Any:
    return base


def _torch_over(base: np.ndarray) -> Any:
    import torch

    if base.dtype.name == "bfloat16":
        return torch.from_numpy(base.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(base)


def _pandas_over(base: np.ndarray) -> Any:
    import pandas as pd

    return pd.Series(base, copy=False)


def _polars_over(base: np.ndarray) -> Any:
    import polars as pl

    return pl.Series(base)


def _pyarrow_over(base: np.ndarray) -> Any:
    import pyarrow as pa

    return pa.Array.from_buffers(pa.from_numpy_dtype(base.dtype), len(base), [None, pa.py_buffer(base)])


# Frameworks that take a buffer we allocated (64-byte aligned, so every framework could
# share it) without copying; the others allocate their own memory, written through a
# DLPack alias. Test scaffolding, not exchange: conversions never use these.
_OVER_OUR_BUFFER: dict[str, Callable[[np.ndarray], Any]] = {
    "numpy": _numpy_over, "torch": _torch_over, "pandas": _pandas_over, "polars": _polars_over,
    "pyarrow": _pyarrow_over}


def _make_source(name: str, data: np.ndarray) -> tuple[Any, Any]:
    build = _OVER_OUR_BUFFER.get(name)
    if build is not None:
        base = aligned(data.copy())
        return build(base), base
    # A private copy: jax.device_put may alias an aligned host buffer, and the caller's
    # `data` is what the probe's values are compared against.
    source = adapter(name).make(data.copy())
    return source, writable_alias(source)


def writable_alias(obj: Any) -> Any:
    """A writable NumPy view over ``obj``'s memory, checked by pointer."""
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


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    dtype: str
    status: str  # "Z", "C", "E" or "n/a" (the source framework cannot hold the dtype)
    route: str
    reason: str


def probe_values(dtype: str, n: int) -> np.ndarray:
    """``n`` values of ``dtype``, none of them zero (a write of zero is then visible)."""
    if dtype == "bool":
        return np.arange(n) % 3 == 0
    return (np.arange(n) % 100 + 1).astype(numpy_dtype(dtype))


def probe_pair(source_name: str, target_name: str, dtype: str = "float32", n: int = 64,
               gpu: bool = False) -> Cell:
    """One cell; ``gpu``: the source is a real device array on cuda:0."""
    data = probe_values(dtype, n)
    try:
        source, writer = (make_device_source if gpu else make_source)(source_name, data)
    except ProbeUnavailable as exc:
        return Cell(source_name, target_name, dtype, "n/a", "", str(exc))
    try:
        plan = explain(source, target_name)
        result = to(source, target_name)
    except Exception as exc:
        return Cell(source_name, target_name, dtype, "E", "", f"{type(exc).__name__}: {_first_line(exc)}")
    route = " > ".join(p for p in plan.protocols) or "native"
    if plan.copies:
        reason = next((c for c in plan.caveats if c.startswith("copied because")), "copies")
        return Cell(source_name, target_name, dtype, "C", route, reason)
    shared = pointer(result) == pointer(source)
    assert values(result).reshape(-1)[0] != 0  # the probe starts non-zero
    writer.reshape(-1).view(np.uint8)[: data.itemsize] = 0  # element 0 := 0 / False
    if gpu:
        import cupy

        cupy.cuda.runtime.deviceSynchronize()
    seen = values(result).reshape(-1)[0] == 0
    if shared and seen:
        return Cell(source_name, target_name, dtype, "Z", route, "")
    return Cell(source_name, target_name, dtype, "E", route,
                f"BUG: plan said zero-copy, pointer {'same' if shared else 'differs'}, "
                f"write {'seen' if seen else 'not seen'}")


def _first_line(exc: BaseException) -> str:
    return str(exc).split(". Hint:")[0].splitlines()[0][:160]
