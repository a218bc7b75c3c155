"""CUDA streams: one spelling for every framework's stream, and the orderings the
protocols ask for.

``stream=`` of :func:`zerocopy.to` is the stream the caller will use the result on. It
accepts a torch / CuPy / Numba / cuda.core stream object, anything with
``__cuda_stream__``, a raw ``cudaStream_t`` handle as an int, or :data:`NO_SYNC`.

The protocols disagree about who orders what:

* DLPack: the *consumer* passes its stream to ``__dlpack__(stream=...)`` and the producer
  makes that stream wait for its pending work. :func:`dlpack_source` hands the consumer
  a producer that receives the caller's stream instead of the consumer's current one.
* CUDA Array Interface v3: the *producer* publishes the stream its data is ready on, and
  the consumer must order against it. :func:`order` does that on the device: it records
  an event on the producer's stream and makes the consumer's stream wait on it (no host
  synchronisation); same stream, or :data:`NO_SYNC`, costs nothing.

Handles follow the protocols' conventions: 1 is the legacy default stream, 2 the
per-thread default stream; 0 (the runtime's spelling of the default stream) is read as 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zerocopy.errors import UnsupportedConversionError, message

__all__ = ["LEGACY", "NO_SYNC", "PER_THREAD", "NoSync", "dlpack_source", "handle", "order"]

LEGACY, PER_THREAD = 1, 2


class NoSync:
    """The sentinel type of :data:`NO_SYNC`: "do not synchronise, I ordered the work myself".

    DLPack producers receive ``stream=-1``; CUDA Array Interface streams are ignored."""

    _instance: NoSync | None = None

    def __new__(cls) -> NoSync:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "zerocopy.NO_SYNC"

    def __reduce__(self) -> str:
        return "NO_SYNC"


NO_SYNC = NoSync()


def handle(stream: Any) -> int | NoSync | None:
    """The raw handle of a stream given in any framework's spelling (None stays None)."""
    if stream is None or stream is NO_SYNC:
        return stream
    if isinstance(stream, bool):
        raise _bad(stream)
    if isinstance(stream, int):
        if stream < 0:
            raise UnsupportedConversionError(message(
                f"stream={stream} is not a CUDA stream handle",
                hint="pass zerocopy.NO_SYNC to skip synchronisation (that is what -1 means in DLPack)"))
        return stream or LEGACY
    protocol = getattr(stream, "__cuda_stream__", None)  # cuda.core, CuPy 14, numba-cuda
    if protocol is not None:
        _, raw = protocol()
        return int(raw) or LEGACY
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        raw = getattr(stream, attribute, None)
        if isinstance(raw, int):
            return raw or LEGACY
    raw = getattr(stream, "handle", None)  # numba Stream: a ctypes pointer or a binding object
    if raw is not None:
        raw = getattr(raw, "value", raw)
        try:
            return int(raw or 0) or LEGACY
        except TypeError:
            pass
    raise _bad(stream)


def _bad(stream: Any) -> Exception:
    return UnsupportedConversionError(message(
        "stream= takes a CUDA stream", got=f"{type(stream).__module__}.{type(stream).__qualname__}",
        hint="pass a torch/CuPy/Numba/cuda.core stream, a raw cudaStream_t int, or zerocopy.NO_SYNC"))


# --------------------------------------------------------------- DLPack: consumer's stream

class _StreamedProducer:
    """A DLPack producer whose ``__dlpack__`` receives the caller's stream, whatever the
    consuming framework would have passed. Keeps the producer alive (``owner``)."""

    __slots__ = ("_stream", "owner")

    def __init__(self, owner: Any, stream: int | None) -> None:
        self.owner, self._stream = owner, stream

    def __dlpack_device__(self) -> Any:
        return self.owner.__dlpack_device__()

    def __dlpack__(self, **kwargs: Any) -> Any:
        device_type = self.owner.__dlpack_device__()[0]
        kwargs["stream"] = self._stream if device_type not in (1, 3) else None  # host: no stream
        if kwargs["stream"] is None:
            kwargs.pop("stream")
        try:
            return self.owner.__dlpack__(**kwargs)
        except TypeError:
            # Producers of the older protocol take only ``stream``.
            return self.owner.__dlpack__(**({"stream": kwargs["stream"]} if "stream" in kwargs else {}))


def _is_jax(obj: Any) -> bool:
    return (type(obj).__module__ or "").partition(".")[0] in ("jax", "jaxlib")


def dlpack_source(producer: Any, stream: Any) -> Any:
    """What a DLPack importer should be given so that the caller's stream is ordered.

    ``None``: the producer itself (the consuming framework passes its current stream,
    which is the DLPack handshake); a stream: a wrapper passing that stream;
    :data:`NO_SYNC`: a wrapper passing -1, except to JAX, which rejects -1 and gets no stream.
    """
    if stream is None:
        return producer
    raw = handle(stream)
    if raw is NO_SYNC:
        return _StreamedProducer(producer, None if _is_jax(producer) else -1)
    return _StreamedProducer(producer, raw)


# --------------------------------------------------------------- CAI: producer's stream

def _runtime() -> Any:
    """CuPy's runtime bindings when CuPy is there, else cuda.bindings (both ship on GPU hosts)."""
    cupy = sys.modules.get("cupy")
    if cupy is None:
        try:
            import cupy
        except ImportError:
            cupy = None
    if cupy is not None:
        return _CupyRuntime(cupy.cuda.runtime)
    from cuda.bindings import runtime

    return _BindingsRuntime(runtime)


class _CupyRuntime:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.events: dict[int, Any] = {}

    def current_device(self) -> int:
        return int(self.rt.getDevice())

    def set_device(self, device: int) -> None:
        self.rt.setDevice(device)

    def order(self, producer: int, consumer: int) -> None:
        rt = self.rt
        # One reusable event per device: a wait captures the event's state when it is
        # enqueued, so re-recording it later cannot affect earlier waits.
        device = rt.getDevice()
        event = self.events.get(device)
        if event is None:
            event = self.events[device] = rt.eventCreateWithFlags(rt.eventDisableTiming)
        rt.eventRecord(event, producer)
        rt.streamWaitEvent(consumer, event, 0)

    def device_count(self) -> int:
        return int(self.rt.getDeviceCount())

    def pointer_device(self, ptr: int) -> tuple[str, int]:
        attributes = self.rt.pointerGetAttributes(ptr)
        memory_type = getattr(attributes, "type", None)
        memory_type = attributes.memoryType if memory_type is None else memory_type  # CuPy's name
        kind = {1: "cuda_host", 2: "cuda", 3: "cuda_managed"}.get(int(memory_type), "cpu")
        return kind, int(attributes.device)


class _BindingsRuntime:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.events: dict[int, Any] = {}

    def _ok(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"CUDA runtime error {int(err)}")
        return rest[0] if rest else None

    def current_device(self) -> int:
        return int(self._ok(self.rt.cudaGetDevice()))

    def set_device(self, device: int) -> None:
        self._ok(self.rt.cudaSetDevice(device))

    def order(self, producer: int, consumer: int) -> None:
        rt = self.rt
        device = self.current_device()
        event = self.events.get(device)
        if event is None:
            event = self.events[device] = self._ok(rt.cudaEventCreateWithFlags(rt.cudaEventDisableTiming))
        self._ok(rt.cudaEventRecord(event, producer))
        self._ok(rt.cudaStreamWaitEvent(consumer, event, 0))

    def device_count(self) -> int:
        return int(self._ok(self.rt.cudaGetDeviceCount()))

    def pointer_device(self, ptr: int) -> tuple[str, int]:
        attributes = self._ok(self.rt.cudaPointerGetAttributes(ptr))
        kind = {1: "cuda_host", 2: "cuda", 3: "cuda_managed"}.get(int(attributes.type), "cpu")
        return kind, int(attributes.device)


_RUNTIME: list[Any] = []


def runtime() -> Any:
    if not _RUNTIME:
        _RUNTIME.append(_runtime())
    return _RUNTIME[0]


def order(producer: Any, consumer: Any, device: int) -> bool:
    """Make ``consumer`` wait, on the device, for the work queued so far on ``producer``.

    Returns whether an event was needed. ``None`` on the producer side means "already
    ordered" (CAI v3); :data:`NO_SYNC` on the consumer side means "do not order".
    """
    if producer is None or consumer is None or consumer is NO_SYNC or producer is NO_SYNC:
        return False
    producer, consumer = handle(producer), handle(consumer)
    if producer == consumer:
        return False
    rt = runtime()
    previous = rt.current_device()
    if previous != device:
        rt.set_device(device)
    try:
        rt.order(int(producer), int(consumer))  # type: ignore[arg-type]
    finally:
        if previous != device:
            rt.set_device(previous)
    return True


@contextmanager
def on_device(index: int) -> Iterator[None]:
    """Make ``index`` the current CUDA device for the block (restored after).

    Importers label foreign memory with the *current* device (CuPy, Numba) and torch
    refuses to export a tensor of another device with a stream; converting data that lives
    on device 1 while device 0 is current must therefore happen on device 1."""
    rt = runtime()
    previous = rt.current_device()
    if previous == index:
        yield
        return
    rt.set_device(index)
    try:
        yield
    finally:
        rt.set_device(previous)
