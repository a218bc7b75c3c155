"""zerocopy's serializers in distributed's families, in one process (no cluster): every
shared dtype bit for bit, frames over the tensor's own bytes (pointer and a write), the
received tensor over the received frame."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("distributed", reason="zerocopy.dask needs dask and distributed (pip install zerocopy[dask])")

from distributed.protocol import deserialize, serialize

import zerocopy
import zerocopy.dask as zd
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.testing import make_source, pointer

FRAMEWORKS = [name for name in ("torch", "jax", "tensorflow") if importlib.util.find_spec(name)]


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    zd.register()


@pytest.fixture
def x64():
    """JAX with 64-bit types for the test (restored after), so every shared dtype exists."""
    if importlib.util.find_spec("jax") is None:
        yield
        return
    import jax

    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _bits(dtype: str, n: int = 12, seed: int = 0) -> np.ndarray:
    size = numpy_dtype(dtype).itemsize
    raw = np.random.default_rng(seed).integers(0, 256, n * size, dtype=np.uint8)
    if dtype == "bool":
        raw %= 2
    return raw.view(numpy_dtype(dtype)).reshape(3, n // 3)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_shared_dtype_round_trips_bit_for_bit(framework: str, x64: None) -> None:
    for dtype in SHARED_DTYPES:
        src = _bits(dtype)
        x = zerocopy.to(src, framework)
        header, frames = serialize(x, on_error="raise")
        assert header["serializer"] == "dask" and header["sub-header"]["zerocopy"] == 1, dtype
        assert header["sub-header"]["dtype"] == dtype
        y = deserialize(header, frames)
        assert type(y) is type(x), dtype
        assert zerocopy.inspect(y).dtype == dtype
        assert _same_bits(zerocopy.to(y, "numpy"), src), dtype


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_frame_is_the_tensors_own_memory(framework: str) -> None:
    src = np.arange(1024, dtype=np.float32)
    x, writer = make_source(framework, src)
    header, frames = zd.serialize_host(x)
    (frame,) = frames
    view = np.frombuffer(frame, np.uint8)
    assert view.ctypes.data == pointer(x)            # the frame points at the tensor's bytes
    writer.view(np.uint8)[0:4] = np.frombuffer(np.float32(42.5).tobytes(), np.uint8)
    assert view[:4].view(np.float32)[0] == 42.5      # a write to the tensor is in the frame
    assert header["staged"] is False and header["copied"] is None


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_received_tensor_is_the_received_frame(framework: str) -> None:
    src = np.arange(256, dtype=np.float32)
    header, _ = zd.serialize_host(zerocopy.to(src, framework))
    received = zerocopy.empty(src.nbytes, np.uint8)  # 64-byte aligned, as JAX needs to share
    received[:] = src.view(np.uint8)
    y = zd.deserialize_host(header, [memoryview(received)])
    assert pointer(y) == received.ctypes.data
    received[:4] = np.frombuffer(np.float32(-3.0).tobytes(), np.uint8)
    assert zerocopy.to(y, "numpy")[0] == -3.0


def test_a_strided_tensor_is_made_contiguous_and_said() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(24, dtype=torch.int16).reshape(4, 6).t()
    header, frames = zd.serialize_host(t)
    assert header["copied"] == "strided source made contiguous"
    y = zd.deserialize_host(header, frames)
    assert torch.equal(y, t) and y.is_contiguous()


def test_torch_autograd_flag_and_parameters_travel() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.bfloat16).requires_grad_()
    y = deserialize(*serialize(t, on_error="raise"))
    assert y.requires_grad and y.dtype == torch.bfloat16 and torch.equal(y.detach(), t.detach())
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16))
    q = deserialize(*serialize(p, on_error="raise"))
    assert isinstance(q, torch.nn.Parameter) and q.dtype == torch.bfloat16


def test_a_readonly_frame_gives_a_writable_tensor_a_copy() -> None:
    torch = pytest.importorskip("torch")
    header, frames = zd.serialize_host(torch.arange(4, dtype=torch.int32))
    frozen = bytes(frames[0])
    y = zd.deserialize_host(header, [frozen])
    y[0] = 9                                          # writable: the frame was copied once
    assert y.tolist() == [9, 1, 2, 3]


def test_empty_and_zero_dim_tensors() -> None:
    torch = pytest.importorskip("torch")
    for t in (torch.empty(0, 3, dtype=torch.float64), torch.tensor(7, dtype=torch.uint16)):
        y = deserialize(*serialize(t, on_error="raise"))
        assert y.shape == t.shape and y.dtype == t.dtype and torch.equal(y, t)


def test_registration_is_lazy_and_imports_no_framework() -> None:
    import subprocess
    import sys

    code = ("import sys, zerocopy.dask as zd\n"
            "print(zd.register())\n"
            "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'cupy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "[]", out.stdout
    assert "'torch': ['dask', 'cuda']" in lines[-2]


def test_unknown_framework_is_a_typed_error() -> None:
    with pytest.raises(zerocopy.InvalidArgumentError, match="no serializer for 'mxnet'"):
        zd.register(["mxnet"])


# ---------------------------------------------------------------- GPU (scripts/gpu-check)
GPU_FRAMEWORKS = ("torch", "cupy", "jax")


def _device_source(framework: str, src: np.ndarray):
    from zerocopy.testing import make_device_source

    return make_device_source(framework, src)


@pytest.mark.gpu
@pytest.mark.parametrize("framework", GPU_FRAMEWORKS)
def test_gpu_device_frame_is_the_tensors_memory_and_round_trips(framework: str) -> None:
    pytest.importorskip(framework)
    src = np.arange(1 << 20, dtype=np.float32)
    x, writer = _device_source(framework, src)
    header, frames = serialize(x, serializers=["cuda"], on_error="raise")
    assert header["serializer"] == "cuda" and header["sub-header"]["zerocopy"] == 1
    (frame,) = frames
    assert frame.__cuda_array_interface__["data"][0] == pointer(x)
    y = deserialize(header, frames)
    assert pointer(y) == pointer(x)                  # in-process: the same device memory
    writer[0] = 5.0
    assert float(zerocopy.to(y, "numpy")[0]) == 5.0


@pytest.mark.gpu
@pytest.mark.parametrize("framework", GPU_FRAMEWORKS)
def test_gpu_tensor_staged_once_through_the_dask_family(framework: str) -> None:
    pytest.importorskip(framework)
    for dtype in ("float32", "bfloat16", "int64", "bool"):
        if framework == "cupy" and dtype == "bfloat16":
            continue
        src = _bits(dtype, 3 * 1024)
        try:
            x, _ = _device_source(framework, src)
        except Exception as exc:  # the framework cannot hold this dtype on the device
            pytest.skip(f"{framework} {dtype}: {exc}")
        header, frames = serialize(x, on_error="raise")
        if framework != "cupy":                       # CuPy keeps Dask's own host path
            assert header["sub-header"]["staged"] is True
        y = deserialize(header, frames)
        assert zerocopy.inspect(y).device[0] == "cuda"
        assert _same_bits(zerocopy.to(y, "numpy"), src), (framework, dtype)


@pytest.mark.gpu
def test_gpu_producer_stream_is_waited_on_before_the_frame() -> None:
    """Race: on a side stream (non-blocking), long matmuls are queued, then the tensor is
    filled. The device frame is read right after serialize() on the legacy stream: it must
    hold the final values, because the serializer waited on the producer's stream."""
    torch = pytest.importorskip("torch")
    cupy = pytest.importorskip("cupy")
    side = torch.cuda.Stream()
    x = torch.zeros(1 << 20, device="cuda")
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        big = torch.ones(4096, 4096, device="cuda")
        for _ in range(30):
            big = torch.tanh(big @ big)
        x.fill_(3.0)
        _header, frames = serialize(x, serializers=["cuda"], on_error="raise")
    host = np.empty(1 << 20, np.float32)
    cupy.cuda.runtime.memcpy(host.ctypes.data, frames[0].__cuda_array_interface__["data"][0],
                             host.nbytes, cupy.cuda.runtime.memcpyDeviceToHost)
    assert np.all(host == 3.0)


@pytest.mark.parametrize("framework", [f for f in ("tensorflow", "jax") if f in FRAMEWORKS])
def test_an_unaligned_frame_is_copied_once_for_tensorflow_and_jax(framework: str) -> None:
    """TensorFlow aborts the process on its first op over an unaligned host tensor."""
    src = np.arange(1000, dtype=np.float32)
    header, _ = zd.serialize_host(zerocopy.to(src, framework))
    buffer = zerocopy.empty(src.nbytes + 64, np.uint8)
    received = buffer[16:16 + src.nbytes]
    received[:] = src.view(np.uint8)
    y = zd.deserialize_host(header, [memoryview(received)])
    assert pointer(y) % 64 == 0 and pointer(y) != received.ctypes.data
    assert float(zerocopy.to(y[::7], "numpy").sum()) == float(src[::7].sum())


def test_environment_is_what_share_sets_before_the_frameworks_start() -> None:
    assert zd.environment(["jax"]) == {"XLA_PYTHON_CLIENT_ALLOCATOR": "cuda_async",
                                       "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert zd.environment(["torch"]) == {"PYTORCH_ALLOC_CONF": "backend:cudaMallocAsync",
                                         "PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"}
    assert zd.environment(["torch"], {"torch": "pluggable"}) == {}   # set by a hook, not by env
    assert zd.environment(["tensorflow"]) == {"TF_GPU_ALLOCATOR": "cuda_malloc_async"}


def test_setup_refuses_unknown_arguments_before_touching_the_cluster() -> None:
    with pytest.raises(zerocopy.InvalidArgumentError, match="unknown framework"):
        zd.setup(None, frameworks=["torch", "nope"])
    with pytest.raises(zerocopy.InvalidArgumentError, match="environment_on"):
        zd.setup(None, environment_on="sometimes")
