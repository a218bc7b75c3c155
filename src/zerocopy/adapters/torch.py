"""PyTorch tensors. CPU and CUDA tensors share the DLPack edges; CUDA tensors also leave by
the CUDA Array Interface, upgraded here from torch's v2 (no stream) to v3 with the
tensor's current stream, which is cheaper than DLPack towards CuPy and Numba."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from zerocopy import _cuda
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.adapters._common import require
from zerocopy.adapters.numpy import aligned_copy
from zerocopy.errors import (
    DeviceError,
    InvalidArgumentError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    message,
)
from zerocopy.exchange import cai, checks, dlpack, pointers, streams
from zerocopy.exchange.edges import CAI, DECLINED, DLPACK, PASS, SAME, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "torch"
IMPORT_NAME = "torch"
PIP = "torch"
PROTOCOLS = {"exports": ("DLPack v1", "CUDA Array Interface v2 (GPU)"),
             "imports": ("DLPack v1 + legacy capsules", "array interface (from_numpy)",
                         "CUDA Array Interface (GPU)")}


def _torch() -> Any:
    return require("torch")


@cache
def _names() -> dict[Any, str]:
    torch = _torch()
    return {getattr(torch, n): n for n in SHARED_DTYPES}


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES)


def version() -> str:
    return str(_torch().__version__)


def devices() -> list[str]:
    torch = _torch()
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return found


@cache
def _dtype_info(dtype: Any) -> tuple[str, int]:
    name = _names().get(dtype)
    if name is None:
        raise UnsupportedDtypeError(message(
            f"torch dtype {dtype} has no counterpart in the other frameworks",
            hint="cast explicitly first"))
    return name, dtype.itemsize


def inspect(x: Any) -> Info:
    if x.is_meta:
        raise UnsupportedObjectError(message(
            "A torch meta tensor has a shape and a dtype but no data to share or copy",
            got=f"torch.Tensor {str(x.dtype).removeprefix('torch.')} {list(x.shape)} on device 'meta'",
            hint="materialise it first: torch.empty_like(x, device='cpu') (a model: "
                 "model.to_empty(device='cpu')), then fill it"))
    if not x.is_cpu and not x.is_cuda:  # ROCm builds say is_cuda too
        # An MPS or XPU tensor was read as a CUDA one (its device index taken for a GPU's),
        # and the planner then moved or shared it as CUDA memory.
        raise DeviceError(message(
            f"zerocopy exchanges torch tensors in CPU and CUDA memory; this one is on "
            f"'{x.device}'", got=f"torch.Tensor {str(x.dtype).removeprefix('torch.')} "
                                 f"{list(x.shape)} on '{x.device}'",
            hint="x.cpu() first (a copy), then zerocopy.to(x, ...)"))
    if x.layout is not _torch().strided:
        raise UnsupportedObjectError(message(
            "Only dense (strided) torch tensors can share memory", got=str(x.layout),
            hint="call x.to_dense() first"))
    name, itemsize = _dtype_info(x.dtype)
    # Contiguous (the common case): no stride walk, no lazy conjugate/negative bits to read.
    contiguous = x.is_contiguous()
    strides = None if contiguous else tuple(s * itemsize for s in x.stride())
    # The negative bit is not complex-only: x.conj().imag and torch._neg_view(x) are real
    # tensors whose memory holds the negated values.
    lazy = (name.startswith("complex") and x.is_conj(), x.is_neg())
    device = ("cpu", 0) if x.is_cpu else ("cuda", x.device.index or 0)
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=tuple(x.shape), strides=strides,
                itemsize=itemsize, pointer=x.data_ptr, device=device,
                requires_grad=x.requires_grad, layout="C" if contiguous else None,
                extra={"signature": lazy, "lazy_bits": lazy} if lazy != (False, False) else None)


# torch.strided, read once (the first fast key): every key compares a layout with it.
_STRIDED: list[Any] = [None]


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a contiguous dense tensor, read cheaply."""
    strided = _STRIDED[0]
    if strided is None:
        strided = _STRIDED[0] = _torch().strided
    if x.layout is not strided or not x.is_contiguous():
        return None
    dtype = x.dtype
    if x.is_neg() or x.is_conj():  # is_conj() is False for real dtypes: one call, no branch
        return None
    if x.is_cpu:
        device = -1
    elif x.is_cuda:
        device = x.get_device()
    else:  # a meta tensor (get_device() says -1, as for the CPU) or another device: no lane
        return None
    return (dtype, size_class(x.shape), x.requires_grad, device)


def fast_pointer(x: Any) -> int:
    """Where the data of a tensor with a fast key starts (Info.ptr: storage plus offset)."""
    return int(x.data_ptr())


def make(values: np.ndarray) -> Any:
    if values.dtype == numpy_dtype("bfloat16"):
        return _torch().from_numpy(values.view(np.int16).copy()).view(_torch().bfloat16)
    return _torch().from_numpy(values.copy())


def view_of(values: np.ndarray) -> Any:
    """A tensor over ``values``' own memory with its strides (``zerocopy explain``'s probe in
    the layout asked for: zero-copy, so the probe keeps its buffer's alignment). torch has
    no negative strides: a reversed view is no tensor (InvalidArgumentError)."""
    if any(stride < 0 for stride in values.strides):
        raise InvalidArgumentError(message(
            "torch tensors cannot have negative strides", got=f"strides {values.strides}",
            hint="torch.flip(x, dims) makes a reversed copy; take a numpy source to see how a "
                 "reversed view converts"))
    return _from_numpy(values, Options())


def to_host(x: Any) -> np.ndarray:
    x = x.detach().cpu().resolve_conj().resolve_neg()
    if x.dtype == _torch().bfloat16:
        return x.view(_torch().int16).numpy().view(numpy_dtype("bfloat16"))
    return x.numpy()


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (a tensor, or a NumPy array) on ``device``, as a torch tensor."""
    torch = _torch()
    if isinstance(x, np.ndarray):
        x = _from_numpy(x, Options())  # shares; the copy is the .to() below
    target = torch.device("cpu") if device[0] == "cpu" else torch.device("cuda", device[1])
    return x.detach().to(target, copy=True)


def current_stream(device: int) -> int:
    return int(_raw_stream()(device)) or streams.LEGACY


@cache
def _raw_stream() -> Callable[[int], int]:
    """torch's current stream of a device as a raw handle (0: the legacy default stream)."""
    torch = _torch()
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw if raw is not None else lambda device: int(torch.cuda.current_stream(device).cuda_stream)


# --------------------------------------------------------------- handing pointers over (pointers.py)

def ready_buffer(x: Any) -> tuple[int, Any, bool] | None:
    """(data pointer, shape, read-only) of a contiguous CUDA tensor whose work is ordered
    on the legacy default stream (torch's current stream of its device is that one)."""
    if _raw_stream()(x.get_device()):
        return None
    return x.data_ptr(), x.shape, False


def adopter(dtype: str, device: int) -> Callable[..., Any] | None:
    """A tensor over a pointer handed over, made by torch's DLPack C exchange API (no
    capsule, no torch.from_dlpack in Python), while torch's current stream is the legacy
    default one (else DECLINED); None where that API is not here."""
    make = dlpack.device_importer(_torch().Tensor, dtype, device)
    if make is None:
        return None
    raw = _raw_stream()

    def adopt(owner: Any, ptr: int, shape: tuple[int, ...], readonly: bool) -> Any:
        if raw(device):
            return DECLINED
        return make(owner, ptr, shape, readonly)

    return adopt


def _detach_fast(info: Info, source: str) -> Any:
    return _tensor_detached if info.requires_grad else SAME


def _tensor_detached(x: Any) -> Any:
    return x.detach()


_tensor_detached.keeps_type = True  # type: ignore[attr-defined]  # a tensor still: pointers.py reads it


@cache
def _several_gpus() -> bool:
    return _torch().cuda.device_count() > 1


# --------------------------------------------------------------- between workers (zerocopy.dask)

def tensor_classes() -> tuple[type, ...]:
    """The classes zerocopy.dask registers its serializers for (imports torch)."""
    return (_torch().Tensor,)


def transport_state(x: Any) -> tuple[Any, dict[str, Any]]:
    """``x`` as plain data, and what travels beside it: the autograd flag. A frame carries
    values, so a lazy conjugate or negative view is resolved into memory first."""
    state = {"requires_grad": bool(x.requires_grad)}
    x = x.detach()
    if x.is_conj():
        x = x.resolve_conj()
    if x.is_neg():
        x = x.resolve_neg()
    return x, state


def restore_state(x: Any, state: dict[str, Any]) -> Any:
    """The received tensor with what ``transport_state`` sent beside it."""
    if state.get("requires_grad"):
        x.requires_grad_(True)
    return x


def wait_ready(x: Any, device: int) -> None:
    """Host wait until the work queued on torch's current stream of ``device`` is done."""
    _torch().cuda.current_stream(device).synchronize()


def contiguous(x: Any) -> Any:
    """``x``'s values in C order on its own device (``x`` itself if it already is)."""
    return x.contiguous()


def device_view(frame: Any, dtype: str, shape: Sequence[int], device: int) -> Any:
    """A tensor over ``frame`` (1-D uint8 device memory with the CUDA Array Interface) on
    cuda:``device``, viewed as ``dtype`` and ``shape``: no copy. Every shared dtype."""
    torch = _torch()
    as_dtype = {"bool": torch.bool, "bfloat16": torch.bfloat16}.get(dtype) or getattr(torch, dtype)
    return torch.as_tensor(frame, device=f"cuda:{device}").view(as_dtype).reshape(shape)


# --------------------------------------------------------------- edges

def _to_numpy(x: Any, options: Options) -> np.ndarray:
    if x.requires_grad:
        x = x.detach()
    if x.dtype is _torch().bfloat16:  # NumPy has no bfloat16: view the bits, relabel them.
        return x.view(_torch().int16).numpy().view(numpy_dtype("bfloat16"))
    return x.numpy()


def _tensor_numpy(x: Any) -> np.ndarray:
    return (x.detach() if x.requires_grad else x).numpy()


def _to_numpy_fast(info: Info, source: str) -> Callable[[Any], Any] | None:
    return _tensor_numpy if info.dtype != "bfloat16" else None


def _from_numpy_fast(info: Info, source: str) -> Callable[[Any], Any] | None:
    # A writable array of a dtype torch has: torch.from_numpy itself (no warning to hide).
    if not info.readonly and info.dtype != "bfloat16":
        return _torch().from_numpy
    # A read-only one (TensorFlow's, JAX's, pandas' views): torch's DLPack C exchange API
    # bound to the dtype, as _from_numpy takes it.
    if info.readonly and info.dtype is not None and info.dtype != "bfloat16":
        return dlpack.host_importer(_torch().Tensor, info.dtype)
    return None


def _from_numpy(x: np.ndarray, options: Options) -> Any:
    torch = _torch()
    if not x.flags.writeable:  # through torch's DLPack C exchange API: no warning to silence
        out = dlpack.via_exchange_api(torch.Tensor, x, x.dtype)
        if out is not None:
            return out
    bf16 = x.dtype.kind == "V"  # the planner let only bfloat16 through among void dtypes
    source = x.view(np.int16) if bf16 else x
    if not x.flags.writeable:
        # torch warns and shares anyway; the plan states the caveat instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = torch.from_numpy(source)
    else:
        out = torch.from_numpy(source)
    return out.view(torch.bfloat16) if bf16 else out


def _detach(x: Any, options: Options) -> Any:
    return x.detach() if x.requires_grad else x


def _from_dlpack(x: Any, options: Options) -> Any:
    return _torch().from_dlpack(streams.dlpack_source(x, options.stream))


def _to_cai(x: Any, options: Options) -> cai.CAIExporter:
    x = x.detach()
    name, itemsize = _dtype_info(x.dtype)
    strides = None if x.is_contiguous() else tuple(s * itemsize for s in x.stride())
    stream = current_stream(x.device.index or 0) if options.stream is not streams.NO_SYNC else None
    return cai.CAIExporter(x, x.data_ptr(), tuple(x.shape), strides, name, stream=stream)


def _from_cai(x: Any, options: Options) -> Any:
    torch = _torch()
    exporter = cai.import_view(x, options, current_stream)
    if _several_gpus():  # place by the pointer, whatever the current device is
        device = _cuda.pointer_device(exporter.__cuda_array_interface__["data"][0])[1]
        with torch.cuda.device(device):
            return torch.as_tensor(exporter, device=torch.device("cuda", device))
    return torch.as_tensor(exporter, device="cuda")


def _plain_bits(info: Info, options: Options) -> Refusal | None:
    conj, neg = info.extra.get("lazy_bits", (False, False))
    if conj or neg:
        bits = " and ".join(b for b, on in (("conjugate", conj), ("negative", neg)) if on)
        calls = ".".join(c for c, on in (("resolve_conj()", conj), ("resolve_neg()", neg)) if on)
        return Refusal(f"the tensor carries a lazy {bits} bit, so its memory does not hold the "
                       "values it shows",
                       f"x.{calls} makes a tensor whose memory holds them (a copy; "
                       "copy=None lets zerocopy make it)")
    return None


def _grad_caveat(info: Info) -> str | None:
    if info.requires_grad:
        return "gradient tracking is not carried: the result shares the detached data"
    return None


def _writable_caveat(info: Info) -> str | None:
    if info.readonly:
        return ("the source is read-only but the torch tensor is writable: writing to it "
                "modifies memory its owner considers immutable")
    return None


_SHARED_CHECK = checks.all_of(checks.on_cpu("NumPy"), _plain_bits)

EDGES = (
    Edge(NAME, "numpy", "array interface", "x.detach().numpy()", _to_numpy, cost=0.6,
         check=_SHARED_CHECK, caveat=_grad_caveat, fast=_to_numpy_fast),
    Edge("numpy", NAME, "array interface", "torch.from_numpy(x)", _from_numpy, cost=0.5,
         fast=_from_numpy_fast,
         check=checks.all_of(
             checks.layouts("torch.from_numpy", frozenset({"C", "F", "compact", "strided"}),
                            "refuses negative strides"),
             lambda info, o: Refusal("the strides are not whole elements")
             if any(s % info.itemsize for s in info.strides or ()) else None,
             checks.write_guard("torch")),
         caveat=_writable_caveat),
    Edge(NAME, "numpy", "copy", "x.detach().resolve_conj().resolve_neg().numpy() (copy)",
         lambda x, o: aligned_copy(to_host(x)), copies=True, cost=3.0, check=checks.on_cpu("NumPy")),
    Edge(NAME, DLPACK, "DLPack v1", "x.detach()  (Tensor.__dlpack__)", _detach, cost=1.0,
         check=_plain_bits, caveat=_grad_caveat, fast=_detach_fast),
    # CUDA: the CUDA Array Interface is the cheaper door (anchors: torch->cupy 7 us against
    # 18 by DLPack); never for bfloat16/float8, which it cannot name.
    Edge(NAME, CAI, "CUDA Array Interface v3", "x.detach().__cuda_array_interface__ + current stream",
         _to_cai, cost=1.5, check=checks.all_of(cai.refuse_dtype, _plain_bits), caveat=_grad_caveat,
         # The hand-over reads the source tensor itself: a tensor that tracks gradients keeps
         # run(), whose exporter holds the detached tensor, not the autograd graph.
         fast=lambda info, source: None if info.requires_grad else PASS),
    Edge(CAI, NAME, "CUDA Array Interface", "torch.as_tensor(x, device='cuda')", _from_cai, cost=3.0,
         fast=pointers.specialiser(NAME),
         check=checks.all_of(cai.refuse_dtype,
                             checks.layouts("torch.as_tensor", frozenset({"C", "F", "compact", "strided"}),
                                            "refuses negative strides"))),
    # copy=True within torch: an independent, contiguous tensor on the same device.
    Edge(NAME, NAME, "copy", "x.detach().resolve_conj().resolve_neg().clone()",
         lambda x, o: x.detach().resolve_conj().resolve_neg().clone(memory_format=_torch().contiguous_format),
         copies=True, cost=4.0),
    Edge(DLPACK, NAME, "DLPack", "torch.from_dlpack(x)", _from_dlpack, cost=1.2,
         fast=pointers.specialiser(NAME, lambda: _torch().from_dlpack),
         check=checks.all_of(
             checks.layouts("torch.from_dlpack", frozenset({"C", "F", "compact", "strided"}),
                            "aborts the process on negative strides"),
             checks.write_guard("torch")),
         caveat=_writable_caveat),
)
