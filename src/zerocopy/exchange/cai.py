"""The CUDA Array Interface (v3): read it, produce it, honour its stream.

``read(obj)`` turns any ``__cuda_array_interface__`` into a :class:`CAIView` with our
canonical dtype; the device comes from the pointer (:func:`zerocopy._cuda.pointer_device`),
never from the current device. :class:`CAIExporter` publishes a buffer as CAI v3.
:func:`import_view` is what every ``cai -> framework`` edge runs: it orders the consumer's
stream after the producer's (an event wait, no host sync) and hands the consumer an
exporter whose ``stream`` is None ("already ordered"), so consumers that synchronise on
their own (CuPy, Numba) do not block the host.

The CUDA Array Interface has no bfloat16 and no float8 type strings: producers put out
``|V2`` / ``|V1`` and consumers silently get void bytes. Those are refused here;
bfloat16 travels by DLPack.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zerocopy import _cuda
from zerocopy.errors import UnsupportedDtypeError, message
from zerocopy.exchange import streams
from zerocopy.exchange.edges import Options, Refusal
from zerocopy.exchange.info import Info

__all__ = [
    "NO_CAI_DTYPES",
    "CAIExporter",
    "CAIView",
    "dtype_of",
    "import_view",
    "read",
    "refuse_dtype",
    "typestr_of",
]

_LITTLE = sys.byteorder == "little"
# Canonical dtype -> (kind, itemsize) of the NumPy type string.
_CODES: dict[str, tuple[str, int]] = {
    "bool": ("b", 1),
    **{f"int{b}": ("i", b // 8) for b in (8, 16, 32, 64)},
    **{f"uint{b}": ("u", b // 8) for b in (8, 16, 32, 64)},
    **{f"float{b}": ("f", b // 8) for b in (16, 32, 64)},
    "complex64": ("c", 8),
    "complex128": ("c", 16),
}
_FROM_CODE = {code: name for name, code in _CODES.items()}
# Dtypes the interface cannot name: they come out as void bytes.
NO_CAI_DTYPES = frozenset({"bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                           "float8_e5m2fnuz", "float8_e8m0fnu"})


def typestr_of(dtype: str) -> str:
    """NumPy type string for a canonical dtype ("<f4", "|b1", ...)."""
    if dtype in NO_CAI_DTYPES or dtype not in _CODES:
        raise UnsupportedDtypeError(message(
            f"The CUDA Array Interface has no type string for {dtype}",
            hint="bfloat16 and float8 cross by DLPack (zerocopy picks it for them)"))
    kind, size = _CODES[dtype]
    order = "|" if size == 1 else ("<" if _LITTLE else ">")
    return f"{order}{kind}{size}"


def dtype_of(typestr: str) -> str:
    """Canonical dtype of a CAI type string; raises for void (``|V2``: a bfloat16 that
    lost its name), big-endian and anything no framework shares."""
    if len(typestr) < 3 or typestr[0] not in "<>|=":
        raise UnsupportedDtypeError(message("Not a CUDA Array Interface type string", got=repr(typestr)))
    order, kind, size = typestr[0], typestr[1], typestr[2:]
    if kind == "V":
        raise UnsupportedDtypeError(message(
            f"CUDA Array Interface type {typestr!r} is raw bytes: the producer could not name "
            "its dtype (bfloat16 and float8 come out like this)",
            hint="convert through DLPack, which carries bfloat16; "
                 "zerocopy never reads void bytes as numbers"))
    big = order == ">" or (order == "=" and not _LITTLE)
    if not size.isdigit() or (big and size != "1"):
        raise UnsupportedDtypeError(message(f"CUDA Array Interface type {typestr!r} is not shared",
                                            hint="byte-swap or cast it first"))
    name = _FROM_CODE.get((kind, int(size)))
    if name is None:
        raise UnsupportedDtypeError(message(f"CUDA Array Interface type {typestr!r} is not shared",
                                            hint="cast it to a shared dtype first"))
    return name


@dataclass(frozen=True)
class CAIView:
    """One object's CUDA Array Interface, read once. ``strides`` in bytes (None: C order)."""

    owner: Any
    ptr: int
    readonly: bool
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None
    dtype: str
    itemsize: int
    version: int
    stream: int | None

    @property
    def device(self) -> tuple[str, int]:
        return _cuda.pointer_device(self.ptr)

    @property
    def nbytes(self) -> int:
        n = self.itemsize
        for d in self.shape:
            n *= d
        return n


def read(obj: Any) -> CAIView:
    cai = obj.__cuda_array_interface__
    dtype = dtype_of(cai["typestr"])
    ptr, readonly = cai["data"]
    strides = cai.get("strides")
    if cai.get("mask") is not None:
        raise UnsupportedDtypeError(message("Masked CUDA Array Interface data is not shared",
                                            hint="fill the masked values first"))
    stream = cai.get("stream")
    if stream == 0:
        raise BufferError("CUDA Array Interface stream 0 is disallowed by the protocol (ambiguous)")
    return CAIView(obj, int(ptr or 0), bool(readonly), tuple(cai["shape"]),
                   None if strides is None else tuple(strides), dtype, _CODES[dtype][1],
                   int(cai.get("version", 0)), stream)


class CAIExporter:
    """A buffer published as CUDA Array Interface v3; ``owner`` keeps the memory alive.

    ``stream``: the stream the data is ready on (None: already ordered)."""

    __slots__ = ("__cuda_array_interface__", "owner")

    def __init__(self, owner: Any, ptr: int, shape: tuple[int, ...], strides: tuple[int, ...] | None,
                 dtype: str, *, readonly: bool = False, stream: int | None = None) -> None:
        self.owner = owner
        self.__cuda_array_interface__: dict[str, Any] = {
            "version": 3, "shape": tuple(shape), "typestr": typestr_of(dtype),
            "data": (int(ptr), bool(readonly)), "strides": None if strides is None else tuple(strides),
            "descr": [("", typestr_of(dtype))], "stream": stream,
        }

    @classmethod
    def of(cls, view: CAIView, stream: int | None) -> CAIExporter:
        return cls(view.owner, view.ptr, view.shape, view.strides, view.dtype,
                   readonly=view.readonly, stream=stream)


def refuse_dtype(info: Info, options: Options) -> Refusal | None:
    """Edge check: bfloat16 / float8 never through the CUDA Array Interface."""
    if info.dtype in NO_CAI_DTYPES:
        return Refusal(f"the CUDA Array Interface has no {info.dtype} type (it would arrive as void bytes)",
                       "DLPack carries it", fixable=False, error=UnsupportedDtypeError)
    if info.device[0] == "cpu":
        return Refusal("the CUDA Array Interface is for device memory", fixable=False, quiet=True)
    return None


def import_view(obj: Any, options: Options, consumer_stream: Callable[[int], Any]) -> CAIExporter:
    """What a ``cai -> framework`` edge gives the consumer: the same memory, published with
    no stream, after the consumer's stream was ordered behind the producer's.

    ``consumer_stream(device)``: the consumer framework's current stream on that device,
    asked only when the producer published a stream and ``options.stream`` is not given."""
    view = read(obj)
    if view.stream is not None and options.stream is not streams.NO_SYNC and view.nbytes:
        device = view.device[1]
        target = options.stream if options.stream is not None else consumer_stream(device)
        streams.order(view.stream, target, device)
    return CAIExporter.of(view, None)
