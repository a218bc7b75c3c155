"""TensorFlow on the GPU, proven like the other GPU pairs: same device pointer, a write
through the other side seen by TensorFlow (TF tensors are immutable: writes go through a
CuPy view of the other side's memory), values bit for bit, the source kept alive after
``del`` + gc; every dtype both sides hold, bfloat16 included (by DLPack); cuDF through
CuPy; the ordering TF's stream-less DLPack needs; TF in the shared pool.

TensorFlow's GPU wheels bring CUDA 12 libraries, the other frameworks CUDA 13. Whether
both work in one process is decided by fresh-process probes first (nothing of TF is
imported into the pytest process before they pass):

* ``test_tensorflow_gpu_diagnostic_in_a_fresh_process``: TF first, then CuPy, torch, JAX,
  exchanging both ways; fails with the error text (the minimal repro) when TF sees no GPU,
  fails or crashes.
* the gate (cached, the order of this pytest process: CuPy, torch, JAX first, then TF):
  when it fails, every in-process TF GPU test skips naming the diagnostic.

Run by scripts/gpu-check where TensorFlow is importable (brought to the GPU test machine
in parts: ../shared/tools/device-chunks tensorflow-gpu); skipped (conftest) where no CUDA
GPU exists.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import zerocopy
from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.registry import adapter
from zerocopy.testing import probe_values as _probe_values

pytestmark = pytest.mark.gpu
if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed (bring it with device-chunks tensorflow-gpu)",
                allow_module_level=True)

OTHERS = tuple(n for n, module in (("cupy", "cupy"), ("torch", "torch"), ("jax", "jax"),
                                   ("numba", "numba_cuda")) if importlib.util.find_spec(module))
SRC = str(Path(__file__).resolve().parents[2] / "src")
MiB = 1 << 20
DIAGNOSTIC = "test_tensorflow_gpu_diagnostic_in_a_fresh_process"


# ----------------------------------------------------------------- fresh processes

def _fresh(code: str, *, env: dict[str, str] | None = None, drop: tuple[str, ...] = (),
           timeout: float = 300) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter. The script prints a JSON line after each step, so
    a crash still tells how far it got: the last line, plus rc and the stderr tail."""
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "TF_CPP_MIN_LOG_LEVEL": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                "TF_FORCE_GPU_ALLOW_GROWTH": "true", **(env or {})}
    for key in drop:
        full_env.pop(key, None)
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, env=full_env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return {"rc": None, "error": f"timed out after {timeout} s", "steps": {},
                "stderr": str(exc.stderr or "")[-3000:]}
    result: dict[str, Any] = {"steps": {}}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:  # a framework's own output, not ours
                continue
    result["rc"] = done.returncode
    result["stderr"] = done.stderr[-3000:]
    return result


# Shared by the probes: each step is recorded (value or error text) and printed at once.
_STEPS = r"""
import json, sys, traceback
import numpy as np
out = {"steps": {}, "failed": None, "running": None}
def step(name, fn):
    ok = True
    out["running"] = name  # left set if the process dies in this step
    print(json.dumps(out, default=str), flush=True)
    try:
        out["steps"][name] = fn()
    except BaseException as exc:
        ok = False
        out["steps"][name] = "ERROR " + type(exc).__name__ + ": " + str(exc)[:800]
        out["failed"] = out["failed"] or name
        out["traceback"] = traceback.format_exc()[-1500:]
    out["running"] = None
    print(json.dumps(out, default=str), flush=True)
    return ok

def tf_import():
    import tensorflow as tf
    info = tf.sysconfig.get_build_info()
    return {"version": tf.__version__, "cuda": info.get("cuda_version"),
            "cudnn": info.get("cudnn_version"), "built_with_cuda": tf.test.is_built_with_cuda()}

def tf_gpus():
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise RuntimeError("TensorFlow sees no GPU (its CUDA 12 libraries were not found or "
                           "failed to load: see stderr)")
    return [g.name for g in gpus]

def tf_tensor():
    import tensorflow as tf
    global T
    with tf.device("/GPU:0"):
        T = tf.identity(tf.constant(np.arange(16, dtype=np.float32)))
    return {"device": T.device, "backing": T.backing_device, "sum": float(T.numpy().sum())}

def tf_kernels():
    import tensorflow as tf
    with tf.device("/GPU:0"):
        a = tf.ones([512, 512])
        m = float(tf.reduce_sum(tf.linalg.matmul(a, a)).numpy())
        image = tf.ones([1, 8, 8, 3])
        conv = float(tf.reduce_sum(tf.nn.conv2d(image, tf.ones([3, 3, 3, 4]), 1, "SAME")).numpy())
    return {"matmul": m, "conv2d": conv}

def exchange(name):
    import importlib
    import zerocopy
    mod = importlib.import_module(name)
    if name == "jax":
        importlib.import_module("jax.numpy").ones(4).block_until_ready()
    elif name == "torch":
        assert mod.cuda.is_available(), "torch sees no CUDA"
        mod.ones(4, device="cuda").sum().item()
    else:
        float(mod.ones(4).sum())
    there = zerocopy.to(T, name, copy=False)
    same = zerocopy.inspect(there).ptr == zerocopy.inspect(T).ptr
    ok_there = bool(np.array_equal(np.asarray(zerocopy.to(there, "numpy")), np.arange(16)))
    back = zerocopy.to(there, "tensorflow", copy=False)
    return {"version": mod.__version__, "same_pointer": same, "values": ok_there,
            "back_device": back.backing_device,
            "back_same_pointer": zerocopy.inspect(back).ptr == zerocopy.inspect(T).ptr,
            "back_values": bool(np.array_equal(back.numpy(), np.arange(16)))}

def raw_torch():
    import tensorflow as tf, torch.utils.dlpack
    t = torch.utils.dlpack.from_dlpack(tf.experimental.dlpack.to_dlpack(T))
    return {"device": str(t.device), "same_pointer": t.data_ptr() == zerocopy_ptr(T)}

def zerocopy_ptr(x):
    import zerocopy
    return zerocopy.inspect(x).ptr
"""

_CORE = ("tf_import", "tf_gpus", "tf_tensor")


def _check_exchange(steps: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """What went wrong in the probe's exchange steps (an empty list: nothing)."""
    wrong = []
    for name in names:
        got = steps.get(f"exchange_{name}")
        checks = ("same_pointer", "values", "back_same_pointer", "back_values")
        if not isinstance(got, dict) or not all(got.get(key) for key in checks):
            wrong.append(f"exchange_{name}: {got}")
    return wrong


def _summary(result: dict[str, Any]) -> str:
    return (f"rc={result.get('rc')} failed={result.get('failed')} died in={result.get('running')} "
            f"error={result.get('error')}\n"
            f"steps={json.dumps(result.get('steps'), default=str, indent=1)}\n"
            f"traceback={result.get('traceback', '')}\nstderr tail:\n{result.get('stderr', '')}")


@functools.cache
def _gate_run() -> dict[str, Any]:
    """This pytest process's order (cuDF, CuPy, torch, JAX, Numba started, then TF), in a
    fresh process: (whether TF GPU tests may run here, why not). TF must start, see a GPU and
    make a GPU tensor, and nothing may crash; exchange failures are the pair tests' to show."""
    names = tuple(n for n in ("cupy", "torch", "jax") if n in OTHERS)
    started = tuple(n for n in ("cudf", "cupy", "torch", "jax", "numba_cuda")
                    if importlib.util.find_spec(n))
    result = _fresh(_STEPS + f"""
import importlib
def start(name):
    mod = importlib.import_module(name)
    if name == "jax":
        importlib.import_module("jax.numpy").ones(4).block_until_ready()
    elif name == "torch":
        mod.ones(4, device="cuda").sum().item()
    elif name == "cudf":
        float(mod.Series(np.ones(4)).sum())
    elif name == "numba_cuda":
        importlib.import_module("numba.cuda").to_device(np.ones(4)).copy_to_host()
    else:
        float(mod.ones(4).sum())
    return {{"version": getattr(mod, "__version__", "?")}}
for name in {started!r}:
    step("start_" + name, lambda: start(name))
ok = step("tf_import", tf_import) and step("tf_gpus", tf_gpus) and step("tf_tensor", tf_tensor)
if ok:
    for name in {names!r}:
        step("exchange_" + name, lambda: exchange(name))
    step("tf_kernels", tf_kernels)  # last: in-process tests need no cuBLAS/cuDNN
""")
    return result


def _gate() -> tuple[bool, str]:
    """(whether TF GPU tests may run in this process, why not), from the cached gate run."""
    result = _gate_run()
    steps = result.get("steps", {})
    core = all(isinstance(steps.get(name), (dict, list)) for name in _CORE)
    died_in_kernels = result.get("running") == "tf_kernels"  # the kernels test reports that
    if (result.get("rc") != 0 and not died_in_kernels) or not core:
        return False, f"{result.get('failed') or 'crashed'}: {_summary(result)[:1500]}"
    return True, ""


def _require_gate() -> None:
    ok, why = _gate()
    if not ok:
        pytest.skip(f"TensorFlow GPU cannot run next to the CUDA 13 frameworks (see {DIAGNOSTIC}): {why}")


@pytest.fixture(scope="module")
def tf() -> Any:
    _require_gate()
    # Before TF's GPU starts in this process: by default it takes almost the whole card,
    # which the GPU tests after this file need. Put back once TF has read it.
    previous = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow

        gpus = tensorflow.config.list_physical_devices("GPU")
        for gpu in gpus:
            with contextlib.suppress(RuntimeError):  # already started: too late to change
                tensorflow.config.experimental.set_memory_growth(gpu, True)
        if not gpus:
            pytest.skip(f"TensorFlow sees no GPU in this process (see {DIAGNOSTIC})")
        with tensorflow.device("/GPU:0"):
            tensorflow.zeros([4]).numpy()  # TF's GPU starts here, growing as it needs
    finally:
        if previous is None:
            os.environ.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)
        else:
            os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = previous
    return tensorflow


def test_tensorflow_gpu_diagnostic_in_a_fresh_process() -> None:
    """TF first, then the CUDA 13 frameworks, in one fresh process: the minimal repro when
    they cannot share it. Then this pytest process's order (the gate)."""
    names = tuple(n for n in ("cupy", "torch", "jax") if n in OTHERS)
    result = _fresh(_STEPS + f"""
ok = step("tf_import", tf_import) and step("tf_gpus", tf_gpus) and step("tf_tensor", tf_tensor)
if ok:
    for name in {names!r}:
        step("exchange_" + name, lambda: exchange(name))
    if "torch" in {names!r}:
        step("raw_torch_from_tf_capsule", raw_torch)
""")
    steps = result.get("steps", {})
    assert result.get("rc") == 0 and not result.get("failed"), _summary(result)
    assert all(name in steps for name in _CORE), _summary(result)
    assert "/device:GPU:0" in steps["tf_tensor"]["backing"], _summary(result)
    assert steps["tf_tensor"]["sum"] == float(sum(range(16)))
    assert not _check_exchange(steps, names), _summary(result)
    ok, why = _gate()
    assert ok, f"TF first works, but not after CuPy/torch/JAX started (this pytest's order): {why}"


def test_tensorflow_gpu_kernels_next_to_the_cuda13_frameworks() -> None:
    """cuBLAS and cuDNN of TF's CUDA 12 set, with cuDF/CuPy/torch/JAX/Numba (CUDA 13) started
    first (the gate's run)."""
    _require_gate()
    result = _gate_run()
    assert result.get("rc") == 0 and isinstance(result["steps"].get("tf_kernels"), dict), _summary(result)
    # ones: matmul 512 x 512 entries of 512; conv2d (SAME, 3x3x3 -> 4): per axis 2+6*3+2 = 22
    # window pixels, so 22 * 22 * 3 channels * 4 filters.
    assert result["steps"]["tf_kernels"] == {"matmul": 512.0 ** 3, "conv2d": 22.0 * 22 * 3 * 4}, \
        _summary(result)


# ----------------------------------------------------------------- helpers

def _held(name: str) -> frozenset[str]:
    held = adapter(name).dtypes()
    if name == "jax":
        from zerocopy.adapters.jax import x64_enabled

        held = held if x64_enabled() else held - {"int64", "uint64", "float64", "complex128"}
    return held


def _tf_on_gpu(tf: Any, values: np.ndarray) -> Any:
    """A TF-native GPU tensor holding ``values`` (a GPU op's result, not an import)."""
    with tf.device("/GPU:0"):
        return tf.identity(tf.constant(values))


def _on_gpu(name: str, values: np.ndarray) -> Any:
    try:
        if name in ("cupy", "numba"):
            return adapter(name).make(values, 0)
        if name == "torch":
            return adapter("torch").make(values).to("cuda:0")
        if name == "jax":
            import jax

            gpu = next(d for d in jax.devices() if d.platform in ("gpu", "cuda"))
            return jax.device_put(values, gpu)
    except Exception as exc:  # the framework cannot hold this dtype on the GPU
        pytest.skip(f"{name} cannot hold {values.dtype} on cuda:0: {exc}")
    raise AssertionError(name)


def _ptr(obj: Any) -> int:
    return zerocopy.inspect(obj).ptr


def _host(obj: Any) -> np.ndarray:
    return np.asarray(adapter(zerocopy.inspect(obj).framework).to_host(obj))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()


def _bytes_view(obj: Any) -> Any:
    """A CuPy uint8 view over ``obj``'s device memory (any dtype, bfloat16 included)."""
    import cupy

    info = zerocopy.inspect(obj)
    assert info.device == ("cuda", 0), info.device
    memory = cupy.cuda.UnownedMemory(info.ptr, info.nbytes, obj, 0)
    return cupy.ndarray((info.nbytes,), cupy.uint8, cupy.cuda.MemoryPointer(memory, 0))


def _copy_element(obj: Any, source: int, target: int, itemsize: int) -> None:
    """obj[target] := obj[source], written through a CuPy view (TF and JAX are immutable)."""
    view = _bytes_view(obj)
    view[target * itemsize:(target + 1) * itemsize] = view[source * itemsize:(source + 1) * itemsize]
    _sync()


def _sync() -> None:
    import cupy

    cupy.cuda.runtime.deviceSynchronize()


def _written(values: np.ndarray) -> np.ndarray:
    expected = values.copy()
    expected[3] = values[5]
    return expected


# ----------------------------------------------------------------- pairs, both ways

@pytest.mark.parametrize("target", OTHERS)
@pytest.mark.parametrize("dtype", SHARED_DTYPES)
def test_tensorflow_gpu_to_each_framework_shares(tf: Any, target: str, dtype: str) -> None:
    if dtype not in _held(target) or dtype not in adapter("tensorflow").dtypes():
        pytest.skip(f"{target} does not hold {dtype}")
    values = _probe_values(dtype, 48)
    source = _tf_on_gpu(tf, values)
    placed = zerocopy.inspect(source).device
    if placed != ("cuda", 0):  # int32: TF keeps int32 results of GPU ops in host memory
        assert placed == ("cpu", 0) and "CPU" in source.backing_device, (placed, source.backing_device)
        pytest.skip(f"TensorFlow keeps {dtype} results of GPU ops in host memory ({source.backing_device}),"
                    f" and zerocopy says so; {dtype} imported into TF stays on the GPU (next test)")
    plan = zerocopy.explain(source, target, copy=False)
    assert not plan.copies, str(plan)
    result = zerocopy.to(source, target, copy=False)
    info = zerocopy.inspect(result)
    assert info.framework == target and info.device == ("cuda", 0)
    assert str(info.dtype) == dtype
    assert info.ptr == _ptr(source)
    assert _same_bits(_host(result), values)
    # A write through the other side (a CuPy view of the result's memory) is seen by TF.
    _copy_element(result, 5, 3, values.itemsize)
    assert _same_bits(source.numpy(), _written(values))


@pytest.mark.parametrize("source_name", OTHERS)
@pytest.mark.parametrize("dtype", SHARED_DTYPES)
def test_each_framework_to_tensorflow_gpu_shares(tf: Any, source_name: str, dtype: str) -> None:
    if dtype not in _held(source_name) or dtype not in adapter("tensorflow").dtypes():
        pytest.skip(f"{source_name} does not hold {dtype}")
    values = _probe_values(dtype, 48)
    source = _on_gpu(source_name, values)
    assert str(zerocopy.inspect(source).dtype) == dtype
    plan = zerocopy.explain(source, "tensorflow", copy=False)
    assert not plan.copies, str(plan)
    if dtype == "bfloat16":
        assert "cai" not in [h.edge.target for h in plan.hops], str(plan)  # never through CAI
    result = zerocopy.to(source, "tensorflow", copy=False)
    info = zerocopy.inspect(result)
    assert info.framework == "tensorflow" and info.device == ("cuda", 0), result.backing_device
    assert str(info.dtype) == dtype
    assert info.ptr == _ptr(source)
    # A write through the source's memory (CuPy view), then TF's values: bit for bit.
    _copy_element(source, 5, 3, values.itemsize)
    assert _same_bits(result.numpy(), _written(values))


def test_tensorflow_host_probe_stays_on_the_host_where_a_gpu_is_the_default(tf: Any) -> None:
    # tf.constant alone lands on the GPU here: the CPU matrix on the H200 had no TF row
    # ("DLPack device (2, 0) is not host memory") and explain built GPU probes.
    probe = adapter("tensorflow").make(np.arange(8, dtype=np.float32))
    assert "CPU" in probe.backing_device and zerocopy.inspect(probe).device == ("cpu", 0)
    assert zerocopy.to(probe, "numpy", copy=False)[7] == 7


@pytest.mark.parametrize("source_name", ["cupy", "torch"])
def test_tensorflow_gpu_reads_after_its_first_read_see_later_writes(tf: Any, source_name: str) -> None:
    # zerocopy.testing reads a TF GPU tensor through a fresh device-side copy: the GPU
    # matrix read each result before and after a write, and x.numpy() the second time
    # returned the first read's values (every X->tensorflow cell said "write not seen").
    values = _probe_values("float32", 48)
    result = zerocopy.to(_on_gpu(source_name, values), "tensorflow", copy=False)
    assert _same_bits(_host(result), values)
    _copy_element(result, 5, 3, values.itemsize)
    assert _same_bits(_host(result), _written(values))
    with tf.device("/GPU:0"):  # what a GPU op computes from it sees the write too
        assert float(tf.reduce_sum(result)) == float(_written(values).sum())


@pytest.mark.parametrize("target", OTHERS)
def test_tensorflow_gpu_source_kept_alive_by_the_result(tf: Any, target: str) -> None:
    import cupy

    values = np.linspace(0, 1, 1 << 16, dtype=np.float32)
    source = _tf_on_gpu(tf, values)
    result = zerocopy.to(source, target)
    assert _ptr(result) == _ptr(source)
    del source
    gc.collect()
    with tf.device("/GPU:0"):  # reuse what TF freed, if it had been freed
        churn = [tf.fill([1 << 16], 9.0) for _ in range(32)]
    cupy_churn = [cupy.full(1 << 16, 9.0, dtype=cupy.float32) for _ in range(32)]
    _sync()
    assert _same_bits(_host(result), values)
    del churn, cupy_churn


@pytest.mark.parametrize("source_name", OTHERS)
def test_tensorflow_gpu_result_keeps_its_source_alive(tf: Any, source_name: str) -> None:
    import cupy

    values = np.linspace(0, 1, 1 << 16, dtype=np.float32)
    source = _on_gpu(source_name, values)
    result = zerocopy.to(source, "tensorflow")
    assert _ptr(result) == _ptr(source)
    del source
    gc.collect()
    churn = [_on_gpu(source_name, np.full(1 << 16, 9.0, np.float32)) for _ in range(16)]
    cupy_churn = [cupy.full(1 << 16, 9.0, dtype=cupy.float32) for _ in range(16)]
    _sync()
    assert _same_bits(result.numpy(), values)
    del churn, cupy_churn


# ----------------------------------------------------------------- explain, devices

def test_explain_names_tensorflow_gpu_edges_and_their_ordering(tf: Any) -> None:
    import cupy

    source = _tf_on_gpu(tf, np.arange(8, dtype=np.float32))
    info = zerocopy.inspect(source)
    assert info.framework == "tensorflow" and info.device == ("cuda", 0) and info.readonly
    plan = zerocopy.explain(source, "cupy")
    assert not plan.copies and "DLPack legacy" in plan.protocols, str(plan)
    into = zerocopy.explain(cupy.arange(8, dtype=cupy.float32), "tensorflow")
    assert not into.copies, str(into)
    assert any("waits on the host" in c for c in into.caveats), str(into)


def test_tensorflow_gpu_to_host_is_a_stated_copy(tf: Any) -> None:
    values = np.arange(1024, dtype=np.float32)
    source = _tf_on_gpu(tf, values)
    plan = zerocopy.explain(source, "numpy")
    assert plan.copies and any("moved to cpu" in c for c in plan.caveats), str(plan)
    out = zerocopy.to(source, "numpy")
    assert isinstance(out, np.ndarray) and _same_bits(out, values)
    with pytest.raises(zerocopy.NotZeroCopyError):
        zerocopy.to(source, "numpy", copy=False)
    moved = zerocopy.to(values, "tensorflow", device="cuda:0")
    assert zerocopy.inspect(moved).device == ("cuda", 0) and _same_bits(moved.numpy(), values)


def test_strided_sources_reach_tensorflow_gpu_only_by_a_stated_copy(tf: Any) -> None:
    import cupy

    base = cupy.arange(64 * 32, dtype=cupy.float32).reshape(64, 32)
    for view in (base[::2], base.T):
        with pytest.raises(zerocopy.NotZeroCopyError):
            zerocopy.to(view, "tensorflow", copy=False)
        plan = zerocopy.explain(view, "tensorflow")
        out = zerocopy.to(view, "tensorflow")
        assert plan.copies and np.array_equal(out.numpy(), cupy.asnumpy(view))
        assert zerocopy.inspect(out).device == ("cuda", 0)
    offset = base[1:]  # C-contiguous from an offset: shares
    out = zerocopy.to(offset, "tensorflow", copy=False)
    assert _ptr(out) == int(offset.data.ptr)
    assert np.array_equal(out.numpy(), cupy.asnumpy(offset))


# ----------------------------------------------------------------- streams

_SPIN_THEN_WRITE = r"""
extern "C" __global__ void spin_then_write(float* out, int n, long long cycles, float value) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i < n) out[i] = value;
}
"""
CYCLES = 400_000_000  # ~0.2 s


def _slow_cupy_write(n: int) -> tuple[Any, Any]:
    """A CuPy array whose 42s are written by a kernel still spinning on a side stream."""
    import cupy

    x = cupy.zeros(n, dtype=cupy.float32)
    _sync()
    kernel = cupy.RawKernel(_SPIN_THEN_WRITE, "spin_then_write")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        kernel(((n + 255) // 256,), (256,), (x, np.int32(n), np.int64(CYCLES), np.float32(42.0)))
    return x, stream


def test_import_into_tensorflow_waits_for_the_producers_stream(tf: Any) -> None:
    x, stream = _slow_cupy_write(1 << 20)
    # Converted while the producer's stream is current (the DLPack convention). No copy=False
    # and no inspect() before the read: reading a TF pointer synchronises the whole GPU.
    with stream:
        result = zerocopy.to(x, "tensorflow")
    values = result.numpy()  # TF reads on its own stream, right away
    _sync()
    assert (values == 42.0).all(), f"{(values != 42.0).sum()} stale values: TF read before the write"


def test_import_into_tensorflow_with_no_sync_does_race(tf: Any) -> None:
    """The same import with NO_SYNC: the race the test above guards against, when it shows."""
    x, stream = _slow_cupy_write(1 << 20)
    with stream:
        result = zerocopy.to(x, "tensorflow", stream=zerocopy.NO_SYNC)
    values = result.numpy()
    _sync()
    if (values == 42.0).all():
        pytest.skip("TensorFlow's read waited for the kernel anyway: the race did not show")
    assert (values == 0.0).any()


def test_export_from_tensorflow_waits_for_tensorflows_work(tf: Any) -> None:
    if "torch" not in OTHERS:
        pytest.skip("needs torch")
    import torch

    with tf.device("/GPU:0"):
        a = tf.ones([4096, 4096])
        product = tf.linalg.matmul(tf.linalg.matmul(a, a), a)  # queued on TF's stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        tensor = zerocopy.to(product, "torch", copy=False)
        copy = tensor.clone()  # runs on a torch stream that TF never ordered
    side.synchronize()
    expected = float(4096 * 4096)
    assert bool((copy == expected).all()), "torch read TF's result before TF wrote it"


# ----------------------------------------------------------------- cuDF, through CuPy

def _cudf() -> Any:
    if importlib.util.find_spec("cudf") is None:
        pytest.skip("cuDF is not installed (bring it with device-chunks cudf)")
    import cudf

    return cudf


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_cudf_series_to_tensorflow_gpu_shares(tf: Any, dtype: str) -> None:
    cudf = _cudf()
    values = _probe_values(dtype, 64)
    series = cudf.Series(values)
    plan = zerocopy.explain(series, "tensorflow", copy=False)
    assert not plan.copies, str(plan)
    result = zerocopy.to(series, "tensorflow", copy=False)
    assert zerocopy.inspect(result).device == ("cuda", 0)
    assert _ptr(result) == _ptr(series)
    _copy_element(series, 5, 3, values.itemsize)
    del series
    gc.collect()
    assert _same_bits(result.numpy(), _written(values))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_tensorflow_gpu_to_cudf(tf: Any, dtype: str) -> None:
    cudf = _cudf()
    values = _probe_values(dtype, 64)
    source = _tf_on_gpu(tf, values)
    plan = zerocopy.explain(source, "cudf")
    series = zerocopy.to(source, "cudf")
    assert isinstance(series, cudf.Series)
    assert _same_bits(series.to_numpy(), values)
    if plan.copies:  # stated, and then truly independent
        assert _ptr(series) != _ptr(source), str(plan)
        return
    assert _ptr(series) == _ptr(source), str(plan)
    _copy_element(series, 5, 3, values.itemsize)
    assert _same_bits(source.numpy(), _written(values))


# ----------------------------------------------------------------- the shared pool

def test_tensorflow_allocates_from_the_shared_pool_with_torch_and_jax() -> None:
    _require_gate()
    result = _fresh("""
        import json, os
        import zerocopy.memory as zm
        out = {}
        shared = zm.share(["tensorflow", "torch", "jax"])
        out["TF_GPU_ALLOCATOR"] = os.environ.get("TF_GPU_ALLOCATOR")
        pool = shared.base
        import torch
        used0 = pool.used()
        t = torch.ones(8 << 20, device="cuda")                       # 32 MiB
        out["torch_grew"] = pool.used() - used0
        out["torch_backend"] = torch.cuda.get_allocator_backend()
        import jax, jax.numpy as jnp
        used0 = pool.used()
        j = jnp.ones(8 << 20, dtype=jnp.float32).block_until_ready()  # 32 MiB
        out["jax_grew"] = pool.used() - used0
        out["jax_backend"] = jax.default_backend()
        import tensorflow as tf
        out["tf_gpus"] = len(tf.config.list_physical_devices("GPU"))
        print(json.dumps(out), flush=True)
        with tf.device("/GPU:0"):
            tf.fill([16], 1.0).numpy()                                  # TF's GPU starts
        tf.test.experimental.sync_devices()
        used0 = pool.used()
        with tf.device("/GPU:0"):
            x = tf.fill([16 << 20], 2.0)                                # 64 MiB
        tf.test.experimental.sync_devices()
        out["tf_grew"] = pool.used() - used0
        out["tf_backing"] = x.backing_device
        out["tf_sum"] = float(tf.reduce_sum(x[:1024]).numpy())
        try:
            out["tf_current"] = int(tf.config.experimental.get_memory_info("GPU:0")["current"])
        except Exception as exc:  # the async allocator may keep no statistics
            out["tf_current"] = f"{type(exc).__name__}: {exc}"
        out["torch_still"] = float(t[:1024].sum().item())
        out["jax_still"] = float(j[:1024].sum())
        del x
        tf.test.experimental.sync_devices()
        out["tf_freed"] = used0 - pool.used()
        out["frameworks"] = sorted(f.framework for f in shared.report().frameworks)
        print(json.dumps(out), flush=True)
    """, drop=("TF_FORCE_GPU_ALLOW_GROWTH",))  # a BFC setting; the async allocator has its own
    assert result["rc"] == 0, _summary(result)
    assert result["TF_GPU_ALLOCATOR"] == "cuda_malloc_async", _summary(result)
    assert result["torch_backend"] == "cudaMallocAsync" and result["torch_grew"] >= 32 * MiB, result
    assert result["jax_backend"] == "gpu" and result["jax_grew"] >= 32 * MiB, result
    assert result["tf_gpus"] >= 1, _summary(result)
    assert "GPU:0" in result["tf_backing"], result
    assert result["tf_grew"] >= 64 * MiB, f"TF's 64 MiB did not land in the shared pool: {result}"
    assert result["tf_sum"] == 2048.0 and result["torch_still"] == 1024.0
    assert result["jax_still"] == 1024.0
    assert result["frameworks"] == ["jax", "tensorflow", "torch"], result
