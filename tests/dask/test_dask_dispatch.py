"""zerocopy.dask names no framework: which frameworks, families and lazy modules come from the
registry records' ``dask`` facts, and what a framework does to its tensors on the way from
its adapter. These tests check that dispatch on this (CPU) machine: the records against the
classes and the registrations distributed holds, the host path's state (torch), and the
device path's choices (producer wait, contiguous copy, the view of a received frame) with
small fakes where the real call needs a GPU (scripts/gpu-check runs the real ones)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from typing import Any

import numpy as np
import pytest

pytest.importorskip("distributed", reason="zerocopy.dask needs dask and distributed (pip install zerocopy[dask])")

from distributed.protocol import deserialize, serialize

import zerocopy
import zerocopy.dask as zd
from zerocopy import registry
from zerocopy.dask import _plugins, _serialize

DASK_RECORDS = [r for r in registry.RECORDS if r.dask is not None]


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    zd.register()


def test_the_serializers_carry_the_frameworks_whose_records_say_so() -> None:
    assert _serialize.FRAMEWORKS == ("torch", "jax", "tensorflow", "cupy", "numba")
    for record in DASK_RECORDS:
        facts = record.dask
        assert facts is not None and facts.families, record.name
        assert set(facts.families) <= {"dask", "cuda"}, record.name
        # distributed meets a class by its top-level module: detection must agree with it
        assert facts.class_modules and set(facts.class_modules) <= set(record.modules), record.name
        assert zd.registered()[record.name] == list(facts.families)
    with pytest.raises(zerocopy.InvalidArgumentError, match="no serializer for 'pandas'"):
        zd.register(["pandas"])


@pytest.mark.parametrize("record", [r for r in DASK_RECORDS if registry.installed(r.name)],
                         ids=lambda r: r.name)
def test_tensor_classes_are_the_classes_of_the_frameworks_tensors(record: registry.Framework) -> None:
    """What the adapter hands distributed is what the framework makes, and lives where the
    record tells distributed to wait for it (jax.Array is abstract; its arrays are jaxlib's)."""
    assert record.dask is not None
    classes = registry.adapter(record.name).tensor_classes()
    x = registry.adapter(record.name).make(np.arange(4, dtype=np.float32))
    assert isinstance(x, classes)
    tops = {klass.__module__.partition(".")[0] for klass in type(x).__mro__}
    assert tops & set(record.dask.class_modules), (record.name, tops)


def _run(code: str) -> Any:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registering_waits_for_the_records_class_modules() -> None:
    """Before any framework is imported, each family's dispatchers wait (register_lazy) on
    every module of the record's class_modules with zerocopy's installer."""
    lazy = _run(
        "import json, zerocopy.dask as zd\n"
        "from distributed.protocol.cuda import cuda_deserialize, cuda_serialize\n"
        "from distributed.protocol.serialize import dask_deserialize, dask_serialize\n"
        "zd.register()\n"
        "def ours(d):\n"
        "    return sorted(m for m, f in d._lazy.items() if f.__module__ == 'zerocopy.dask._serialize')\n"
        "print(json.dumps({'dask': [ours(dask_serialize), ours(dask_deserialize)],\n"
        "                  'cuda': [ours(cuda_serialize), ours(cuda_deserialize)]}))\n")
    for family in ("dask", "cuda"):
        expected = sorted(m for r in DASK_RECORDS if family in r.dask.families for m in r.dask.class_modules)
        assert lazy[family] == [expected, expected], family
    assert "jaxlib" in lazy["cuda"][0] and "tensorflow" not in lazy["cuda"][0]


def test_an_imported_framework_is_registered_at_once_after_distributeds_own() -> None:
    pytest.importorskip("torch")
    found = _run(
        "import json, sys, torch, zerocopy.dask as zd\n"
        "from distributed.protocol.serialize import dask_serialize\n"
        "zd.register(['torch'])\n"
        "print(json.dumps([dask_serialize.dispatch(torch.Tensor).__qualname__,\n"
        "                  'distributed.protocol.torch' in sys.modules]))\n")
    assert found == ["serialize_host", True]


def test_torch_lazy_conjugate_and_negative_views_travel_as_their_values() -> None:
    torch = pytest.importorskip("torch")
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    for lazy in (z.conj(), z.conj().imag):  # the conjugate bit; the negative bit
        assert lazy.is_conj() or lazy.is_neg()
        y = deserialize(*serialize(lazy, on_error="raise"))
        assert not (y.is_conj() or y.is_neg()) and torch.equal(y, lazy.resolve_conj().resolve_neg())


def test_the_state_travels_only_where_the_adapter_has_it() -> None:
    x = np.arange(3)
    assert _serialize._prepare(x, "jax") == (x, {})            # no transport_state: as it is
    assert _serialize._finish(x, "tensorflow", {"requires_grad": True}) is x


def test_the_producer_wait_is_the_adapters_own() -> None:
    """The cuda family's host wait before a device frame leaves: Numba waits on the array's
    stream, JAX on the array; a framework without wait_ready is not waited on."""
    calls: list[str] = []

    class Stream:
        def synchronize(self) -> None:
            calls.append("stream")

    class NumbaLike:
        stream = Stream()

    class JaxLike:
        def block_until_ready(self) -> None:
            calls.append("array")

    _serialize._wait_producer(NumbaLike(), "numba", 0)
    _serialize._wait_producer(JaxLike(), "jax", 0)
    _serialize._wait_producer(object(), "tensorflow", 0)  # TensorFlow: no device family
    assert calls == ["stream", "array"]


def test_a_strided_device_array_is_made_contiguous_by_its_adapter() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    c = _serialize._contiguous_device(t, "torch")
    assert c.is_contiguous() and torch.equal(c, t) and c.data_ptr() != t.data_ptr()
    jax_array = object()
    assert _serialize._contiguous_device(jax_array, "jax") is jax_array  # dense by design
    with pytest.raises(NotImplementedError, match="strided numba device array"):
        _serialize._contiguous_device(object(), "numba")  # Dask's own serializer copies it


def test_host_data_is_left_to_the_dask_family() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(NotImplementedError, match="host data"):
        zd.serialize_device(torch.zeros(3))


def test_a_received_device_frame_is_viewed_by_the_target_else_cupy_else_torch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver's choice of viewer, as before the move: torch for torch; CuPy for the
    others where CuPy is installed; torch for bfloat16 (CuPy's view declines it) and where
    CuPy is not installed."""
    here = {"torch", "cupy"}
    monkeypatch.setattr(registry, "installed", lambda name: name in here)
    assert _serialize._viewers("torch") == ["torch", "cupy"]
    assert _serialize._viewers("cupy") == _serialize._viewers("jax") == ["cupy", "torch"]
    assert _serialize._viewers("numba") == ["cupy", "torch"]
    here.discard("cupy")
    assert _serialize._viewers("jax") == ["torch"]
    here.add("cupy")

    seen: list[tuple[str, Any]] = []

    def torch_view(frame: Any, dtype: str, shape: Any, device: int) -> str:
        seen.append((dtype, list(shape)))
        return "torch view"

    monkeypatch.setattr(registry.adapter("torch"), "device_view", torch_view)
    assert registry.adapter("cupy").device_view(None, "bfloat16", [2], 0) is None  # before CuPy
    frame = _serialize.DeviceFrame(0, 4, None, 0)
    assert _serialize._device_view(frame, "cupy", "bfloat16", [2], 0) == "torch view"
    assert seen == [("bfloat16", [2])]
    here.clear()
    with pytest.raises(zerocopy.FrameworkNotInstalledError, match="views a received float32"):
        _serialize._device_view(frame, "jax", "float32", [1], 0)


def test_the_environment_is_each_hooks_default_mode_and_merged_with_torchs_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert zd.environment(["jax"], {"jax": "cuda_async"}) == zd.environment(["jax"])
    assert zd.environment(["cupy", "numba"]) == {}  # pools set up in process, not by env
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)

    nanny = types.SimpleNamespace(env={"PYTORCH_ALLOC_CONF": "expandable_segments:True,backend:native"})
    _plugins.EnvironmentPlugin(zd.environment(["torch", "tensorflow"]), force=True).setup(nanny)
    assert nanny.env == {
        "PYTORCH_ALLOC_CONF": "backend:cudaMallocAsync,expandable_segments:True",
        "PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync",
        "TF_GPU_ALLOCATOR": "cuda_malloc_async"}


def test_frameworks_imported_are_the_hooked_ones_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """installed_here() lists the frameworks whose pool settings had to come before them."""
    for name in ("cupy", "cupy_backends", "rmm", "cudf"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "rmm", types.ModuleType("rmm"))  # what the cuDF hook drives
    imported = _plugins.installed_here()["frameworks_imported"]
    assert "cudf" in imported and "cupy" not in imported
    assert [n for n in imported if n != "cudf"] == [
        n for n in registry.names(hook=True) if registry.record(n).loaded(sys.modules)]
