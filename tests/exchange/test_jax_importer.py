"""Repeated conversions into JAX call jaxlib's importer directly, with a capsule built in C
(adapters/jax.py: ``_buffer_import``): proven as every zero-copy route is (same pointer, a
write through the source seen by JAX, values bit for bit, the source kept alive), and the
cases that must keep JAX's public one-liner keep it."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
from tests.helpers.frameworks import lane_plan, pointer, same_bits

import zerocopy
from zerocopy.exchange import dlpack
from zerocopy.registry import installed

pytestmark = pytest.mark.skipif(not installed("jax"), reason="jax is not installed")

# The dtypes JAX holds without 64-bit mode (64-bit data keeps the plan's run(): its guard
# reads the x64 setting on every call).
NARROW = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16", "bfloat16",
          "float32", "complex64"]


def _jax_adapter() -> Any:
    from zerocopy.adapters import jax as jax_adapter

    return jax_adapter


def _fresh(jax_value: Any) -> np.ndarray:
    """JAX's view of its buffer, read afresh (JAX caches an array's host value)."""
    return np.asarray(_jax_adapter().to_host(jax_value))


def _direct_runs() -> bool:
    return _jax_adapter()._buffer_import() is not None


def _source(dtype: str, n: int = 1000) -> np.ndarray:
    from zerocopy._dtypes import numpy_dtype

    x = zerocopy.empty(n, numpy_dtype(dtype))  # 64-byte aligned: JAX shares it
    x[...] = (np.arange(n) % 7 == 3) if dtype == "bool" else (np.arange(n) % 100).astype(x.dtype)
    return x


def test_the_importer_passes_the_probe_on_either_path() -> None:
    """The probe does not depend on which path builds capsules (a benchmark switching to
    the pure-Python path first must not turn the importer off for the process)."""
    assert _direct_runs(), "jaxlib's importer did not pass the host probe"
    _jax_adapter()._buffer_import.cache_clear()
    with dlpack.pure_python():
        assert _direct_runs(), "the probe failed with ctypes capsules"
    assert _direct_runs()


@pytest.mark.parametrize("dtype", NARROW)
def test_repeated_numpy_to_jax_shares_sees_writes_and_keeps_the_source_alive(dtype: str) -> None:
    zerocopy.clear_caches()
    x = _source(dtype)
    expected = x.copy()
    zerocopy.to(x, "jax")  # plans, and keeps the plan for the lane
    plan = lane_plan(x, "jax")
    assert plan is not None and plan.fast != plan.run, str(plan)
    if dlpack.backend() == "C extension":
        last = plan.hops[-1]
        assert last.edge.fast(last.before, "numpy").__name__ == "from_host", "JAX's importer is not reached"
    result = zerocopy.to(x, "jax")
    assert result.dtype == x.dtype and result.shape == x.shape
    assert result.unsafe_buffer_pointer() == pointer(x)
    assert same_bits(_fresh(result), expected)
    before = expected.copy()
    x[5] = x[3]  # differs in every dtype here (bool: index 3 is True, 5 is False)
    expected[5] = expected[3]
    assert not same_bits(expected, before), "the write changed nothing: it would prove nothing"
    assert same_bits(_fresh(result), expected)
    del x
    gc.collect()
    churn = [np.full(1000, 255, np.uint8) for _ in range(64)]  # reuse freed memory
    assert same_bits(_fresh(result), expected)
    del churn


@pytest.fixture
def importer_calls(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Count the calls of jaxlib's importer made by plans built inside the test."""
    real = _jax_adapter()._buffer_import()
    if real is None or dlpack.backend() != "C extension":
        pytest.skip("the direct import runs only with jaxlib's importer and the C extension")
    calls: list[int] = []

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_jax_adapter(), "_buffer_import", lambda: counted)
    zerocopy.clear_caches()
    yield calls
    zerocopy.clear_caches()  # no plan keeps the counting wrapper


@pytest.mark.parametrize("name", ["pandas", "polars", "pyarrow"])
def test_column_sources_reach_the_importer_on_the_repeated_call(importer_calls: list[int], name: str) -> None:
    """pandas 3 and Polars hand out read-only NumPy views and Arrow's are read-only: they
    reach JAX through our exporter's capsule, imported directly on the repeated call."""
    if not installed(name):
        pytest.skip(f"{name} is not installed")
    base = _source("float32")
    if name == "pandas":
        x = __import__("pandas").Series(base, copy=False)
    elif name == "polars":
        x = __import__("polars").Series(base)
    else:
        x = __import__("pyarrow").array(base)
    first = zerocopy.to(x, "jax")
    before = len(importer_calls)
    result = zerocopy.to(x, "jax")
    assert len(importer_calls) == before + 1, "the repeated call did not reach jaxlib's importer"
    where = zerocopy.inspect(x).ptr
    assert result.unsafe_buffer_pointer() == where == first.unsafe_buffer_pointer()
    assert same_bits(_fresh(result), base)


def test_a_read_only_array_keeps_the_routes_own_handling() -> None:
    """NumPy's exporter refuses read-only arrays; the direct import must not accept what the
    planned route does not: the second call gives what the first gave."""
    x = _source("float32")
    x.flags.writeable = False
    first = zerocopy.to(x, "jax")
    second = zerocopy.to(x, "jax")
    assert same_bits(_fresh(second), _fresh(first))
    assert (second.unsafe_buffer_pointer() == pointer(x)) == (first.unsafe_buffer_pointer() == pointer(x))


def test_a_misaligned_view_is_copied_not_shared_on_the_second_call_too() -> None:
    base = _source("float32", 1001)
    x = base[1:]  # 4 bytes past a 64-byte boundary
    results = [zerocopy.to(x, "jax") for _ in range(3)]
    for result in results:
        assert result.unsafe_buffer_pointer() != pointer(x)
        assert same_bits(_fresh(result), x)
    with pytest.raises(zerocopy.NotZeroCopyError, match="64-byte"):
        zerocopy.to(x, "jax", copy=False)


def test_without_the_private_importer_the_public_one_liner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    jax_adapter = _jax_adapter()
    monkeypatch.setattr(jax_adapter, "_buffer_import", lambda: None)
    zerocopy.clear_caches()
    x = _source("float32")
    zerocopy.to(x, "jax")
    plan = lane_plan(x, "jax")
    assert plan is not None and getattr(plan.fast, "func", None) is not None, "expected functools.partial"
    result = zerocopy.to(x, "jax")
    assert result.unsafe_buffer_pointer() == pointer(x)
    assert same_bits(_fresh(result), x)
    zerocopy.clear_caches()


def test_an_importer_that_does_not_share_fails_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer is private: one whose result is not the probe's own memory (another
    jaxlib, another signature) is not used."""
    pytest.importorskip("jax")
    from jax._src.lib import _jax as extension

    jax_adapter = _jax_adapter()
    real = extension.dlpack_managed_tensor_to_buffer

    def copying(capsule: Any, *args: Any) -> Any:
        return real(capsule, *args).copy()

    monkeypatch.setattr(extension, "dlpack_managed_tensor_to_buffer", copying)
    jax_adapter._buffer_import.cache_clear()
    try:
        assert jax_adapter._buffer_import() is None
    finally:
        monkeypatch.undo()
        jax_adapter._buffer_import.cache_clear()
    assert _direct_runs(), "the real importer no longer passes the probe"


def test_the_pure_python_path_keeps_the_one_liner() -> None:
    with dlpack.pure_python():
        assert dlpack.capsule_maker("float32", dlpack.CPU, 0) is None
        zerocopy.clear_caches()
        x = _source("float32")
        zerocopy.to(x, "jax")
        result = zerocopy.to(x, "jax")
        assert result.unsafe_buffer_pointer() == pointer(x)
        assert same_bits(_fresh(result), x)
    zerocopy.clear_caches()


@pytest.mark.parametrize("name", ["tensorflow", "torch"])
def test_other_host_producers_reach_the_importer_through_their_own_capsule(importer_calls: list[int],
                                                                          name: str) -> None:
    """Not NumPy arrays: the capsule their own __dlpack__() makes (what the one-liner asks
    them for on the host), proven shared and bit for bit on the repeated call."""
    if not installed(name):
        pytest.skip(f"{name} is not installed")
    from zerocopy.registry import adapter

    base = _source("float32", 4096)
    x = adapter(name).make(base) if name == "tensorflow" else __import__("torch").from_numpy(base)
    if zerocopy.explain(x, "jax").copies:
        pytest.skip(f"{name} -> jax copies this source (alignment): nothing shared to prove")
    zerocopy.to(x, "jax")
    before = len(importer_calls)
    result = zerocopy.to(x, "jax")
    assert len(importer_calls) == before + 1, "the repeated call did not reach jaxlib's importer"
    shared = zerocopy.inspect(x).ptr
    assert result.unsafe_buffer_pointer() == shared
    assert same_bits(_fresh(result), np.asarray(base) if name == "torch" else _fresh_source(x))


def _fresh_source(x: Any) -> np.ndarray:
    return np.array(x.numpy(), copy=True)


@pytest.mark.parametrize("importer", [True, False])
def test_numba_reaches_jax_through_the_cuda_array_interface_import(monkeypatch: pytest.MonkeyPatch,
                                                                   importer: bool) -> None:
    """Planning only (no GPU, no Numba needed): with jaxlib's importer Numba's arrays take
    the two-hop CAI route; without it the old route through another GPU framework; CuPy and
    torch keep their DLPack import either way."""
    import importlib

    from zerocopy.exchange.edges import Options
    from zerocopy.exchange.info import ARRAY, Info
    from zerocopy.exchange.plan import make_plan

    if not importer:
        monkeypatch.setattr(_jax_adapter(), "_buffer_import", lambda: None)
    graph = tuple(e for name in ("numpy", "cupy", "torch", "jax", "numba")
                  for e in importlib.import_module(f"zerocopy.adapters.{name}").EDGES)

    def route(source: str) -> list[str]:
        info = Info(source, None, kind=ARRAY, dtype="float32", shape=(256,), strides=(4,), itemsize=4,
                    device=("cuda", 0))
        return [hop.edge.target for hop in make_plan(graph, info, "jax", Options()).hops]

    assert route("numba") == (["cai", "jax"] if importer else ["cai", "cupy", "dlpack", "jax"])
    assert route("cupy") == ["dlpack", "jax"]
    assert route("torch") == ["dlpack", "jax"]


def test_a_cleared_jax_backend_is_not_kept_by_a_repeated_call() -> None:
    """The device is looked up per call, as JAX's one-liner does: after
    jax.extend.backend.clear_backends() the result lives on the new client's device. In a
    fresh interpreter: clearing JAX's backends would disturb the other tests."""
    import subprocess
    import sys

    code = (
        "import numpy as np, zerocopy, jax, jax.extend as jex\n"
        "x = zerocopy.empty(100, np.float32); x[:] = np.arange(100)\n"
        "zerocopy.to(x, 'jax'); zerocopy.to(x, 'jax')\n"
        "jex.backend.clear_backends()\n"
        "r = zerocopy.to(x, 'jax')\n"
        "assert next(iter(r.devices())) == jax.devices('cpu')[0], r.devices()\n"
        "assert (np.asarray(jax.jit(lambda a: a * 2)(r)) == np.arange(100) * 2).all()\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
