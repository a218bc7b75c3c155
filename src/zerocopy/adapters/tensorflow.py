"""TensorFlow eager tensors. Immutable; DLPack import takes legacy capsules only, and only
C-contiguous ones (no step slices, no transposes).

On the GPU, TensorFlow's DLPack has no stream argument either way:

* Export (TF -> others): ``EagerTensor.__dlpack__`` raises on any ``stream=``, which every
  GPU importer (CuPy, torch, JAX) passes, so the edge hands them a small producer that
  takes the stream and returns TF's capsule. No ordering is lost: TF's export waits for
  the device itself (``TFE_TensorHandleDevicePointer`` syncs the GPU; "ensures the
  underlying data memory is ready when returns", tf.experimental.dlpack.to_dlpack).
* Import (others -> TF): ``tf.experimental.dlpack.from_dlpack`` takes a capsule and no
  stream, and TF later reads on its own streams, which cannot be made to wait on the
  device. So the consumer must synchronise: the edge asks the producer to order its work
  onto the legacy stream (or the ``stream=`` given to ``zerocopy.to``), then waits for that
  stream on the host before TF sees the memory (JAX: ``block_until_ready``).
  ``stream=zerocopy.NO_SYNC`` skips both waits.

A tensor's device is where its memory is (``backing_device``), not where its op ran: TF
keeps int32 results of GPU ops in host memory, and exports them as CPU tensors."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from zerocopy import _cuda
from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import require
from zerocopy.errors import DeviceError, UnsupportedDtypeError, UnsupportedObjectError, message
from zerocopy.exchange import checks, streams
from zerocopy.exchange.dlpack import capsule_info, data_pointer
from zerocopy.exchange.edges import DLPACK, SAME, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "tensorflow"
IMPORT_NAME = "tensorflow"
PIP = "tensorflow-cpu"
HOST_ALIGNMENT = 64  # TensorFlow takes host buffers aligned to this many bytes only
PROTOCOLS = {"exports": ("DLPack legacy", "buffer protocol", "array interface (np.asarray)"),
             "imports": ("DLPack legacy capsules only",)}


def _tf() -> Any:
    return require("tensorflow", PIP)


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES)


def version() -> str:
    return str(_tf().__version__)


def devices() -> list[str]:
    return [d.name.replace("/physical_device:", "").lower() for d in _tf().config.list_physical_devices()]


def _device_name(x: Any) -> str:
    # Where the memory is: int32 results of GPU ops live in host memory (x.device says GPU).
    try:
        return str(x.backing_device or x.device or "")
    except (AttributeError, ValueError, RuntimeError):
        return str(x.device or "")


def _device_of(x: Any) -> tuple[str, int]:
    # '/job:localhost/replica:0/task:0/device:GPU:0'
    kind, _, index = (_device_name(x) or "device:CPU:0").rpartition("device:")[2].partition(":")
    return ("cpu" if kind == "CPU" else "cuda", int(index or 0) if kind != "CPU" else 0)


# What to hand over instead, per kind of TensorFlow object that is no eager tensor.
_NOT_EAGER_HINTS = {
    "RaggedTensor": "a RaggedTensor is ragged (rows of their own lengths) and an array is "
                    "rectangular: convert its parts, x.flat_values and x.row_splits (eager tensors, "
                    "shared), or pad it with x.to_tensor() (a copy)",
    "SparseTensor": "convert its parts (x.values, x.indices), or tf.sparse.to_dense(x) (a copy)",
    "": "for a tf.Variable use v.read_value() (a copy); inside tf.function, convert outside it",
}


def inspect(x: Any) -> Info:
    if not hasattr(x, "_id") or not hasattr(x, "numpy"):
        raise UnsupportedObjectError(message(
            "Only eager TensorFlow tensors hold memory that can be shared",
            got=type(x).__name__, hint=_NOT_EAGER_HINTS.get(type(x).__name__, _NOT_EAGER_HINTS[""])))
    name = x.dtype.name
    if name not in SHARED_DTYPES:
        raise UnsupportedDtypeError(message(f"TensorFlow dtype {name} has no shared counterpart",
                                            hint="strings and resources stay in TensorFlow"))
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=tuple(x.shape), strides=None,
                itemsize=x.dtype.size, pointer=lambda: _pointer(x), device=_device_of(x),
                readonly=True)


def _pointer(x: Any) -> int:
    # An unconsumed capsule frees itself; reading it costs no copy, whatever the dtype.
    return int(capsule_info(_tf().experimental.dlpack.to_dlpack(x))["data"])


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for an eager tensor (always C-ordered, immutable).

    The dtype as its enum (``_datatype_enum()``, the int TF keeps): ``x.dtype`` builds a
    DType whose hash, paid by every lookup of the key, costs 0.15 us (0.2 us of the key's
    0.6 on the dev VM, 2026-12-03). A tensor class without it keys by its DType."""
    if not hasattr(x, "_id"):
        return None
    try:
        dtype: Any = x._datatype_enum()
    except AttributeError:
        dtype = x.dtype
    return (dtype, size_class(x._shape_tuple()), _device_name(x))  # a tuple, read in C


def fast_pointer(x: Any) -> int | None:
    """Where the data of a tensor with a fast key starts (Info.ptr, read from its capsule).
    None for strings, variants and resources: TF's to_dlpack aborts the process on them
    (inspect() refuses them first, so to() never asks; this keeps a direct call safe)."""
    if x.dtype.name in ("string", "variant", "resource"):
        return None
    if _device_name(x).endswith("CPU:0"):
        # Host memory: the NumPy view's pointer through the buffer protocol (0.8 us on the
        # VM, against 2.0 for a capsule). Never for GPU memory: np.asarray copies it out.
        return data_pointer(np.asarray(x))
    return _pointer(x)


def make(values: np.ndarray) -> Any:
    """A host probe, on TensorFlow's CPU even where a GPU is its default (tf.constant alone
    lands on the GPU there: the CPU matrix on the H200 had no TensorFlow row)."""
    tf = _tf()
    with tf.device("/CPU:0"):
        return tf.constant(values)


def to_host(x: Any) -> np.ndarray:
    """The values TensorFlow's own ops see now. A GPU tensor is read through a fresh
    device-side copy (``tf.identity`` where the memory is): its handle keeps the host copy
    of its first read, so ``x.numpy()`` a second time can miss a write made since through
    memory it shares with another framework (seen on the H200, TF 2.21; see
    _GPU_IMPORT_CAVEAT)."""
    if "GPU" not in str(x.backing_device or "").upper():
        return x.numpy()
    tf = _tf()
    with tf.device(x.backing_device):
        return tf.identity(x).numpy()


@cache
def gpu_count() -> int:
    """GPUs this TensorFlow can use (0 for tensorflow-cpu, or when its CUDA libraries are missing)."""
    return len(_tf().config.list_physical_devices("GPU"))


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (a tensor, or a NumPy array) on ``device``, as a TensorFlow tensor."""
    tf = _tf()
    if device[0] != "cpu" and device[1] >= gpu_count():
        raise DeviceError(message(
            f"TensorFlow sees no GPU {device[1]} (it sees {gpu_count()})",
            hint="a GPU TensorFlow needs its CUDA libraries: pip install tensorflow[and-cuda]"))
    where = "/CPU:0" if device[0] == "cpu" else f"/GPU:{device[1]}"
    with tf.device(where):
        # Across devices tf.identity always makes a new buffer (the caller moves only then).
        return tf.identity(tf.constant(x) if isinstance(x, np.ndarray) else x)


def tensor_classes() -> tuple[type, ...]:
    """The classes zerocopy.dask registers its serializers for (imports TensorFlow)."""
    return (_tf().Tensor,)


# --------------------------------------------------------------- edges

def _to_numpy(x: Any, options: Options) -> np.ndarray:
    return np.asarray(x)


def _no_bfloat16_scalar(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bfloat16" and not info.shape:
        return Refusal("TensorFlow's array interface fails on 0-d bfloat16 tensors")
    return None


class _GPUExport:
    """TF's GPU export for importers that pass ``stream=`` (all of them on CUDA): TF's own
    ``__dlpack__`` refuses any stream, and its export has already waited for the device."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor

    def __dlpack_device__(self) -> Any:
        return self.tensor.__dlpack_device__()

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: bool | None = None) -> Any:
        if copy:
            raise BufferError("TensorFlow's DLPack export never copies")
        if dl_device is not None and tuple(dl_device) != tuple(self.__dlpack_device__()):
            raise BufferError("TensorFlow's DLPack export cannot move data between devices")
        return _tf().experimental.dlpack.to_dlpack(self.tensor)


def _to_dlpack(x: Any, options: Options) -> Any:
    return _GPUExport(x) if _device_of(x)[0] == "cuda" else x


_CUDA_DEVICES = (2, 13)  # kDLCUDA, kDLCUDAManaged


def _ready_capsule(x: Any, stream: Any) -> Any:
    """A capsule of ``x`` whose pending writes have finished (TF cannot wait on the device)."""
    raw = streams.handle(stream)
    if isinstance(raw, streams.NoSync):
        return streams.dlpack_source(x, streams.NO_SYNC).__dlpack__()
    if (type(x).__module__ or "").partition(".")[0] in ("jax", "jaxlib"):
        x.block_until_ready()  # JAX: wait for this array only
        return x.__dlpack__()
    ordered_on = raw or streams.LEGACY
    capsule = x.__dlpack__(stream=ordered_on)  # the producer orders its work onto that stream
    _cuda.synchronize_stream(ordered_on)
    return capsule


_ALIGNED = checks.aligned("TensorFlow", HOST_ALIGNMENT)


def _host_aligned(info: Info, options: Options) -> Refusal | None:
    # TensorFlow's DLPack import accepts any host pointer, but its CPU kernels (Eigen)
    # abort the whole process on the first operation over a buffer that is not 64-byte
    # aligned ("Check failed: IsAligned()"). Device buffers are not checked that way.
    return _ALIGNED(info, options) if info.device[0] == "cpu" else None


def _from_dlpack(x: Any, options: Options) -> Any:
    tf = _tf()
    kind, index = (int(v) for v in x.__dlpack_device__())
    if kind not in _CUDA_DEVICES:
        return tf.experimental.dlpack.from_dlpack(x.__dlpack__())
    if index >= gpu_count():
        raise DeviceError(message(
            f"TensorFlow sees no GPU {index}, so it cannot take this CUDA tensor (it sees {gpu_count()})",
            hint="install a GPU TensorFlow (pip install tensorflow[and-cuda]), or pass device='cpu' "
                 "to copy the data to the host on purpose"))
    return tf.experimental.dlpack.from_dlpack(_ready_capsule(x, options.stream))


def _from_dlpack_fast(info: Info, source: str) -> Callable[[Any], Any] | None:
    # Host data: no device check, no stream to wait for.
    if info.device[0] != "cpu":
        return None
    from_dlpack = _tf().experimental.dlpack.from_dlpack
    return lambda x: from_dlpack(x.__dlpack__())


# Both seen on the H200 (TF 2.21): after t.numpy(), np.asarray(t) or a CPU op has read a GPU
# tensor, TF answers later host reads from that first copy (scripts/gpu-check's GPU matrix
# read a result twice and missed the write in between); its GPU ops read the memory itself.
_GPU_IMPORT_CAVEAT = (
    "TensorFlow's DLPack import takes no stream: zerocopy waits on the host for the producer's "
    "stream before TensorFlow reads the memory. TensorFlow keeps the host copy of its first host "
    "read (t.numpy(), np.asarray(t), a CPU op): a later write through the source reaches its GPU "
    "ops, not those reads (tf.identity(t) on the GPU, then .numpy(), reads afresh)")

EDGES = (
    Edge(NAME, "numpy", "buffer protocol", "np.asarray(x)", _to_numpy, cost=0.6,
         fast=lambda info, source: np.asarray,
         check=checks.all_of(checks.on_cpu("NumPy"), _no_bfloat16_scalar),
         caveat=lambda info: "TensorFlow tensors are immutable: the NumPy view is read-only"),
    # GPU: a producer that takes the importer's stream (TF's own refuses any); TF's export
    # waits for the device, so no ordering is lost.
    Edge(NAME, DLPACK, "DLPack legacy",
         "x  (EagerTensor.__dlpack__; on GPU tf.experimental.dlpack.to_dlpack(x))", _to_dlpack, cost=1.0,
         fast=lambda info, source: SAME if info.device[0] == "cpu" else None),
    # copy=True within TensorFlow: tf.identity may return the same buffer; DeepCopy never does.
    Edge(NAME, NAME, "copy", "tf.raw_ops.DeepCopy(x=x)", lambda x, o: _tf().raw_ops.DeepCopy(x=x),
         copies=True, immutable_result=True, cost=4.0),
    # GPU: TF takes no stream, so the producer's stream is waited for on the host first.
    Edge(DLPACK, NAME, "DLPack legacy capsule",
         "tf.experimental.dlpack.from_dlpack(x.__dlpack__())", _from_dlpack, cost=2.0,
         fast=_from_dlpack_fast,
         caveat=lambda info: _GPU_IMPORT_CAVEAT if info.device[0] == "cuda" else None,
         check=checks.all_of(
             checks.layouts("TensorFlow", frozenset({"C"}),
                            "imports only C-contiguous DLPack tensors (no step slices, no transposes)"),
             checks.dtype_in("TensorFlow", dtypes), _host_aligned),
         needs_pointer=True),
)
