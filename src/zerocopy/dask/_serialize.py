"""Serializers for framework tensors in distributed's own families (``dask`` and ``cuda``).

``dask`` family (every transport; TCP by default): host data leaves as one out-of-band
frame, a ``memoryview`` over the tensor's own bytes (no pickle, no copy for C-contiguous
data); device data is staged to host once (said in the header: ``"staged": true``). The
receiver views the frame as NumPy and hands it to ``zerocopy.to`` (zero-copy where the
framework allows; TensorFlow and JAX need 64-byte alignment, which a received frame has
only by chance: otherwise one copy).

``cuda`` family (device-aware transports such as UCX): device data leaves as one device
frame over the tensor's own memory, after the producer's stream has finished writing it
(a host wait on that stream: the transport's stream is not known here).

Values are bit-exact and dtypes kept: the header carries zerocopy's canonical dtype name,
so bfloat16 travels as bfloat16. Headers carry ``"zerocopy": FORMAT``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import zerocopy
from zerocopy import _cuda
from zerocopy._detect import framework_of
from zerocopy._dtypes import numpy_dtype
from zerocopy.adapters.numpy import aligned
from zerocopy.errors import InvalidArgumentError, message

__all__ = ["FORMAT", "FRAMEWORKS", "deserialize_device", "deserialize_host", "register",
           "registered", "serialize_device", "serialize_host"]

FORMAT = 1

# framework -> (top-level module, distributed's own module for it, or None)
FRAMEWORKS: dict[str, tuple[str, str | None]] = {
    "torch": ("torch", "distributed.protocol.torch"),
    "jax": ("jax", None),
    "tensorflow": ("tensorflow", None),
    "cupy": ("cupy", "distributed.protocol.cupy"),
    "numba": ("numba", "distributed.protocol.numba"),
}
# Dask's own host path for CuPy and Numba stages once and is kept; we add the cuda family.
_HOST_FAMILY = ("torch", "jax", "tensorflow")
_DEVICE_FAMILY = ("torch", "jax", "cupy", "numba")

_NEEDS_ALIGNMENT = ("tensorflow", "jax")  # host tensors they import must be 64-byte aligned

_registered: dict[str, list[str]] = {}


# --------------------------------------------------------------------------- host frames
def _prepare(obj: Any, framework: str) -> tuple[Any, dict[str, Any]]:
    """The plain data of ``obj`` and what must travel beside it (torch's autograd flag)."""
    if framework == "torch":
        extra = {"requires_grad": bool(obj.requires_grad)}
        obj = obj.detach()
        if obj.is_conj():
            obj = obj.resolve_conj()
        if obj.is_neg():
            obj = obj.resolve_neg()
        return obj, extra
    return obj, {}


def _header(info: Any, framework: str, extra: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"zerocopy": FORMAT, "framework": framework, "dtype": info.dtype,
            "shape": list(info.shape), "device": list(info.device),
            "writeable": not info.readonly, "extra": extra, **more}


def serialize_host(obj: Any) -> tuple[dict[str, Any], list[memoryview]]:
    """``(header, [frame])``: the frame is a memoryview over ``obj``'s own bytes when ``obj``
    is C-contiguous host data; a strided source is made contiguous (one copy, said in the
    header as ``"copied"``), a device source is staged to host (``"staged"``)."""
    framework = _framework(obj)
    obj, extra = _prepare(obj, framework)
    info = zerocopy.inspect(obj)
    if info.dtype is None:
        raise NotImplementedError(f"{framework} dtype outside zerocopy's shared dtypes")
    staged = info.device[0] != "cpu"
    host = zerocopy.to(obj, "numpy")  # shares host memory; a device source is copied once
    copied = None
    if not host.flags.c_contiguous:
        host, copied = np.ascontiguousarray(host), "strided source made contiguous"
    frame = host.reshape(-1).view(np.uint8).data
    return _header(info, framework, extra, staged=staged, copied=copied), [frame]


def deserialize_host(header: dict[str, Any], frames: list[Any]) -> Any:
    """The tensor of ``header["framework"]`` over the received frame (zero-copy where the
    framework takes the frame's memory; on its current device if the sender's was a GPU).
    TensorFlow and JAX take only 64-byte aligned memory: an unaligned frame is copied once."""
    (frame,) = frames
    view = memoryview(frame).cast("B") if not isinstance(frame, (bytes, bytearray)) else memoryview(frame)
    if header["writeable"] and view.readonly:
        view = memoryview(bytearray(view))  # a writable tensor needs writable memory: one copy
    array = np.frombuffer(view, dtype=numpy_dtype(header["dtype"])).reshape(header["shape"])
    framework = header["framework"]
    if framework in _NEEDS_ALIGNMENT and array.ctypes.data % 64:
        # TensorFlow aborts the process on its first op over an unaligned host tensor
        # (tensor.h IsAligned), JAX copies it anyway: one copy to a 64-byte aligned buffer
        array = aligned(array)
    device = "cuda" if header["device"][0] != "cpu" else None
    result = zerocopy.to(array, framework, device=device)
    return _finish(result, framework, header["extra"])


def _finish(result: Any, framework: str, extra: dict[str, Any]) -> Any:
    if framework == "torch" and extra.get("requires_grad"):
        result.requires_grad_(True)
    return result


# --------------------------------------------------------------------------- device frames
class DeviceFrame:
    """``nbytes`` bytes of device memory at ``ptr`` as a 1-D uint8 CUDA Array Interface
    object; keeps ``owner`` alive. What the ``cuda`` family hands the transport."""

    __slots__ = ("device", "nbytes", "owner", "ptr")

    def __init__(self, ptr: int, nbytes: int, owner: Any, device: int) -> None:
        self.ptr, self.nbytes, self.owner, self.device = ptr, nbytes, owner, device

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        # stream None: the producer's stream was waited on before this frame was made
        return {"shape": (self.nbytes,), "typestr": "|u1", "data": (self.ptr, False),
                "strides": None, "version": 3, "stream": None}

    def __len__(self) -> int:
        return self.nbytes


def _wait_producer(obj: Any, framework: str, device: int) -> None:
    """Host wait until the producer's stream has written ``obj`` (the consumer's stream is
    the transport's and unknown here)."""
    if framework == "torch":
        import torch

        torch.cuda.current_stream(device).synchronize()
    elif framework == "cupy":
        import cupy

        with cupy.cuda.Device(device):
            cupy.cuda.get_current_stream().synchronize()
    elif framework == "numba":
        stream: Any = getattr(obj, "stream", None)
        if stream:
            stream.synchronize()
        else:
            from numba import cuda

            cuda.default_stream().synchronize()
    elif framework == "jax":
        obj.block_until_ready()


def _contiguous_device(obj: Any, framework: str) -> Any:
    if framework == "torch":
        return obj.contiguous()
    if framework == "cupy":
        import cupy

        return cupy.ascontiguousarray(obj)
    if framework == "jax":
        return obj  # JAX arrays are dense, row-major
    raise NotImplementedError("strided Numba device array: Dask's own serializer copies it")


def serialize_device(obj: Any) -> tuple[dict[str, Any], list[DeviceFrame]]:
    """``(header, [device frame])`` over ``obj``'s own device memory; host data raises
    NotImplementedError so distributed falls through to the next family."""
    framework = _framework(obj)
    obj, extra = _prepare(obj, framework)
    info = zerocopy.inspect(obj)
    if info.device[0] == "cpu" or info.dtype is None:
        raise NotImplementedError("host data or an unshared dtype: the dask family sends it")
    if info.layout != "C":
        obj = _contiguous_device(obj, framework)
        info = zerocopy.inspect(obj)
    _wait_producer(obj, framework, info.device[1])
    frame = DeviceFrame(info.ptr, info.nbytes, obj, info.device[1])
    return _header(info, framework, extra, staged=False, copied=None), [frame]


def _cai_parts(frame: Any) -> tuple[int, int]:
    cai = frame.__cuda_array_interface__
    nbytes = int(np.prod(cai["shape"])) * np.dtype(cai["typestr"]).itemsize
    return int(cai["data"][0]), nbytes


def deserialize_device(header: dict[str, Any], frames: list[Any]) -> Any:
    """The tensor over the received device frame, no copy: viewed through torch where the
    target is torch or the dtype is bfloat16 (CuPy has none), else through CuPy."""
    (frame,) = frames
    framework, dtype, shape = header["framework"], header["dtype"], header["shape"]
    ptr, nbytes = _cai_parts(frame)
    device = _pointer_device(ptr)
    raw = DeviceFrame(ptr, nbytes, frame, device)
    if framework == "torch" or dtype == "bfloat16" or "cupy" not in _importable():
        import torch

        view = torch.as_tensor(raw, device=f"cuda:{device}").view(_torch_dtype(dtype)).reshape(shape)
    else:
        import cupy

        with cupy.cuda.Device(device):
            view = cupy.asarray(raw).view(numpy_dtype(dtype)).reshape(shape)
    result = view if zerocopy.inspect(view).framework == framework else zerocopy.to(view, framework)
    return _finish(result, framework, header["extra"])


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bool": torch.bool, "bfloat16": torch.bfloat16}.get(name) or getattr(torch, name)


def _pointer_device(ptr: int) -> int:
    return _cuda.pointer_device(ptr)[1]


def _importable() -> set[str]:
    return {name for name in ("cupy", "torch") if importlib.util.find_spec(name) is not None}


# --------------------------------------------------------------------------- registration
def _framework(obj: Any) -> str:
    name = framework_of(obj)
    if name not in FRAMEWORKS:
        raise NotImplementedError(f"zerocopy.dask has no serializer for {type(obj).__qualname__}")
    return name


def _classes(framework: str) -> tuple[type, ...]:
    """The classes to register for ``framework`` (imported: called only once it is)."""
    if framework == "torch":
        import torch

        return (torch.Tensor,)
    if framework == "jax":
        import jax

        return (jax.Array,)
    if framework == "tensorflow":
        import tensorflow as tf

        return (tf.Tensor,)
    if framework == "cupy":
        import cupy

        return (cupy.ndarray,)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return (DeviceNDArray,)


def _install(framework: str, families: tuple[str, ...]) -> None:
    from distributed.protocol.cuda import cuda_deserialize, cuda_serialize
    from distributed.protocol.serialize import dask_deserialize, dask_serialize

    own = FRAMEWORKS[framework][1]
    if own is not None:  # distributed's registration first, so it never overwrites ours later
        importlib.import_module(own)
    for cls in _classes(framework):
        if "dask" in families:
            dask_serialize.register(cls, serialize_host)
            dask_deserialize.register(cls, deserialize_host)
        if "cuda" in families:
            cuda_serialize.register(cls, serialize_device)
            cuda_deserialize.register(cls, deserialize_device)


def _families(framework: str) -> tuple[str, ...]:
    return tuple(f for f, names in (("dask", _HOST_FAMILY), ("cuda", _DEVICE_FAMILY))
                 if framework in names)


def register(frameworks: list[str] | None = None) -> dict[str, list[str]]:
    """Register zerocopy's serializers in this process for ``frameworks`` (default: all it
    has). A framework already imported is registered now; one not yet imported is registered
    when distributed first meets one of its objects (``register_lazy``), so registering
    imports no framework. Returns framework -> families ({"torch": ["dask", "cuda"], ...})."""
    from distributed.protocol.cuda import cuda_deserialize, cuda_serialize
    from distributed.protocol.serialize import dask_deserialize, dask_serialize

    dispatchers = {"dask": (dask_serialize, dask_deserialize),
                   "cuda": (cuda_serialize, cuda_deserialize)}
    names = list(FRAMEWORKS) if frameworks is None else list(frameworks)
    for name in names:
        if name not in FRAMEWORKS:
            raise InvalidArgumentError(message(
                f"zerocopy.dask has no serializer for {name!r}",
                expected=" / ".join(FRAMEWORKS)))
        families = _families(name)
        top = FRAMEWORKS[name][0]
        if top in sys.modules:
            _install(name, families)
        else:
            lazy = _lazy(name, families)
            tops = (top, "jaxlib") if name == "jax" else (top,)  # jax arrays' class is jaxlib's
            for family in families:
                for dispatch in dispatchers[family]:
                    for module in tops:
                        dispatch.register_lazy(module, lazy)
        _registered[name] = list(families)
    return {name: list(_registered[name]) for name in names}


def _lazy(framework: str, families: tuple[str, ...]) -> Callable[[], None]:
    def install() -> None:
        _install(framework, families)

    return install


def registered() -> dict[str, list[str]]:
    """Frameworks whose serializers ``register`` set up in this process."""
    return {name: list(families) for name, families in _registered.items()}
