"""Numba CUDA device arrays (``DeviceNDArray``, from ``numba.cuda`` / ``numba_cuda``).

Numba speaks only the CUDA Array Interface (v3, with its stream); it has no
``__dlpack__``, so every pair goes through CAI, and bfloat16 (which Numba cannot hold)
never reaches it. Numba's own ``.T`` is broken on NumPy 2.5 (``np.row_stack``): the
matrix transposes through other frameworks only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zerocopy import _cuda as cuda_layer  # _cuda() below is numba.cuda
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.adapters._common import require
from zerocopy.errors import UnsupportedObjectError, message
from zerocopy.exchange import cai, checks, pointers, streams
from zerocopy.exchange.edges import CAI, SAME, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "numba"
IMPORT_NAME = "numba_cuda"  # numba-cuda provides numba.cuda; a top-level find_spec imports nothing
PIP = "numba-cuda"
PROTOCOLS = {"exports": ("CUDA Array Interface v3 (stream)",),
             "imports": ("CUDA Array Interface v3",)}


def _cuda() -> Any:
    return require("numba.cuda", PIP)


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES) - {"bfloat16"}


def version() -> str:
    module = require("numba_cuda", PIP)
    return str(getattr(module, "__version__", "?"))


def devices() -> list[str]:
    try:
        return [f"cuda:{g.id}" for g in _cuda().gpus]
    except Exception:  # no driver
        return []


def inspect(x: Any) -> Info:
    if not hasattr(x, "__cuda_array_interface__"):
        raise UnsupportedObjectError(message(
            "Only Numba CUDA device arrays hold shareable memory",
            got=f"{type(x).__module__}.{type(x).__qualname__}", hint="numba.cuda.to_device(...) makes one"))
    view = cai.read(x)
    return Info(NAME, x, kind=ARRAY, dtype=view.dtype, shape=view.shape, strides=view.strides,
                itemsize=view.itemsize, pointer=lambda: view.ptr, device=view.device,
                readonly=view.readonly)


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a C-ordered device array on a one-GPU machine, read from
    the array's attributes (its CUDA Array Interface dict is slow to build)."""
    if not cuda_layer.single_gpu() or not x.is_c_contiguous():
        return None
    return (x.dtype, size_class(x.shape))


def fast_pointer(x: Any) -> int:
    """Where the data of an array with a fast key starts (Info.ptr), for plans kept per
    alignment (into JAX)."""
    return int(x.device_ctypes_pointer.value or 0)


def make(values: np.ndarray, device: int = 0) -> Any:
    cuda = _cuda()
    with cuda.gpus[device]:
        return cuda.to_device(np.ascontiguousarray(values))


def to_host(x: Any) -> np.ndarray:
    return x.copy_to_host()


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (Numba or NumPy) on ``device`` (a NumPy array for the host)."""
    cuda = _cuda()
    if device[0] == "cpu":
        return x.copy_to_host()
    with cuda.gpus[device[1]]:
        if isinstance(x, np.ndarray):
            return cuda.to_device(x)
        out = cuda.device_array(x.shape, x.dtype)
        out.copy_to_device(x)
        return out


def current_stream(device: int) -> int:
    # Numba launches on the legacy default stream unless given one.
    return streams.LEGACY


# --------------------------------------------------------------- between workers (zerocopy.dask)
# No contiguous(): zerocopy.dask leaves a strided Numba array to Dask's own serializer.

def tensor_classes() -> tuple[type, ...]:
    """The classes zerocopy.dask registers its serializers for (imports numba.cuda)."""
    return (require("numba.cuda.cudadrv.devicearray", PIP).DeviceNDArray,)


def wait_ready(x: Any, device: int) -> None:
    """Host wait until the work queued on ``x``'s own stream, or else on the default
    stream, is done."""
    stream: Any = getattr(x, "stream", None)
    if stream:
        stream.synchronize()
    else:
        _cuda().default_stream().synchronize()


# --------------------------------------------------------------- handing pointers over (pointers.py)

def ready_buffer(x: Any) -> tuple[int, tuple[int, ...], bool] | None:
    """(data pointer, shape, read-only) of a C-ordered device array bound to no stream
    (its work goes to the legacy default stream)."""
    if x.stream != 0:  # numba's own spelling of "no stream"
        return None
    return x.device_ctypes_pointer.value or 0, x.shape, False


def adopter(dtype: str, device: int) -> Callable[..., Any] | None:
    """A device array over a pointer handed over, bound to no stream (Numba's kernels then
    run on the legacy default stream, behind the producer's work). Never declines.

    Built from Numba's own parts (context, device pointer, DeviceNDArray) as its interface
    import builds it, without that import's per-call context manager and type-string
    parsing (9 us of the 10 that numba.cuda.as_cuda_array took on the H200); where those
    parts are not where numba-cuda 0.30 keeps them, through the interface import itself."""
    kind = numpy_dtype(dtype)
    try:
        from numba.cuda.cudadrv import devicearray, devices, driver

        parts = (devices.get_context, driver.binding.CUdeviceptr, driver.MemoryPointer,
                 devicearray.DeviceNDArray)
    except (ImportError, AttributeError):
        return _interface_adopter(dtype)
    context, pointer, memory, array = parts
    itemsize = kind.itemsize

    def adopt(owner: Any, ptr: int, shape: tuple[int, ...], readonly: bool) -> Any:
        strides, step = [], itemsize
        for extent in reversed(shape):  # C order
            strides.append(step)
            step *= extent
        data = memory(context(), pointer(ptr), step, owner=owner)
        return array(shape, tuple(reversed(strides)), kind, stream=0, gpu_data=data)

    return adopt


def _interface_adopter(dtype: str) -> Callable[..., Any]:
    from_interface = _cuda().from_cuda_array_interface
    typestr = cai.typestr_of(dtype)

    def adopt(owner: Any, ptr: int, shape: tuple[int, ...], readonly: bool) -> Any:
        interface = {"version": 3, "shape": shape, "strides": None, "typestr": typestr,
                     "data": (ptr, readonly), "stream": None}
        return from_interface(interface, owner=owner, sync=False)

    return adopt


# --------------------------------------------------------------- edges

def _from_cai(x: Any, options: Options) -> Any:
    cuda = _cuda()
    exporter = cai.import_view(x, options, current_stream)
    if cuda_layer.single_gpu():  # one context: no push/pop (it costs more than the import itself)
        return cuda.as_cuda_array(exporter, sync=False)
    device = cuda_layer.pointer_device(exporter.__cuda_array_interface__["data"][0])[1]
    with cuda.gpus[device]:  # Numba binds the array to the current context
        return cuda.as_cuda_array(exporter, sync=False)


def _on_gpu(info: Info, options: Options) -> Refusal | None:
    if info.device[0] == "cuda":
        return None
    return Refusal(f"Numba CUDA arrays hold device memory and the data is on {info.device[0]}",
                   "pass device='cuda:0' to copy it to the GPU on purpose", fixable=False, quiet=True)


EDGES = (
    Edge(NAME, CAI, "CUDA Array Interface v3", "x  (DeviceNDArray.__cuda_array_interface__, with its stream)",
         lambda x, o: x, cost=0.3, check=cai.refuse_dtype, fast=lambda info, source: SAME),
    Edge(CAI, NAME, "CUDA Array Interface v3", "numba.cuda.as_cuda_array(x, sync=False)", _from_cai,
         cost=1.5, fast=pointers.specialiser(NAME),
         check=checks.all_of(_on_gpu, cai.refuse_dtype, checks.dtype_in("Numba", dtypes))),
)
