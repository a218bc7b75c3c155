"""What the GPU side decides without a GPU: CAI type strings, the refusal of void bytes,
stream spellings and the NO_SYNC sentinel, device-option errors, and the protocol choice
per pair (read from the edges as data)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import zerocopy
from zerocopy import _cuda
from zerocopy.errors import DeviceError, NotZeroCopyError, UnsupportedConversionError, UnsupportedDtypeError
from zerocopy.exchange import cai, streams
from zerocopy.exchange.edges import CAI, DLPACK, Options
from zerocopy.exchange.info import ARRAY, Info
from zerocopy.exchange.plan import routes

ROUND_TRIP = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128"]


@pytest.mark.parametrize("dtype", ROUND_TRIP)
def test_typestr_round_trip_matches_numpy(dtype: str) -> None:
    typestr = cai.typestr_of(dtype)
    assert typestr == np.dtype(dtype).str  # what NumPy, CuPy and Numba write
    assert cai.dtype_of(typestr) == dtype


@pytest.mark.parametrize("typestr", ["|V2", "<V2", "|V1", "|V4"])
def test_void_typestr_is_refused(typestr: str) -> None:
    with pytest.raises(UnsupportedDtypeError, match="DLPack"):
        cai.dtype_of(typestr)


@pytest.mark.parametrize("typestr", [">f4", ">i8", "<f3", "xf4", "", "|O8", "<M8"])
def test_foreign_typestr_is_refused(typestr: str) -> None:
    with pytest.raises(UnsupportedDtypeError):
        cai.dtype_of(typestr)


def test_big_endian_single_bytes_are_fine() -> None:
    assert cai.dtype_of(">u1") == "uint8"
    assert cai.dtype_of("=i4") == "int32"


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_no_typestr_for_bfloat16_or_float8(dtype: str) -> None:
    with pytest.raises(UnsupportedDtypeError, match="DLPack"):
        cai.typestr_of(dtype)


class _Producer:
    def __init__(self, **changes: object) -> None:
        self.__cuda_array_interface__ = {"version": 3, "shape": (4, 3), "typestr": "<f4",
                                         "data": (4096, False), "strides": (4, 16), "stream": 7,
                                         **changes}


def test_read_keeps_pointer_strides_stream() -> None:
    view = cai.read(_Producer())
    assert (view.ptr, view.shape, view.strides, view.dtype, view.stream, view.version) == (
        4096, (4, 3), (4, 16), "float32", 7, 3)
    assert view.nbytes == 48


def test_read_refuses_bfloat16_from_a_v2_producer() -> None:
    with pytest.raises(UnsupportedDtypeError):
        cai.read(_Producer(typestr="|V2", version=2))


def test_read_refuses_stream_zero_and_masks() -> None:
    with pytest.raises(BufferError):
        cai.read(_Producer(stream=0))
    with pytest.raises(UnsupportedDtypeError):
        cai.read(_Producer(mask=object()))


def test_exporter_publishes_v3_and_keeps_owner() -> None:
    owner = object()
    out = cai.CAIExporter(owner, 1 << 20, (2, 5), None, "int16", readonly=True, stream=None)
    d = out.__cuda_array_interface__
    assert d["version"] == 3 and d["typestr"] == "<i2" and d["data"] == (1 << 20, True)
    assert d["stream"] is None and d["strides"] is None and out.owner is owner
    with pytest.raises(UnsupportedDtypeError):
        cai.CAIExporter(owner, 1, (1,), None, "bfloat16")


def test_import_view_with_no_stream_or_no_sync_orders_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(streams, "order", lambda *a: calls.append(a))
    out = cai.import_view(_Producer(stream=None), Options(), lambda d: 99)
    assert out.__cuda_array_interface__["stream"] is None
    cai.import_view(_Producer(stream=7), Options(stream=zerocopy.NO_SYNC), lambda d: 99)
    assert calls == []


def test_import_view_orders_consumer_after_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(streams, "order", lambda *a: calls.append(a))
    monkeypatch.setattr(_cuda, "pointer_device", lambda ptr: ("cuda", 1))
    out = cai.import_view(_Producer(stream=7), Options(), lambda device: 1000 + device)
    assert calls == [(7, 1001, 1)]  # consumer's current stream on the pointer's device
    assert out.__cuda_array_interface__["stream"] is None  # already ordered
    cai.import_view(_Producer(stream=7), Options(stream=55), lambda device: 1000)
    assert calls[-1] == (7, 55, 1)  # stream= of to() wins


# --------------------------------------------------------------- streams

class _TorchLike:
    cuda_stream = 0x1234


class _CupyLike:
    ptr = 0x5678


class _CudaCoreLike:
    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, 0x9ABC)


class _NumbaLike:
    class handle:
        value = 0xDEF0


@pytest.mark.parametrize(("stream", "expected"), [
    (None, None), (5, 5), (0, streams.LEGACY), (_TorchLike(), 0x1234), (_CupyLike(), 0x5678),
    (_CudaCoreLike(), 0x9ABC), (_NumbaLike(), 0xDEF0)])
def test_stream_handles(stream: object, expected: int | None) -> None:
    assert streams.handle(stream) == expected


def test_no_sync_sentinel() -> None:
    assert zerocopy.NO_SYNC is streams.NO_SYNC is streams.NoSync()
    assert repr(zerocopy.NO_SYNC) == "zerocopy.NO_SYNC"
    assert streams.handle(zerocopy.NO_SYNC) is zerocopy.NO_SYNC
    assert streams.order(7, zerocopy.NO_SYNC, 0) is False
    assert streams.order(None, 7, 0) is False and streams.order(7, 7, 0) is False


@pytest.mark.parametrize("bad", [-1, True, "stream", 1.5])
def test_bad_streams(bad: object) -> None:
    with pytest.raises(UnsupportedConversionError):
        streams.handle(bad)


class _FakeProducer:
    def __init__(self, device_type: int = 2) -> None:
        self.seen: dict[str, object] = {}
        self.device_type = device_type

    def __dlpack_device__(self) -> tuple[int, int]:
        return (self.device_type, 0)

    def __dlpack__(self, **kwargs: object) -> str:
        self.seen = kwargs
        return "capsule"


def test_dlpack_handshake_passes_the_callers_stream() -> None:
    producer = _FakeProducer()
    assert streams.dlpack_source(producer, None) is producer  # the consumer's own handshake
    wrapped = streams.dlpack_source(producer, _TorchLike())
    assert wrapped.__dlpack_device__() == (2, 0)
    assert wrapped.__dlpack__(stream=1, max_version=(1, 1)) == "capsule"
    assert producer.seen == {"stream": 0x1234, "max_version": (1, 1)}
    streams.dlpack_source(producer, zerocopy.NO_SYNC).__dlpack__(stream=1)
    assert producer.seen == {"stream": -1}
    host = _FakeProducer(device_type=1)
    streams.dlpack_source(host, 5).__dlpack__(stream=None)
    assert host.seen == {}  # host memory takes no stream


# --------------------------------------------------------------- protocol choice, device option

def test_protocol_choice_is_data() -> None:
    from zerocopy.adapters import cupy, numba, torch

    edges = (*cupy.EDGES, *torch.EDGES, *numba.EDGES)
    # Where both sides speak DLPack, the consumer's native handshake is cheapest (H100 run);
    # CAI is second choice, and the only way into Numba.
    for source, target in (("cupy", "torch"), ("torch", "cupy")):
        ranked = routes(edges, source, target)
        assert [e.target for e in ranked[0]] == [DLPACK, target]
        assert any(e.target == CAI for e in ranked[1])
    assert [e.target for e in routes(edges, "torch", "numba")[0]] == [CAI, "numba"]


def _gpu_info(dtype: str = "bfloat16") -> Info:
    return Info("torch", None, kind=ARRAY, dtype=dtype, shape=(8,), strides=None, itemsize=2,
                device=("cuda", 0))


def test_bfloat16_never_through_cai() -> None:
    refusal = cai.refuse_dtype(_gpu_info("bfloat16"), Options())
    assert refusal is not None and not refusal.fixable and refusal.error is UnsupportedDtypeError
    assert cai.refuse_dtype(_gpu_info("float16"), Options()) is None


def test_jax_gpu_refuses_step_slices() -> None:
    from zerocopy.adapters import jax as jax_adapter

    into_jax = next(e for e in jax_adapter.EDGES if e.source == DLPACK)
    strided = Info("torch", None, kind=ARRAY, dtype="float32", shape=(8, 8), strides=(64, 8), itemsize=4,
                   device=("cuda", 0), pointer=lambda: 4)
    assert into_jax.check(strided, Options()) is not None
    transposed = Info("torch", None, kind=ARRAY, dtype="float32", shape=(8, 8), strides=(4, 32), itemsize=4,
                      device=("cuda", 0), pointer=lambda: 4)  # misaligned is fine on the GPU
    assert into_jax.check(transposed, Options()) is None


def test_device_option_with_copy_false_raises() -> None:
    with pytest.raises(NotZeroCopyError, match="copy"):
        zerocopy.to(np.arange(4.0), "torch", device="cuda:0", copy=False)
    with pytest.raises(NotZeroCopyError):
        zerocopy.explain(np.arange(4.0), "torch", device="cuda:0", copy=False)


def test_device_option_errors() -> None:
    with pytest.raises(DeviceError, match="numpy cannot hold data on cuda"):
        zerocopy.explain(np.arange(4.0), "numpy", device="cuda:0")
    with pytest.raises(DeviceError, match="Unknown device"):
        zerocopy.explain(np.arange(4.0), "torch", device="tpu:0")


def test_device_cpu_on_host_data_is_a_no_op() -> None:
    x = np.arange(4.0)
    plan = zerocopy.explain(x, "torch", device="cpu")
    assert not plan.copies
    assert zerocopy.to(x, "numpy", device="cpu") is x


def test_host_to_device_plan_reports_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from zerocopy.adapters import adapter
    from zerocopy.exchange import convert

    monkeypatch.setattr(adapter("torch"), "move",
                        lambda x, device: torch.as_tensor(np.array(x, copy=True)))  # CPU stand-in
    plan = zerocopy.explain(np.arange(4.0), "torch", device="cuda:0")
    assert plan.copies and plan.hops[0].edge.protocol == "device copy"
    assert plan.copied_bytes == 32
    assert any("moved to cuda:0 on purpose" in c for c in plan.caveats)
    assert convert._device_of("cuda:1") == ("cuda", 1) and convert._device_of(("cuda", 2)) == ("cuda", 2)
    assert convert._device_of(torch.device("cuda", 3)) == ("cuda", 3)
    assert convert._device_of(torch.device("cpu")) == ("cpu", 0)


def test_import_zerocopy_imports_no_gpu_framework() -> None:
    code = ("import sys, zerocopy, zerocopy.adapters.cupy, zerocopy.adapters.numba, "
            "zerocopy.adapters.cudf, zerocopy.exchange.cai\n"
            "from zerocopy.adapters import edges; edges()\n"
            "print(sorted(m for m in ('cupy', 'numba', 'numba_cuda', 'cudf', 'cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
