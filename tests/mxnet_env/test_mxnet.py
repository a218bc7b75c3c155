"""MXNet 1.9.1 (retired; needs NumPy < 1.24): run in its own environment by `make test-mxnet`.

Proves zerocopy's core on that old NumPy, and MXNet's exchange with NumPy and torch."""

from __future__ import annotations

import gc

import numpy as np
import pytest

mx = pytest.importorskip("mxnet")
torch = pytest.importorskip("torch")

import zerocopy  # noqa: E402  (after the skips: this file runs only where MXNet exists)
from zerocopy.testing import pointer  # noqa: E402

DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint8"]


def _mx_source(dtype: str) -> object:
    return mx.nd.array(np.arange(16) % 2 if dtype == "bool" else np.arange(16), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_mxnet_to_framework_shares_memory(target: str, dtype: str) -> None:
    source = _mx_source(dtype)
    result = zerocopy.to(source, target, copy=False)
    assert pointer(result) == pointer(source)
    source[3] = 0  # a write on the MXNet side is seen by the target
    mx.nd.waitall()
    assert (result if target == "numpy" else result.numpy())[3] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("source_name", ["numpy", "torch"])
def test_framework_to_mxnet_shares_memory(source_name: str, dtype: str) -> None:
    base = zerocopy.aligned((np.arange(16) % 2).astype(dtype) if dtype == "bool"
                            else np.arange(16).astype(dtype))
    source = base if source_name == "numpy" else torch.from_numpy(base)
    result = zerocopy.to(source, "mxnet", copy=False)
    assert pointer(result) == pointer(base)
    base[5] = 0
    assert result.asnumpy()[5] == 0


def test_mxnet_result_keeps_source_alive() -> None:
    t = torch.arange(1 << 14, dtype=torch.float32)
    result = zerocopy.to(t, "mxnet")
    del t
    gc.collect()
    assert np.array_equal(result.asnumpy(), np.arange(1 << 14, dtype=np.float32))


def test_mxnet_bool_copies_out_and_is_refused_in() -> None:
    # MXNet's DLPack calls bool a 1-bit unsigned integer, which nobody imports.
    source = mx.nd.array([1, 0, 1], dtype="bool")
    assert zerocopy.to(source, "numpy").tolist() == [True, False, True]
    with pytest.raises(zerocopy.UnsupportedDtypeError):
        zerocopy.to(np.array([True, False]), "mxnet")


def test_mxnet_lacks_dtypes_and_says_so() -> None:
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="MXNet has no uint16"):
        zerocopy.to(np.zeros(3, np.uint16), "mxnet")


def test_strided_input_copies_for_mxnet() -> None:
    x = np.arange(16, dtype=np.float32)[::2]
    with pytest.raises(zerocopy.NotZeroCopyError, match="C-contiguous"):
        zerocopy.to(x, "mxnet", copy=False)
    assert np.array_equal(zerocopy.to(x, "mxnet").asnumpy(), x)


def test_core_runs_on_old_numpy() -> None:
    assert tuple(int(p) for p in np.__version__.split(".")[:2]) < (1, 24)
    x = zerocopy.empty(8, np.float32)
    t = zerocopy.to(x, "torch", copy=False)
    assert pointer(t) == pointer(x)
    assert "ZERO-COPY" in str(zerocopy.explain(x, "torch"))
