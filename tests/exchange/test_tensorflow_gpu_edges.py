"""TensorFlow's GPU edges, checked on the CPU with stand-ins: the export producer takes
the importers' stream arguments (TF's own refuses any), and the import asks the producer
to order its work onto a stream and waits for that stream before TF sees the memory.
The real thing runs in tests/exchange/test_gpu_tensorflow.py on the GPU machine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import zerocopy
from zerocopy import _cuda
from zerocopy.exchange.edges import Options

tf = pytest.importorskip("tensorflow")
tensorflow_adapter = pytest.importorskip("zerocopy.adapters.tensorflow")


class _Producer:
    """A CUDA DLPack producer that records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)

    def __dlpack__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return "capsule"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    monkeypatch.setattr(_cuda, "synchronize_stream", seen.append)
    return seen


def test_import_orders_onto_the_legacy_stream_and_waits_for_it(waits: list[int]) -> None:
    producer = _Producer()
    assert tensorflow_adapter._ready_capsule(producer, None) == "capsule"
    assert producer.calls == [{"stream": 1}] and waits == [1]


def test_import_orders_onto_the_callers_stream(waits: list[int]) -> None:
    producer = _Producer()
    tensorflow_adapter._ready_capsule(producer, 77)
    assert producer.calls == [{"stream": 77}] and waits == [77]


def test_import_with_no_sync_neither_orders_nor_waits(waits: list[int]) -> None:
    producer = _Producer()
    tensorflow_adapter._ready_capsule(producer, zerocopy.NO_SYNC)
    assert producer.calls == [{"stream": -1}] and waits == []


def test_export_producer_takes_stream_arguments_and_shares() -> None:
    torch = pytest.importorskip("torch")

    tensor = tf.constant(np.arange(6, dtype=np.float32))
    producer = tensorflow_adapter._GPUExport(tensor)
    with pytest.raises(RuntimeError):
        tensor.__dlpack__(stream=1)  # TF's own export: no stream, ever
    capsule = producer.__dlpack__(stream=1, max_version=(1, 0))
    shared = torch.from_dlpack(capsule)
    assert shared.data_ptr() == zerocopy.inspect(tensor).ptr
    with pytest.raises(BufferError):
        producer.__dlpack__(copy=True)
    np.testing.assert_array_equal(np.from_dlpack(producer), np.arange(6, dtype=np.float32))


def test_cpu_tensors_keep_the_plain_edges() -> None:
    tensor = tf.constant(np.arange(4, dtype=np.float32))
    assert tensorflow_adapter._to_dlpack(tensor, Options()) is tensor
    assert zerocopy.inspect(tensor).device == ("cpu", 0)
    moved = tensorflow_adapter.move(np.arange(3.0), ("cpu", 0))
    np.testing.assert_array_equal(moved.numpy(), np.arange(3.0))
