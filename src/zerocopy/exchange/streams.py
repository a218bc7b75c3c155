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
  synchronisation; the CUDA calls are in :mod:`zerocopy._cuda`); same stream, or
  :data:`NO_SYNC`, costs nothing.

Handles follow the protocols' conventions: 1 is the legacy default stream, 2 the
per-thread default stream; 0 (the runtime's spelling of the default stream) is read as 1.
"""

from __future__ import annotations

from typing import Any

from zerocopy import _cuda, registry
from zerocopy._detect import framework_of
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


def _no_sync_stream(producer: Any) -> int | None:
    """What ``producer.__dlpack__`` takes as "do not synchronise": -1 by the standard, or
    its adapter's ``DLPACK_NO_SYNC`` (JAX rejects -1 and gets no stream)."""
    name = framework_of(producer)
    stream: int | None = -1 if name is None else getattr(registry.adapter(name), "DLPACK_NO_SYNC", -1)
    return stream


def dlpack_source(producer: Any, stream: Any) -> Any:
    """What a DLPack importer should be given so that the caller's stream is ordered.

    ``None``: the producer itself (the consuming framework passes its current stream,
    which is the DLPack handshake); a stream: a wrapper passing that stream;
    :data:`NO_SYNC`: a wrapper passing -1, except to a producer whose adapter says otherwise
    (``DLPACK_NO_SYNC``: JAX, which rejects -1 and gets no stream).
    """
    if stream is None:
        return producer
    raw = handle(stream)
    if isinstance(raw, NoSync):
        return _StreamedProducer(producer, _no_sync_stream(producer))
    return _StreamedProducer(producer, raw)


# --------------------------------------------------------------- CAI: producer's stream

def order(producer: Any, consumer: Any, device: int) -> bool:
    """Make ``consumer`` wait, on ``device``, for the work queued so far on ``producer``.

    Returns whether an event was needed. ``None`` on the producer side means "already
    ordered" (CAI v3); :data:`NO_SYNC` on the consumer side means "do not order"; the same
    stream on both sides is ordered already. The wait itself is :func:`zerocopy._cuda.wait`.
    """
    waiting_on, waiting = handle(producer), handle(consumer)
    if not isinstance(waiting_on, int) or not isinstance(waiting, int) or waiting_on == waiting:
        return False  # None or NO_SYNC on either side, or one stream
    _cuda.wait(waiting, waiting_on, device=device)
    return True
