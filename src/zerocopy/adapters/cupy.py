"""CuPy arrays: device memory, exported by DLPack and CUDA Array Interface v3 (with its
stream), imported by both. CAI is the cheaper door both ways (anchors: cupy->torch 3.9 us
by CAI against 5.9 by DLPack); DLPack is kept for bfloat16, which CAI cannot name."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES, name_of_numpy, numpy_dtype
from zerocopy.adapters._common import require
from zerocopy.errors import UnsupportedDtypeError, message
from zerocopy.exchange import cai, checks, pointers, streams
from zerocopy.exchange.edges import CAI, DECLINED, DLPACK, SAME, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "cupy"
IMPORT_NAME = "cupy"
PIP = "cupy-cuda13x"
PROTOCOLS = {"exports": ("DLPack v1", "CUDA Array Interface v3 (stream)"),
             "imports": ("DLPack v1", "CUDA Array Interface v3")}
PINNED_FROM = 1 << 20  # device -> host copies at least this big go through pinned memory


def _cupy() -> Any:
    return require("cupy", PIP)


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES)


def version() -> str:
    return str(_cupy().__version__)


def devices() -> list[str]:
    try:
        return [f"cuda:{i}" for i in range(_cupy().cuda.runtime.getDeviceCount())]
    except Exception:  # no driver: CuPy installed on a CPU machine
        return []


def inspect(x: Any) -> Info:
    name = name_of_numpy(x.dtype)
    if name is None:
        raise UnsupportedDtypeError(message(f"CuPy dtype {x.dtype} is not shared by the other frameworks",
                                            hint="cast explicitly first"))
    contiguous = x.flags.c_contiguous
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=tuple(x.shape),
                strides=None if contiguous else tuple(x.strides), itemsize=x.itemsize,
                pointer=lambda: int(x.data.ptr), device=("cuda", int(x.device.id)),
                layout="C" if contiguous else None)


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a C-ordered CuPy array, read cheaply."""
    if not x.flags.c_contiguous:
        return None
    return (x.dtype, size_class(x.shape), x.device.id)


def fast_pointer(x: Any) -> int:
    """Where the data of an array with a fast key starts (Info.ptr): plans into JAX are
    kept per alignment, and without this they would never reach the fast lane."""
    return int(x.data.ptr)


def make(values: np.ndarray, device: int = 0) -> Any:
    cupy = _cupy()
    with cupy.cuda.Device(device):
        if values.dtype.kind == "V":  # bfloat16: move the bits, then name them
            return cupy.asarray(values.view(np.int16)).view(values.dtype)
        return cupy.asarray(values)


def to_host(x: Any) -> np.ndarray:
    cupy = _cupy()
    if x.dtype.kind == "V":
        return cupy.asnumpy(x.view(np.int16)).view(numpy_dtype("bfloat16"))
    return cupy.asnumpy(x)


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (CuPy or NumPy) on ``device``: a CuPy array on a GPU, a NumPy array
    (in pinned memory when it is big enough for that to pay) on the host."""
    cupy = _cupy()
    if device[0] == "cpu":
        if x.nbytes >= PINNED_FROM and x.dtype.kind != "V":
            out = _pinned_empty(x.shape, x.dtype)
            x.get(out=out)
            return out
        return to_host(x)
    with cupy.cuda.Device(device[1]):
        if isinstance(x, np.ndarray):
            if x.dtype.kind == "V":
                return cupy.asarray(x.view(np.int16)).view(x.dtype)
            return cupy.asarray(x)
        return x.copy()  # peer copy onto the current device


def _pinned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    cupy = _cupy()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    memory = cupy.cuda.alloc_pinned_memory(max(nbytes, 1))
    return np.frombuffer(memory, dtype, int(np.prod(shape, dtype=np.int64))).reshape(shape)


def current_stream(device: int) -> int:
    cupy = _cupy()
    with cupy.cuda.Device(device):
        return int(cupy.cuda.get_current_stream().ptr) or streams.LEGACY


@cache
def _current_stream_ptr() -> Callable[[], int]:
    """CuPy's current stream of the current device as a raw handle (0: the legacy default
    stream). CuPy 14.2 keeps its get_current_stream_ptr() in C (cdef): the Stream object's
    ptr is read there."""
    cupy = _cupy()
    direct = getattr(cupy.cuda.stream, "get_current_stream_ptr", None)
    return direct if direct is not None else lambda: int(cupy.cuda.get_current_stream().ptr)


# --------------------------------------------------------------- handing pointers over (pointers.py)

def ready_buffer(x: Any) -> tuple[int, tuple[int, ...], bool] | None:
    """(data pointer, shape, read-only) of a C-ordered array whose work is ordered on the
    legacy default stream: CuPy queues on its current stream, so that one must be it."""
    if _current_stream_ptr()():
        return None
    return x.data.ptr, x.shape, False


def adopter(dtype: str, device: int) -> Callable[..., Any] | None:
    """A CuPy array over a pointer handed over, while CuPy's current stream is the legacy
    default one (else DECLINED); None for bfloat16 (CuPy's comes from ml_dtypes)."""
    if dtype == "bfloat16":
        return None
    cupy = _cupy()
    kind, itemsize = numpy_dtype(dtype), numpy_dtype(dtype).itemsize
    ndarray, pointer, unowned = cupy.ndarray, cupy.cuda.MemoryPointer, cupy.cuda.UnownedMemory
    current = _current_stream_ptr()

    def adopt(owner: Any, ptr: int, shape: tuple[int, ...], readonly: bool) -> Any:
        if current():
            return DECLINED
        # The device is given: UnownedMemory would otherwise ask the driver for it.
        return ndarray(shape, kind, pointer(unowned(ptr, math.prod(shape) * itemsize, owner, device), 0))

    return adopt


# --------------------------------------------------------------- between workers (zerocopy.dask)

def tensor_classes() -> tuple[type, ...]:
    """The classes zerocopy.dask registers its serializers for (imports CuPy)."""
    return (_cupy().ndarray,)


def wait_ready(x: Any, device: int) -> None:
    """Host wait until the work queued on CuPy's current stream of ``device`` is done."""
    cupy = _cupy()
    with cupy.cuda.Device(device):
        cupy.cuda.get_current_stream().synchronize()


def contiguous(x: Any) -> Any:
    """``x``'s values in C order on its own device (``x`` itself if it already is)."""
    return _cupy().ascontiguousarray(x)


def device_view(frame: Any, dtype: str, shape: Sequence[int], device: int) -> Any:
    """A CuPy array over ``frame`` (1-D uint8 device memory with the CUDA Array Interface)
    on cuda:``device``, viewed as ``dtype`` and ``shape``: no copy. None for bfloat16:
    zerocopy.dask views bfloat16 frames through a framework with a bfloat16 of its own
    (torch), as it always has (CuPy's comes from ml_dtypes)."""
    if dtype == "bfloat16":
        return None
    cupy = _cupy()
    with cupy.cuda.Device(device):
        return cupy.asarray(frame).view(numpy_dtype(dtype)).reshape(shape)


# --------------------------------------------------------------- edges

def _from_dlpack(x: Any, options: Options) -> Any:
    return _cupy().from_dlpack(streams.dlpack_source(x, options.stream))


def _from_cai(x: Any, options: Options) -> Any:
    return _cupy().asarray(cai.import_view(x, options, current_stream))


def _on_gpu(info: Info, options: Options) -> Refusal | None:
    if info.device[0] == "cuda":
        return None
    return Refusal(f"CuPy holds device memory and the data is on {info.device[0]}",
                   "pass device='cuda:0' to copy it to the GPU on purpose", fixable=False, quiet=True)


_DTYPES = checks.dtype_in("CuPy", dtypes)

EDGES = (
    # Costs are what zerocopy pays per call, measured on an H100: the consumer's own DLPack
    # import runs the stream handshake natively, while our CAI path reads and re-publishes
    # the interface in Python. CAI stays the way in and out of Numba (no DLPack there).
    Edge(NAME, CAI, "CUDA Array Interface v3", "x  (ndarray.__cuda_array_interface__, with its stream)",
         lambda x, o: x, cost=1.0, check=cai.refuse_dtype, fast=lambda info, source: SAME),
    Edge(CAI, NAME, "CUDA Array Interface v3", "cupy.asarray(x)", _from_cai, cost=3.0,
         check=checks.all_of(_on_gpu, cai.refuse_dtype, _DTYPES), fast=pointers.specialiser(NAME)),
    Edge(NAME, DLPACK, "DLPack v1", "x  (ndarray.__dlpack__)", lambda x, o: x, cost=1.0,
         fast=lambda info, source: SAME),
    Edge(DLPACK, NAME, "DLPack v1", "cupy.from_dlpack(x)", _from_dlpack, cost=1.5,
         fast=pointers.specialiser(NAME, lambda: _cupy().from_dlpack),
         check=checks.all_of(_on_gpu, _DTYPES,
                             checks.layouts("cupy.from_dlpack", frozenset({"C", "F", "compact", "strided"}),
                                            "rejects negative strides"))),
)
