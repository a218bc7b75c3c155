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

No framework is named here. Which frameworks, which families, which modules distributed
waits for and which of its own serializer modules go first are the registry records'
``dask`` facts; what a framework does to its tensors on the way is its adapter's (optional
functions, one shape each: tests/exchange/test_adapter_shape.py):

- ``tensor_classes()``: the classes registered (every framework with ``dask`` facts);
- ``transport_state(x)`` / ``restore_state(x, state)``: plain data out, and what travels
  beside it (torch's autograd flag);
- ``HOST_ALIGNMENT``: host frames it takes only when so aligned (JAX, TensorFlow);
- ``wait_ready(x, device)``: the host wait for the producer (the ``cuda`` family);
- ``contiguous(x)``: a C-ordered copy on the device (without it, a strided device array
  is left to distributed's own serializer);
- ``device_view(frame, dtype, shape, device)``: a view of a received device frame.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import zerocopy
from zerocopy import _cuda, registry
from zerocopy._detect import framework_of
from zerocopy._dtypes import numpy_dtype
from zerocopy.adapters.numpy import aligned
from zerocopy.errors import FrameworkNotInstalledError, InvalidArgumentError, message

__all__ = ["FORMAT", "FRAMEWORKS", "deserialize_device", "deserialize_host", "register",
           "registered", "serialize_device", "serialize_host"]

FORMAT = 1

# The frameworks whose tensors these serializers carry, in the registry's order.
FRAMEWORKS: tuple[str, ...] = tuple(r.name for r in registry.RECORDS if r.dask is not None)

_registered: dict[str, list[str]] = {}


def _dask(name: str) -> registry.DaskSerializer:
    facts = registry.record(name).dask
    assert facts is not None, name  # FRAMEWORKS holds only frameworks with dask facts
    return facts


# --------------------------------------------------------------------------- host frames
def _prepare(obj: Any, framework: str) -> tuple[Any, dict[str, Any]]:
    """The plain data of ``obj`` and what must travel beside it (the adapter's
    ``transport_state``: torch's autograd flag)."""
    transport_state = getattr(registry.adapter(framework), "transport_state", None)
    return (obj, {}) if transport_state is None else transport_state(obj)


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
    Frameworks with a ``HOST_ALIGNMENT`` (TensorFlow and JAX: 64 bytes) take only memory so
    aligned: an unaligned frame is copied once."""
    (frame,) = frames
    view = memoryview(frame).cast("B") if not isinstance(frame, (bytes, bytearray)) else memoryview(frame)
    if header["writeable"] and view.readonly:
        view = memoryview(bytearray(view))  # a writable tensor needs writable memory: one copy
    array = np.frombuffer(view, dtype=numpy_dtype(header["dtype"])).reshape(header["shape"])
    framework = header["framework"]
    align = getattr(registry.adapter(framework), "HOST_ALIGNMENT", None)
    if align is not None and array.ctypes.data % align:
        # TensorFlow aborts the process on its first op over an unaligned host tensor
        # (tensor.h IsAligned), JAX copies it anyway: one copy to an aligned buffer
        array = aligned(array, align=align)
    device = "cuda" if header["device"][0] != "cpu" else None
    result = zerocopy.to(array, framework, device=device)
    return _finish(result, framework, header["extra"])


def _finish(result: Any, framework: str, extra: dict[str, Any]) -> Any:
    restore_state = getattr(registry.adapter(framework), "restore_state", None)
    return result if restore_state is None else restore_state(result, extra)


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
    the transport's and unknown here): the adapter's ``wait_ready``."""
    wait_ready = getattr(registry.adapter(framework), "wait_ready", None)
    if wait_ready is not None:
        wait_ready(obj, device)


def _contiguous_device(obj: Any, framework: str) -> Any:
    contiguous = getattr(registry.adapter(framework), "contiguous", None)
    if contiguous is None:
        raise NotImplementedError(f"strided {framework} device array: Dask's own serializer copies it")
    return contiguous(obj)


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
    """The tensor over the received device frame, no copy: viewed by the first of
    ``_viewers(framework)`` whose ``device_view`` takes the dtype (the target itself where
    it can, else CuPy, else torch, for bfloat16 too), then handed to the target."""
    (frame,) = frames
    framework, dtype, shape = header["framework"], header["dtype"], header["shape"]
    ptr, nbytes = _cai_parts(frame)
    device = _pointer_device(ptr)
    raw = DeviceFrame(ptr, nbytes, frame, device)
    view = _device_view(raw, framework, dtype, shape, device)
    result = view if zerocopy.inspect(view).framework == framework else zerocopy.to(view, framework)
    return _finish(result, framework, header["extra"])


def _viewers(framework: str) -> list[str]:
    """Installed frameworks whose adapter views raw device memory (``device_view``), in the
    order they are asked: the target itself, then the device-only ones (their arrays are
    the plainest view of device memory: CuPy), then the rest (torch)."""
    order = dict.fromkeys([framework, *registry.names(memory="device"), *registry.names()])
    return [name for name in order
            if hasattr(registry.adapter(name), "device_view") and registry.installed(name)]


def _device_view(raw: DeviceFrame, framework: str, dtype: str, shape: list[int], device: int) -> Any:
    viewers = _viewers(framework)
    for name in viewers:
        view = registry.adapter(name).device_view(raw, dtype, shape, device)
        if view is not None:  # None: this viewer has no view of dtype, ask the next one
            return view
    every = [r for r in registry.RECORDS if hasattr(registry.adapter(r.name), "device_view")]
    raise FrameworkNotInstalledError(message(
        f"No installed framework views a received {dtype} device frame for {framework}",
        got=f"installed: {', '.join(viewers) or 'none of them'}",
        hint=" or ".join(f"pip install {r.pip}" for r in every)))


def _pointer_device(ptr: int) -> int:
    return _cuda.pointer_device(ptr)[1]


# --------------------------------------------------------------------------- registration
def _framework(obj: Any) -> str:
    name = framework_of(obj)
    if name is None or name not in FRAMEWORKS:
        raise NotImplementedError(f"zerocopy.dask has no serializer for {type(obj).__qualname__}")
    return name


def _classes(framework: str) -> tuple[type, ...]:
    """The classes to register for ``framework`` (imported: called only once it is)."""
    return tuple(registry.adapter(framework).tensor_classes())


def _install(framework: str, families: tuple[str, ...]) -> None:
    from distributed.protocol.cuda import cuda_deserialize, cuda_serialize
    from distributed.protocol.serialize import dask_deserialize, dask_serialize

    own = _dask(framework).distributed_module
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
    return _dask(framework).families


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
        tops = _dask(name).class_modules  # the first is the framework's own package
        if tops[0] in sys.modules:
            _install(name, families)
        else:
            lazy = _lazy(name, families)
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
