"""The one CUDA layer (``zerocopy._cuda``), proved without a GPU.

Each scenario runs in a fresh interpreter with stand-in bindings put first on the path:
a ``cuda.bindings`` that records every runtime call (two devices, or a machine with no
device) and a CuPy whose import is visible. They prove which binding is chosen, that
CuPy is never imported unless it was loaded or chosen, the exact runtime calls behind
``wait`` (one event per device, the previous device restored), and that a machine
without a GPU or without a binding gets typed errors. The real bindings run the same
paths in scripts/gpu-check (tests/memory/test_memory_gpu.py, the exchange GPU tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A cuda.bindings stand-in: the call shapes zerocopy uses, each call recorded.
FAKE_RUNTIME = '''
import enum, os
from types import SimpleNamespace

class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2
    cudaErrorNoDevice = 100

class cudaMemPoolAttr(enum.IntEnum):
    cudaMemPoolAttrReleaseThreshold = 4

OK = cudaError_t.cudaSuccess
NO_GPU = os.environ.get("FAKE_NO_GPU") == "1"
CALLS = []
STATE = {"device": 0, "events": 0}
cudaMemPool_t = cudaStream_t = int


def _call(name, *args, result=()):
    CALLS.append([name, *args])
    if NO_GPU:
        return (cudaError_t.cudaErrorNoDevice, *(0 for _ in result))
    return (OK, *result)


def cudaGetDeviceCount():
    return _call("cudaGetDeviceCount", result=(2,))

def cudaGetDevice():
    return _call("cudaGetDevice", result=(STATE["device"],))

def cudaSetDevice(device):
    STATE["device"] = device
    return _call("cudaSetDevice", device)

def cudaEventCreateWithFlags(flags):
    STATE["events"] += 1
    return _call("cudaEventCreateWithFlags", flags, result=(1000 + STATE["events"],))

def cudaEventRecord(event, stream):
    return _call("cudaEventRecord", event, stream)

def cudaStreamWaitEvent(stream, event, flags):
    return _call("cudaStreamWaitEvent", stream, event, flags)

def cudaStreamSynchronize(stream):
    return _call("cudaStreamSynchronize", stream)

def cudaPointerGetAttributes(ptr):
    return _call("cudaPointerGetAttributes", ptr, result=(SimpleNamespace(type=3, device=1),))

def cudaMemGetInfo():
    return _call("cudaMemGetInfo", result=(5, 10))

def cudaDeviceGetDefaultMemPool(device):
    return _call("cudaDeviceGetDefaultMemPool", device, result=(0x77,))

def cudaMallocFromPoolAsync(nbytes, pool, stream):
    CALLS.append(["cudaMallocFromPoolAsync", nbytes, pool, stream])
    if nbytes > 1 << 40:
        return (cudaError_t.cudaErrorMemoryAllocation, 0)
    return (OK, 0x5000)

def cudaFreeAsync(ptr, stream):
    return _call("cudaFreeAsync", ptr, stream)
'''

# A CuPy stand-in: importing it is visible in sys.modules; its runtime records calls.
FAKE_CUPY_RUNTIME = '''
CALLS = []

class CUDARuntimeError(RuntimeError):
    def __init__(self, status):
        super().__init__(f"cudaError {status}")
        self.status = status

def getDevice():
    CALLS.append(["getDevice"])
    return 0

def eventCreateWithFlags(flags):
    CALLS.append(["eventCreateWithFlags", flags])
    return 2001

def eventRecord(event, stream):
    CALLS.append(["eventRecord", event, stream])

def streamWaitEvent(stream, event, flags):
    CALLS.append(["streamWaitEvent", stream, event, flags])

def streamSynchronize(stream):
    raise CUDARuntimeError(400)
'''


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    files = {
        "cuda/bindings/__init__.py": "",
        "cuda/bindings/runtime.py": FAKE_RUNTIME,
        "cuda/bindings/driver.py": "cuuint64_t = int\n",
        "cupy/__init__.py": "from cupy import cuda\n",
        "cupy/cuda/__init__.py": "from cupy.cuda import runtime\n",
        "cupy/cuda/runtime.py": FAKE_CUPY_RUNTIME,
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def run(*code: str, path: Path | None = None, env: dict[str, str] | None = None) -> dict:
    """Run the ``code`` blocks in a fresh interpreter (``path`` first on sys.path); the last
    line printed is JSON."""
    paths = [str(path)] if path is not None else []
    full_env = {k: v for k, v in os.environ.items() if k != "ZEROCOPY_CUDA_BINDING"}
    full_env |= {"PYTHONPATH": os.pathsep.join([*paths, SRC]), **(env or {})}
    script = "\n".join(textwrap.dedent(block) for block in code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=full_env, timeout=120, check=False)
    assert done.returncode == 0, f"subprocess failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# What every scenario prints: each query's answer or error type, and what got imported.
QUERIES = """
    import json, sys
    sys.modules.update(BLOCKED)
    from zerocopy import _cuda
    from zerocopy.exchange import streams

    def attempt(call):
        try:
            return call()
        except Exception as exc:
            return {"error": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}

    answers = {
        "count": attempt(_cuda.device_count),
        "single": attempt(_cuda.single_gpu),
        "current": attempt(_cuda.current_device),
        "pointer": attempt(lambda: _cuda.pointer_device(0x9000)),
        "wait": attempt(lambda: _cuda.wait(7, 8)),
        "order": attempt(lambda: streams.order(8, 7, 0)),
        "sync": attempt(lambda: _cuda.synchronize_stream(7)),
        "memory": attempt(_cuda.mem_info),
    }
"""
DONE = """
    imported = sorted(m for m in ("cupy", "cuda.bindings.runtime") if sys.modules.get(m) is not None)
    print(json.dumps({"answers": answers, "imported": imported, "binding": attempt(lambda: _cuda.binding().name)}))
"""


def test_no_binding_every_query_raises_framework_not_installed_and_imports_nothing() -> None:
    out = run("BLOCKED = {'cuda': None}  # import cuda -> ModuleNotFoundError", QUERIES, DONE)
    for name, answer in out["answers"].items():
        assert "FrameworkNotInstalledError" in answer["error"], (name, answer)
        assert "ModuleNotFoundError" in answer["error"]  # what `except ImportError` catches
        assert "Hint: pip install cuda-bindings" in answer["message"]
    assert out["imported"] == []


def test_no_gpu_raises_device_error_and_never_imports_an_installed_cupy(fakes: Path) -> None:
    out = run("BLOCKED = {}", QUERIES, DONE, path=fakes, env={"FAKE_NO_GPU": "1"})
    assert out["binding"] == "cuda.bindings"
    for name, answer in out["answers"].items():
        assert {"DeviceError", "ZeroCopyError", "ValueError"} <= set(answer["error"]), (name, answer)
        assert "cudaErrorNoDevice" in answer["message"] and "Hint: no usable CUDA GPU" in answer["message"]
    assert out["imported"] == ["cuda.bindings.runtime"]  # CuPy is installed, and stays unloaded


def _has_cuda_bindings() -> bool:
    try:
        return importlib.util.find_spec("cuda.bindings") is not None
    except ImportError:
        return False


@pytest.mark.skipif(not _has_cuda_bindings(), reason="needs cuda.bindings (the GPU image has it)")
def test_real_binding_with_no_visible_device_raises_typed_errors() -> None:
    out = run("BLOCKED = {}", QUERIES, DONE, env={"CUDA_VISIBLE_DEVICES": ""})
    for name, answer in out["answers"].items():
        if name in ("count", "single") and answer in (0, False):
            continue  # the runtime may count 0 devices instead of failing
        assert isinstance(answer, dict) and "DeviceError" in answer["error"], (name, answer)
    assert "cupy" not in out["imported"]


def test_wait_records_one_event_per_device_and_restores_the_device(fakes: Path) -> None:
    out = run("""
        import json, sys
        import cuda.bindings.runtime as rt
        from zerocopy import _cuda
        from zerocopy.exchange import streams

        _cuda.wait(7, 8, device=1)      # device 0 is current: switch, wait, switch back
        _cuda.wait(9, 8, device=1)      # the same event again
        _cuda.wait(5, 6)                # on the current device: its own event
        skipped = [streams.order(8, 8, 1), streams.order(8, streams.NO_SYNC, 1),
                   streams.order(None, 8, 1)]
        ordered = streams.order(8, 0, 0)  # 0 is the legacy default stream, spelled 1
        print(json.dumps({"calls": rt.CALLS, "skipped": skipped, "ordered": ordered,
                          "cupy": "cupy" in sys.modules}))
    """, path=fakes)
    assert out["calls"] == [
        ["cudaGetDevice"], ["cudaSetDevice", 1], ["cudaEventCreateWithFlags", 2],
        ["cudaEventRecord", 1001, 8], ["cudaStreamWaitEvent", 7, 1001, 0], ["cudaSetDevice", 0],
        ["cudaGetDevice"], ["cudaSetDevice", 1],
        ["cudaEventRecord", 1001, 8], ["cudaStreamWaitEvent", 9, 1001, 0], ["cudaSetDevice", 0],
        ["cudaGetDevice"], ["cudaEventCreateWithFlags", 2],
        ["cudaEventRecord", 1002, 6], ["cudaStreamWaitEvent", 5, 1002, 0],
        ["cudaGetDevice"], ["cudaEventRecord", 1002, 8], ["cudaStreamWaitEvent", 1, 1002, 0],
    ]
    assert out["skipped"] == [False, False, False] and out["ordered"] is True
    assert out["cupy"] is False


def test_pointer_device_asks_the_driver_only_with_several_gpus(fakes: Path) -> None:
    out = run("""
        import json
        import cuda.bindings.runtime as rt
        from zerocopy import _cuda
        answers = [_cuda.single_gpu(), _cuda.pointer_device(0x9000), _cuda.pointer_device(0)]
        print(json.dumps({"answers": answers, "calls": rt.CALLS}))
    """, path=fakes)
    assert out["answers"] == [False, ["cuda_managed", 1], ["cuda", 0]]
    assert out["calls"] == [["cudaGetDeviceCount"], ["cudaPointerGetAttributes", 0x9000],
                            ["cudaGetDevice"]]


def test_cupy_is_used_once_loaded_or_chosen(fakes: Path) -> None:
    code = """
        import json, sys
        {before}
        from zerocopy import _cuda
        first = _cuda.binding().name
        import cupy
        _cuda.wait(3, 4)
        try:
            _cuda.synchronize_stream(3)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        print(json.dumps({{"first": first, "then": _cuda.binding().name, "error": error,
                          "calls": cupy.cuda.runtime.CALLS}}))
    """
    loaded_later = run(code.format(before=""), path=fakes)
    assert loaded_later["first"] == "cuda.bindings" and loaded_later["then"] == "cupy.cuda.runtime"
    assert loaded_later["calls"] == [["getDevice"], ["eventCreateWithFlags", 2], ["eventRecord", 2001, 4],
                                     ["streamWaitEvent", 3, 2001, 0]]
    assert loaded_later["error"] == "DeviceError"
    chosen = run(code.format(before=""), path=fakes, env={"ZEROCOPY_CUDA_BINDING": "cupy"})
    assert chosen["first"] == chosen["then"] == "cupy.cuda.runtime"


def test_an_unknown_binding_name_is_an_invalid_argument(fakes: Path) -> None:
    out = run("""
        import json
        from zerocopy import _cuda
        try:
            _cuda.device_count()
        except Exception as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    """, path=fakes, env={"ZEROCOPY_CUDA_BINDING": "cuda-bindings"})
    assert out["error"] == "InvalidArgumentError" and "ZEROCOPY_CUDA_BINDING" in out["message"]


def test_device_pool_allocates_hands_off_and_translates_oom_through_the_layer(fakes: Path) -> None:
    out = run("""
        import json
        import cuda.bindings.runtime as rt
        from zerocopy.errors import OutOfMemoryError
        from zerocopy.memory import DevicePoolResource
        pool = DevicePoolResource()
        ptr = pool.allocate(256, 5)
        pool.deallocate(ptr, 256, 5)
        pool.handoff(5, 0)
        pool.handoff(5, 5)  # one stream: nothing to order
        try:
            pool.allocate(1 << 50, 0)
            oom = False
        except OutOfMemoryError:
            oom = True
        print(json.dumps({"binding": pool.binding, "pool": pool.pool, "oom": oom, "calls": rt.CALLS}))
    """, path=fakes)
    assert out["binding"] == "cuda.bindings" and out["pool"] == 0x77 and out["oom"]
    assert out["calls"] == [
        ["cudaGetDevice"], ["cudaDeviceGetDefaultMemPool", 0],
        ["cudaMallocFromPoolAsync", 256, 0x77, 5], ["cudaFreeAsync", 0x5000, 5],
        ["cudaGetDevice"], ["cudaEventCreateWithFlags", 2],
        ["cudaEventRecord", 1001, 0], ["cudaStreamWaitEvent", 5, 1001, 0],
        ["cudaMallocFromPoolAsync", 1 << 50, 0x77, 0],
    ]


def test_reset_forgets_the_choice_and_the_device_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from zerocopy import _cuda
    from zerocopy.errors import FrameworkNotInstalledError

    monkeypatch.setitem(sys.modules, "cuda", None)  # no cuda.bindings, whatever is installed
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.delenv("ZEROCOPY_CUDA_BINDING", raising=False)
    monkeypatch.setattr(_cuda, "_DEVICE_COUNT", [1])  # as if a GPU had been counted
    assert _cuda.single_gpu()
    _cuda.reset()
    try:
        with pytest.raises(FrameworkNotInstalledError, match="pip install cuda-bindings"):
            _cuda.single_gpu()
    finally:
        _cuda.reset()
