"""The C extension and the pure-Python path build and read the same capsules.

Every test runs once per backend (the ``backend`` fixture swaps the implementation
``zerocopy.exchange.dlpack`` uses). Proof is by pointer and by the owner's reference
count: a capsule shares the owner's memory, keeps the owner alive while anybody holds the
tensor, and releases it exactly once: when the consumer lets go, or when a capsule
nobody consumed dies. The Makefile runs this file a second time with
ZEROCOPY_PURE_PYTHON=1, which proves the switch itself.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zerocopy.exchange import dlpack
from zerocopy.exchange.dlpack import CPU, DLPackExporter, capsule_info

BUILT = dlpack.backend() == "C extension"
BACKENDS = [pytest.param("C", marks=pytest.mark.skipif(not BUILT, reason=dlpack.backend())), "Python"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "Python":
        monkeypatch.setattr(dlpack, "_impl", dlpack._PYTHON)
    return request.param


def exporter(a: np.ndarray, dtype: str | None = None, *, readonly: bool = False) -> DLPackExporter:
    strides = tuple(s // a.itemsize for s in a.strides)
    return DLPackExporter(a, a.ctypes.data, a.shape, strides, dtype or a.dtype.name, readonly=readonly)


def refs(obj: Any) -> int:
    gc.collect()
    return sys.getrefcount(obj)


def aligned(values: np.ndarray) -> np.ndarray:
    """A 64-byte aligned copy (JAX and TensorFlow share only aligned host memory)."""
    raw = np.empty(values.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


# --------------------------------------------------------------- what a capsule says

@pytest.mark.parametrize("versioned", [False, True])
def test_capsule_describes_the_buffer(backend: str, versioned: bool) -> None:
    a = np.arange(24, dtype=np.int16).reshape(4, 6)[:, ::-2]
    info = capsule_info(exporter(a, readonly=True).capsule(versioned=versioned))
    assert info == {
        "name": "dltensor_versioned" if versioned else "dltensor",
        "version": (1, 1) if versioned else None,
        "readonly": versioned,  # legacy capsules cannot carry the flag
        "data": a.ctypes.data,
        "device": (CPU, 0),
        "shape": (4, 3),
        "strides": (6, -2),
        "dtype": (0, 16, 1),
    }


def test_both_backends_read_a_foreign_capsule_alike() -> None:
    if not BUILT:
        pytest.skip(dlpack.backend())
    from zerocopy import _speedups

    a = np.arange(12.0).reshape(3, 4)
    capsule = a.__dlpack__()  # NumPy's own capsule
    assert _speedups.capsule_info(capsule) == dlpack._PYTHON.capsule_info(capsule)


# --------------------------------------------------------------- lifetime

@pytest.mark.parametrize("versioned", [False, True])
def test_unconsumed_capsule_releases_the_owner_once(backend: str, versioned: bool) -> None:
    a = np.zeros(8, np.float32)
    before = refs(a)
    capsules = [exporter(a).capsule(versioned=versioned) for _ in range(3)]
    assert refs(a) == before + 3
    del capsules
    assert refs(a) == before


def test_consumed_capsule_is_renamed_and_the_consumer_owns_the_deleter(backend: str) -> None:
    a = np.arange(6.0)
    before = refs(a)
    capsule = exporter(a).capsule(versioned=True)
    keeper, info = dlpack._impl.consume(capsule)
    assert info["data"] == a.ctypes.data
    assert "used_dltensor_versioned" in repr(capsule)
    with pytest.raises(BufferError, match="not an unconsumed DLPack capsule"):
        capsule_info(capsule)
    del capsule  # renamed: dying does not call the deleter
    assert refs(a) == before + 1
    del keeper  # the consumer lets go: the deleter runs, once
    assert refs(a) == before


@pytest.mark.parametrize("consumer", ["numpy", "zerocopy", "torch", "jax", "tensorflow"])
def test_consumers_share_and_release_the_owner(backend: str, consumer: str) -> None:
    a = aligned(np.arange(16, dtype=np.float32))
    before = refs(a)
    view, pointer = _consume(consumer, exporter(a))
    assert pointer == a.ctypes.data
    assert refs(a) > before  # the consumer's tensor keeps the owner alive
    del view
    assert refs(a) == before


def _consume(consumer: str, producer: DLPackExporter) -> tuple[Any, int]:
    if consumer == "numpy":
        view = np.from_dlpack(producer)
        return view, view.ctypes.data
    if consumer == "zerocopy":
        view = dlpack.to_numpy(producer)
        return view, view.ctypes.data
    if consumer == "torch":
        torch = pytest.importorskip("torch")
        view = torch.from_dlpack(producer)
        return view, view.data_ptr()
    if consumer == "jax":
        jax = pytest.importorskip("jax")
        view = jax.dlpack.from_dlpack(producer, copy=False)
        return view, view.unsafe_buffer_pointer()
    tf = pytest.importorskip("tensorflow")
    view = tf.experimental.dlpack.from_dlpack(producer.capsule(versioned=False))
    return view, capsule_info(tf.experimental.dlpack.to_dlpack(view))["data"]


# --------------------------------------------------------------- flags, dtypes, layouts

def test_read_only_flag_reaches_numpy(backend: str) -> None:
    a = np.arange(4.0)
    assert not np.from_dlpack(exporter(a, readonly=True)).flags.writeable
    assert np.from_dlpack(exporter(a)).flags.writeable


def test_bfloat16_reaches_torch_and_numpy(backend: str) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    a = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    t = torch.from_dlpack(exporter(a, "bfloat16"))
    assert t.dtype == torch.bfloat16 and t.data_ptr() == a.ctypes.data
    assert t.tolist() == [1.5, -2.0, 3.25]
    n = dlpack.to_numpy(exporter(a, "bfloat16"))
    assert n.dtype == a.dtype and n.ctypes.data == a.ctypes.data


def test_zero_dimensional(backend: str) -> None:
    torch = pytest.importorskip("torch")
    a = np.array(7.5)
    assert capsule_info(exporter(a).capsule(versioned=True))["shape"] == ()
    assert dlpack.to_numpy(exporter(a)).shape == ()
    t = torch.from_dlpack(exporter(a))
    assert t.shape == () and t.item() == 7.5 and t.data_ptr() == a.ctypes.data


def test_strided_views_keep_their_strides(backend: str) -> None:
    torch = pytest.importorskip("torch")
    a = np.arange(60, dtype=np.int32).reshape(6, 10)[1::2, 1:9:3]
    t = torch.from_dlpack(exporter(a))
    assert t.stride() == (20, 3) and t.tolist() == a.tolist()
    a = np.arange(60, dtype=np.int32).reshape(6, 10)[1::2, 8:1:-3]  # torch aborts on these
    n = dlpack.to_numpy(exporter(a))
    assert n.strides == a.strides and n.tolist() == a.tolist()
    n[0, 0] = -1  # a view: the write lands in the source
    assert a[0, 0] == -1


def test_writes_are_shared(backend: str) -> None:
    torch = pytest.importorskip("torch")
    a = np.zeros(4, np.float64)
    torch.from_dlpack(exporter(a))[2] = 5.0
    assert a.tolist() == [0.0, 0.0, 5.0, 0.0]


# --------------------------------------------------------------- errors

def test_errors_are_the_same(backend: str) -> None:
    with pytest.raises(TypeError, match="expected a DLPack capsule"):
        capsule_info(np.zeros(2))
    with pytest.raises(ValueError, match="strides has 1 entries, the shape 2"):
        dlpack._impl.capsule(None, 0, (2, 2), (1,), 2, 32, CPU, 0, False, True)


# --------------------------------------------------------------- the switch

_BACKEND = "from zerocopy.exchange import dlpack; print(dlpack.backend())"


def _backend_in_a_fresh_process(env: dict[str, str]) -> str:
    with warnings.catch_warnings():
        return subprocess.run([sys.executable, "-c", _BACKEND], env={**os.environ, **env},
                              capture_output=True, text=True, check=True).stdout.strip()


def test_environment_switch_forces_pure_python() -> None:
    out = _backend_in_a_fresh_process({"ZEROCOPY_PURE_PYTHON": "1"})
    present = importlib.util.find_spec("zerocopy._speedups") is not None  # BUILT: False under the switch
    built = "built but not used" if present else "not built either"
    assert out == f"pure-Python path (ZEROCOPY_PURE_PYTHON is set; the C extension is {built})"


@pytest.mark.parametrize("switch", ["", "1"])
def test_an_unbuilt_extension_is_named_as_such(tmp_path: Path, switch: str) -> None:
    """A source tree without zerocopy._speedups: `zerocopy doctor` said "partially
    initialized module 'zerocopy' (most likely due to a circular import)"."""
    package = Path(dlpack.__file__).resolve().parents[1]
    shutil.copytree(package, tmp_path / "zerocopy",
                    ignore=shutil.ignore_patterns("_speedups*.so", "_speedups*.pyd", "__pycache__"))
    out = _backend_in_a_fresh_process({"PYTHONPATH": str(tmp_path), "ZEROCOPY_PURE_PYTHON": switch})
    assert "circular" not in out
    if switch:
        assert out == "pure-Python path (ZEROCOPY_PURE_PYTHON is set; the C extension is not built either)"
    else:
        assert out.startswith("pure-Python path (C extension not built: no zerocopy._speedups")


# --------------------------------------------------------------- the DLPack C exchange API

def torch_with_exchange_api() -> Any:
    torch = pytest.importorskip("torch")
    if not hasattr(torch.Tensor, "__dlpack_c_exchange_api__"):
        pytest.skip(f"torch {torch.__version__} publishes no DLPack C exchange API (2.10+)")
    if not BUILT:
        pytest.skip(dlpack.backend())
    return torch


@pytest.mark.parametrize("case", ["read-only", "writable", "strided", "0-d", "bfloat16"])
def test_exchange_api_makes_torch_tensors_over_the_buffer(case: str) -> None:
    torch = torch_with_exchange_api()
    a = {"read-only": np.arange(6.0), "writable": np.arange(6, dtype=np.int32),
         "strided": np.arange(24, dtype=np.int16).reshape(4, 6)[::2, 1::2], "0-d": np.array(2.5),
         "bfloat16": np.arange(4.0).astype(pytest.importorskip("ml_dtypes").bfloat16)}[case]
    if case == "read-only":
        a.flags.writeable = False
    before = refs(a)
    t = dlpack.via_exchange_api(torch.Tensor, a, "bfloat16" if case == "bfloat16" else a.dtype.name)
    assert type(t) is torch.Tensor and t.data_ptr() == a.ctypes.data  # no warning either (warnings are errors)
    assert t.shape == a.shape and t.stride() == tuple(s // a.itemsize for s in a.strides)
    assert t.tolist() == a.astype(np.float64).tolist()
    assert refs(a) == before + 1
    del t
    assert refs(a) == before


@pytest.mark.parametrize(("shape", "c_strides"), [((4, 6), (6, 1)), ((5,), (1,)), ((), ()),
                                                  ((2, 0, 3), (3, 3, 1))])  # an empty axis steps as 1
def test_no_strides_means_c_order(backend: str, shape: tuple[int, ...], c_strides: tuple[int, ...]) -> None:
    a = np.zeros(shape, dtype=np.float32)
    capsule = dlpack._impl.capsule(a, a.ctypes.data, shape, None, 2, 32, CPU, 0, False, True)
    assert capsule_info(capsule)["strides"] == c_strides


def test_a_negative_extent_is_refused_before_any_consumer_sees_it(backend: str) -> None:
    a = np.zeros(4, dtype=np.float32)
    before = refs(a)
    with pytest.raises(ValueError, match="negative extent"):
        dlpack._impl.capsule(a, a.ctypes.data, (-1, 4), None, 2, 32, CPU, 0, False, True)
    assert refs(a) == before  # nothing was built, nothing holds the owner


def test_exchange_api_without_strides_makes_a_c_ordered_tensor() -> None:
    torch = torch_with_exchange_api()
    if not BUILT:
        pytest.skip(dlpack.backend())
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = dlpack._impl.to_object(torch.Tensor.__dlpack_c_exchange_api__, a, a.ctypes.data, a.shape, None,
                               2, 32, CPU, 0, False)
    assert t.data_ptr() == a.ctypes.data and t.stride() == (12, 4, 1)
    assert t.tolist() == a.tolist()


def test_exchange_api_is_the_c_path_only() -> None:
    torch = torch_with_exchange_api()
    with dlpack.pure_python():
        assert dlpack.via_exchange_api(torch.Tensor, np.zeros(2), "float64") is None
    assert dlpack.via_exchange_api(np.ndarray, np.zeros(2), "float64") is None  # NumPy has none


def _arrays() -> list[np.ndarray]:
    import ml_dtypes

    base = np.arange(24, dtype=np.float32)
    readonly = base.copy()
    readonly.flags.writeable = False
    return [base, base[3:], base.reshape(4, 6)[:, ::2], base[::-1], base.reshape(4, 6).T, readonly,
            np.zeros(3, ml_dtypes.bfloat16), np.empty(0), np.array(5.0), np.array([1, "a"], dtype=object)]


@pytest.mark.parametrize("index", range(10))
def test_data_pointer_is_where_the_array_interface_says_the_data_starts(backend: str, index: int) -> None:
    # The fast lane reads it on every call into JAX or TensorFlow (one plan per alignment):
    # in C through the buffer protocol, in Python (and for object arrays) the slow way.
    x = _arrays()[index]
    assert dlpack.data_pointer(x) == x.__array_interface__["data"][0]
