"""GPU pairs (CuPy, torch CUDA, JAX GPU, Numba CUDA), proven the way the CPU pairs are:
same device pointer, a write through the source seen in the result, the source kept alive
after ``del`` + gc, values bit for bit; every dtype both sides hold; strided inputs;
stream races that fail without ordering; device 1 stays device 1; device= moves.

Run on the GPU machine by scripts/gpu-check; skipped (conftest) where no CUDA GPU exists.
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from tests.helpers.frameworks import lane_plan

import zerocopy
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.registry import adapter
from zerocopy.testing import probe_values as _probe_values

GPU = tuple(n for n, module in (("cupy", "cupy"), ("torch", "torch"), ("jax", "jax"), ("numba", "numba_cuda"))
            if importlib.util.find_spec(module))
PAIRS = [(s, d) for s, d in itertools.product(GPU, GPU) if s != d]
pytestmark = pytest.mark.gpu


def _held(name: str) -> frozenset[str]:
    return adapter(name).dtypes() - ({"bfloat16"} if name == "numba" else set())


def on_gpu(name: str, values: np.ndarray, device: int = 0) -> object:
    """A device array of ``name`` holding ``values`` on ``device`` (skips if it cannot)."""
    try:
        if name in ("cupy", "numba"):
            return adapter(name).make(values, device)
        if name == "torch":
            return adapter("torch").make(values).to(f"cuda:{device}")
        if name == "jax":
            import jax

            gpu = next(d for d in jax.devices() if d.platform in ("gpu", "cuda") and d.id == device)
            return jax.device_put(values, gpu)
    except Exception as exc:  # the framework cannot hold this dtype on the GPU
        pytest.skip(f"{name} cannot hold {values.dtype} on cuda:{device}: {exc}")
    raise AssertionError(name)


def writer_of(obj: object) -> object:
    """A CuPy view over ``obj``'s device memory (JAX arrays are immutable: written through it)."""
    import cupy

    view = cupy.asarray(obj) if not hasattr(obj, "__dlpack__") else cupy.from_dlpack(obj)
    assert int(view.data.ptr) == zerocopy.inspect(obj).ptr
    return view


def host(obj: object) -> np.ndarray:
    return np.asarray(adapter(zerocopy.inspect(obj).framework).to_host(obj))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()


def sync() -> None:
    import cupy

    cupy.cuda.runtime.deviceSynchronize()


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


# --------------------------------------------------------------- the pair matrix

def test_gpu_pair_shares_memory(pair: tuple[str, str]) -> None:
    source_name, target_name = pair
    expected = np.arange(64, dtype=np.float32) * 1.5
    source = on_gpu(source_name, expected)
    plan = zerocopy.explain(source, target_name, copy=False)
    result = zerocopy.to(source, target_name, copy=False)
    assert not plan.copies, str(plan)
    info = zerocopy.inspect(result)
    assert info.framework == target_name and info.device == ("cuda", 0)
    assert info.ptr == zerocopy.inspect(source).ptr
    assert same_bits(host(result), expected)
    writer_of(source)[3] = -7.0
    sync()
    assert host(result)[3] == -7.0


def test_gpu_pair_keeps_source_alive(pair: tuple[str, str]) -> None:
    import cupy

    source_name, target_name = pair
    expected = np.linspace(0, 1, 1 << 16, dtype=np.float32)
    source = on_gpu(source_name, expected)
    result = zerocopy.to(source, target_name)
    del source
    gc.collect()
    churn = [cupy.full(1 << 16, 9.0, dtype=cupy.float32) for _ in range(32)]  # reuse freed memory
    sync()
    assert same_bits(host(result), expected)
    del churn


@pytest.mark.parametrize("dtype", SHARED_DTYPES)
def test_gpu_pair_every_shared_dtype(pair: tuple[str, str], dtype: str) -> None:
    source_name, target_name = pair
    if dtype not in _held(source_name) or dtype not in _held(target_name):
        pytest.skip(f"{source_name} and {target_name} do not share {dtype}")
    expected = _probe_values(dtype, 48)
    source = on_gpu(source_name, expected)
    plan = zerocopy.explain(source, target_name)
    result = zerocopy.to(source, target_name)
    assert not plan.copies, str(plan)
    if dtype == "bfloat16":
        assert "cai" not in [h.edge.target for h in plan.hops], str(plan)  # never through CAI
    assert str(zerocopy.inspect(result).dtype) == dtype
    assert zerocopy.inspect(result).ptr == zerocopy.inspect(source).ptr
    assert same_bits(host(result), expected)


def _transposed(x: Any) -> Any:
    # Numba's DeviceNDArray.T is a transpose *kernel* (a new array), launched on a small
    # grid: its NumbaPerformanceWarning is about the test's input, not about zerocopy.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*under-utilization.*")
        return x.T


STRIDED = {"step": lambda x: x[::2], "transpose": _transposed, "offset": lambda x: x[1:]}


@pytest.mark.parametrize("view", list(STRIDED))
def test_gpu_pair_strided_inputs(pair: tuple[str, str], view: str) -> None:
    source_name, target_name = pair
    if source_name == "jax":
        pytest.skip("JAX arrays are never strided views")
    if source_name == "numba" and view == "transpose" and not hasattr(np, "row_stack"):
        pytest.skip("numba DeviceNDArray.T calls np.row_stack, which NumPy 2.5 removed")
    base = np.arange(64 * 32, dtype=np.float32).reshape(64, 32)
    source = STRIDED[view](on_gpu(source_name, base))
    expected = STRIDED[view](base)
    if target_name == "jax" and view == "step":
        with pytest.raises(zerocopy.ZeroCopyError):  # JAX imports compact strides only
            zerocopy.to(source, "jax", copy=False)
        return
    result = zerocopy.to(source, target_name, copy=False)
    assert zerocopy.inspect(result).ptr == zerocopy.inspect(source).ptr
    assert same_bits(host(result), expected)


# --------------------------------------------------------------- the fast lane (pointers handed over)

def test_gpu_pair_fast_lane_shares_memory_and_keeps_source_alive(pair: tuple[str, str]) -> None:
    """The second call of a pair takes the fast lane (the specialised plan: pointers handed
    over where both sides are on the legacy default stream); proven as the first call is."""
    import cupy

    source_name, target_name = pair
    expected = np.arange(1 << 14, dtype=np.float32) * 0.5
    source = on_gpu(source_name, expected)
    zerocopy.to(source, target_name)  # plans, and keeps the plan for the lane
    plan = lane_plan(source, target_name)
    assert plan is not None, "no fast-lane plan was kept"
    assert plan.fast != plan.run, f"{source_name}->{target_name} is not specialised:\n{plan}"
    result = zerocopy.to(source, target_name)
    assert zerocopy.inspect(result).framework == target_name
    assert zerocopy.inspect(result).ptr == zerocopy.inspect(source).ptr
    assert same_bits(host(result), expected)
    writer_of(source)[5] = -3.0
    sync()
    assert host(result)[5] == -3.0
    del source
    gc.collect()
    churn = [cupy.full(1 << 14, 9.0, dtype=cupy.float32) for _ in range(32)]  # reuse freed memory
    sync()
    expected[5] = -3.0
    assert same_bits(host(result), expected)
    del churn


def test_a_jax_array_still_being_computed_is_ordered_not_handed_over() -> None:
    """JAX dispatches asynchronously: an array whose computation is still running is
    declined by the hand-over, and the DLPack route orders torch behind JAX's work."""
    if not {"jax", "torch"} <= set(GPU):
        pytest.skip("needs jax and torch")
    import jax
    import jax.numpy as jnp

    n = 4096
    zerocopy.to(jnp.zeros(n, dtype=jnp.float32).block_until_ready(), "torch")  # the lane's plan
    # One dispatch of a device-side loop: the work queued does not depend on how fast
    # Python dispatches (20 separate steps once finished before the check on the H200).
    steps = jax.jit(lambda m, k: jax.lax.fori_loop(
        0, k, lambda _, a: jnp.tanh(a @ a) * 0.5 + 0.25, m))
    m = jnp.full((n, n), 0.01, dtype=jnp.float32).block_until_ready()
    steps(m, 1).block_until_ready()  # compiled before the timed dispatch
    for k in (400, 4000):  # hundreds of milliseconds of queued work, then seconds
        y = steps(m, k)[0]
        if not y.is_ready():
            break
    assert not y.is_ready(), "JAX finished before the conversion: the case is not shown"
    result = zerocopy.to(y, "torch")
    values = result.cpu().numpy()  # torch's default stream, ordered behind JAX's work
    assert same_bits(values, np.asarray(y))
    assert result.data_ptr() == zerocopy.inspect(y).ptr


def test_a_grad_tracking_tensor_into_numba_keeps_the_full_run() -> None:
    """The hand-over would hold the tensor itself (and its autograd graph) in the result;
    run() holds the detached tensor: such tensors keep run()."""
    if not {"torch", "numba"} <= set(GPU):
        pytest.skip("needs torch and numba")
    import torch

    x = torch.ones(256, device="cuda", requires_grad=True) * 2  # not a leaf: it has a graph
    zerocopy.to(x, "numba")
    plan = lane_plan(x, "numba")
    assert plan is not None and plan.fast == plan.run, str(plan)
    result = zerocopy.to(x, "numba")
    assert zerocopy.inspect(result).ptr == x.data_ptr()
    assert same_bits(result.copy_to_host(), np.full(256, 2.0, np.float32))


def test_fast_lane_with_cupy_on_a_side_stream_orders_the_read() -> None:
    """CuPy's current stream is not the default one: the lane declines the direct hand-over
    and the plan's DLPack handshake orders torch's stream behind the slow write."""
    if not {"cupy", "torch"} <= set(GPU):
        pytest.skip("needs cupy and torch")
    import cupy
    import torch

    warm = cupy.zeros(1 << 20, dtype=cupy.float32)
    zerocopy.to(warm, "torch")  # the lane's plan exists before the timed call
    x, stream = _cupy_slow_producer(1 << 20)
    with stream:  # the user's current CuPy stream is the producer's
        result = zerocopy.to(x, "torch")
        copy = result.clone()  # on torch's default stream, at once
    torch.cuda.synchronize()
    values = copy.cpu().numpy()
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: the read raced the write"


def test_fast_lane_with_torch_on_a_side_stream_orders_the_read() -> None:
    if not {"cupy", "torch"} <= set(GPU):
        pytest.skip("needs cupy and torch")
    import cupy
    import torch

    n = 1 << 20
    zerocopy.to(torch.zeros(n, device="cuda"), "cupy")  # the lane's plan exists
    x = torch.zeros(n, device="cuda")
    torch.cuda.synchronize()
    producer = torch.cuda.Stream()
    with torch.cuda.stream(producer):
        torch.cuda._sleep(CYCLES)
        x.fill_(42.0)
        result = zerocopy.to(x, "cupy")  # torch's current stream is the producer's
    copy = result.copy()  # on CuPy's default stream, at once
    values = cupy.asnumpy(copy)
    torch.cuda.synchronize()
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: the read raced the write"


def _legacy_slow_write(source_name: str, n: int) -> object:
    """A float32 array of ``source_name`` whose 42.0s are written by a spin-then-write
    kernel queued on the legacy default stream (so the conversion finds it "ready" for
    the hand-over: ordered on that stream, not done)."""
    import cupy

    numba_array = None
    if source_name == "numba":
        # Made by Numba on its default stream, so its interface names no stream (an array
        # imported from CuPy would carry CuPy's stream and have waited for it on import).
        from numba import cuda

        numba_array = cuda.device_array(n, dtype=np.float32)
        x = cupy.asarray(numba_array)  # CuPy's view of the same memory, for the kernel
        x.fill(0)
    else:
        x = cupy.zeros(n, dtype=cupy.float32)
    sync()
    kernel = cupy.RawKernel(_SPIN_THEN_WRITE, "spin_then_write")
    kernel(((n + 255) // 256,), (256,), (x, np.int32(n), np.int64(CYCLES), np.float32(42.0)))  # stream 0
    if source_name == "cupy":
        return x
    if numba_array is not None:
        return numba_array
    import torch

    return torch.from_dlpack(x)  # torch's default stream is the legacy one too: no event


@pytest.mark.parametrize("source_name", ["cupy", "torch", "numba"])
def test_fast_lane_into_jax_orders_jaxs_stream_behind_the_legacy_one(source_name: str) -> None:
    """JAX imports on a stream of its own: the hand-over makes that stream wait for the
    legacy default stream's work so far, so JAX's first read sees the slow write."""
    if not {source_name, "jax", "cupy"} <= set(GPU):
        pytest.skip(f"needs {source_name}, cupy and jax")
    n = 1 << 20
    zerocopy.to(on_gpu(source_name, np.zeros(n, np.float32)), "jax")  # the lane's plan
    x = _legacy_slow_write(source_name, n)
    plan = lane_plan(x, "jax")
    assert plan is not None and plan.fast != plan.run, str(plan)
    result = zerocopy.to(x, "jax")
    values = np.asarray(result * 1.0)  # a JAX computation, queued at once on JAX's streams
    assert zerocopy.inspect(result).ptr == zerocopy.inspect(x).ptr
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: JAX read before the write"


def test_numba_to_jax_takes_the_cuda_array_interface_import_and_orders_it() -> None:
    """Numba has no DLPack: its arrays reach JAX through a capsule over their CUDA Array
    Interface (two hops, not through torch or CuPy). Numba says "ordered already" (no
    stream) of arrays on the legacy default stream; JAX's streams do not synchronise with
    that stream, so the import waits for it: the planned run (copy=False keeps run()) sees
    the slow write too."""
    if not {"numba", "jax", "cupy"} <= set(GPU):
        pytest.skip("needs numba, cupy and jax")
    n = 1 << 20
    plan = zerocopy.explain(on_gpu("numba", np.zeros(n, np.float32)), "jax")
    assert [hop.edge.target for hop in plan.hops] == ["cai", "jax"], str(plan)
    x = _legacy_slow_write("numba", n)
    assert x.__cuda_array_interface__["stream"] is None, "Numba published a stream: the case is not shown"
    result = zerocopy.to(x, "jax", copy=False)
    values = np.asarray(result * 1.0)
    assert zerocopy.inspect(result).ptr == zerocopy.inspect(x).ptr
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: JAX read before the write"


def test_control_jax_importing_without_the_wait_does_race() -> None:
    """The same import with no stream given (JAX then assumes the buffer is ready on its
    own stream) reads stale values: proof that the test above can fail."""
    if not {"cupy", "jax"} <= set(GPU):
        pytest.skip("needs cupy and jax")
    from zerocopy.adapters import jax as jax_adapter
    from zerocopy.exchange import dlpack

    imported = jax_adapter._buffer_import()
    make = dlpack.capsule_maker("float32", dlpack.CUDA, 0)
    assert imported is not None and make is not None, "JAX's importer is not reachable here"
    n = 1 << 20
    x = _legacy_slow_write("cupy", n)
    result = imported(make(x, x.data.ptr, x.shape), jax_adapter._gpu_device(0), None, dlpack.CUDA)
    values = np.asarray(result * 1.0)
    sync()
    assert not (values == 42.0).all(), "the kernel finished before JAX read: the race is not shown"


# --------------------------------------------------------------- streams

_SPIN_THEN_WRITE = r"""
extern "C" __global__ void spin_then_write(float* out, int n, long long cycles, float value) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i < n) out[i] = value;
}
"""
CYCLES = 400_000_000  # ~0.2 s on an H100 (1.98 GHz)


def _cupy_slow_producer(n: int) -> tuple[object, object]:
    import cupy

    x = cupy.zeros(n, dtype=cupy.float32)
    sync()
    kernel = cupy.RawKernel(_SPIN_THEN_WRITE, "spin_then_write")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        kernel(((n + 255) // 256,), (256,), (x, np.int32(n), np.int64(CYCLES), np.float32(42.0)))
    return x, stream


def _torch_reads(x: object, stream_arg: object) -> np.ndarray:
    import cupy
    import torch

    producer_stream = stream_arg[0]
    consumer = torch.cuda.Stream()
    with producer_stream, torch.cuda.stream(consumer):  # convert on the producer's stream
        result = zerocopy.to(x, "torch", stream=consumer if stream_arg[1] is None else stream_arg[1])
        copy = result.clone()  # runs on the consumer stream at once
    consumer.synchronize()
    out = copy.cpu().numpy()
    cupy.cuda.runtime.deviceSynchronize()
    return out


def test_stream_race_cupy_to_torch_is_ordered() -> None:
    if not {"cupy", "torch"} <= set(GPU):
        pytest.skip("needs cupy and torch")
    x, stream = _cupy_slow_producer(1 << 20)
    values = _torch_reads(x, (stream, None))
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: the read raced the write"


def test_stream_race_control_no_sync_does_race() -> None:
    """The same read with NO_SYNC sees stale values: proof that the test above can fail."""
    if not {"cupy", "torch"} <= set(GPU):
        pytest.skip("needs cupy and torch")
    x, stream = _cupy_slow_producer(1 << 20)
    values = _torch_reads(x, (stream, zerocopy.NO_SYNC))
    assert not (values == 42.0).all(), "the kernel finished before the read: the race is not shown"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # CAI, then DLPack (bfloat16)
def test_stream_race_torch_to_cupy_is_ordered(dtype: str) -> None:
    if not {"cupy", "torch"} <= set(GPU):
        pytest.skip("needs cupy and torch")
    import cupy
    import torch

    n = 1 << 20
    x = torch.zeros(n, dtype=getattr(torch, dtype), device="cuda")
    torch.cuda.synchronize()
    producer = torch.cuda.Stream()
    consumer = cupy.cuda.Stream(non_blocking=True)
    with torch.cuda.stream(producer):
        torch.cuda._sleep(CYCLES)
        x.fill_(42.0)
        try:
            result = zerocopy.to(x, "cupy", stream=consumer)
        except zerocopy.ZeroCopyError as exc:
            pytest.skip(f"cupy cannot take {dtype}: {exc}")
    with consumer:
        copy = result.copy()  # queued on the consumer stream at once
    consumer.synchronize()
    values = host(copy).astype(np.float32)
    torch.cuda.synchronize()
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: the read raced the write"


def test_stream_accepts_raw_handles_and_every_framework_stream() -> None:
    import cupy

    x = cupy.arange(16, dtype=cupy.float32)
    streams = [cupy.cuda.Stream(non_blocking=True), 1, 2, zerocopy.NO_SYNC]
    if "torch" in GPU:
        import torch

        streams.append(torch.cuda.Stream())
    if "numba" in GPU:
        import numba.cuda

        streams.append(numba.cuda.stream())
    targets = [t for t in GPU if t != "cupy"]
    for stream, target in itertools.product(streams, targets):
        out = zerocopy.to(x, target, stream=stream)
        sync()
        assert zerocopy.inspect(out).ptr == int(x.data.ptr), (stream, target)


# --------------------------------------------------------------- devices

@pytest.mark.multigpu
@pytest.mark.parametrize("source_name", GPU)
def test_device_one_stays_on_device_one(source_name: str) -> None:
    import cupy

    expected = np.arange(32, dtype=np.float32)
    with cupy.cuda.Device(0):  # the current device is 0: placement must come from the pointer
        source = on_gpu(source_name, expected, device=1)
        assert zerocopy.inspect(source).device == ("cuda", 1)
        for target in GPU:
            if target == source_name:
                continue
            result = zerocopy.to(source, target)
            info = zerocopy.inspect(result)
            assert info.device == ("cuda", 1), (source_name, target, info.device)
            assert info.ptr == zerocopy.inspect(source).ptr
            assert same_bits(host(result), expected)


def test_device_option_moves_host_data_and_says_so() -> None:
    x = np.arange(1024, dtype=np.float32)
    for target in GPU:
        plan = zerocopy.explain(x, target, device="cuda:0")
        assert plan.copies and plan.copied_bytes == x.nbytes, str(plan)
        out = zerocopy.to(x, target, device="cuda:0")
        info = zerocopy.inspect(out)
        assert info.framework == target and info.device == ("cuda", 0)
        assert same_bits(host(out), x)
        with pytest.raises(zerocopy.NotZeroCopyError):
            zerocopy.to(x, target, device="cuda:0", copy=False)


@pytest.mark.parametrize("source_name", GPU)
def test_device_to_host_copies_with_copy_none_and_raises_with_copy_false(source_name: str) -> None:
    expected = np.arange(1 << 19, dtype=np.float32)  # 2 MiB: CuPy stages through pinned memory
    source = on_gpu(source_name, expected)
    plan = zerocopy.explain(source, "numpy")
    assert plan.copies and any("moved to cpu" in c for c in plan.caveats), str(plan)
    out = zerocopy.to(source, "numpy")
    assert isinstance(out, np.ndarray) and same_bits(out, expected)
    with pytest.raises(zerocopy.NotZeroCopyError):
        zerocopy.to(source, "numpy", copy=False)
    moved = zerocopy.to(source, "torch" if source_name != "torch" else "jax", device="cpu")
    assert zerocopy.inspect(moved).device == ("cpu", 0)
    assert same_bits(host(moved), expected)


def test_bfloat16_through_cai_is_refused_not_void() -> None:
    if "torch" not in GPU:
        pytest.skip("needs torch")
    import torch

    x = torch.ones(8, dtype=torch.bfloat16, device="cuda")
    from zerocopy.exchange import cai

    with pytest.raises(zerocopy.UnsupportedDtypeError):
        cai.read(x)  # torch publishes '|V2'
    if "numba" in GPU:
        with pytest.raises(zerocopy.ZeroCopyError):
            zerocopy.to(x, "numba")  # Numba only speaks CAI: refused, never void bytes
    assert numpy_dtype("bfloat16").itemsize == 2
