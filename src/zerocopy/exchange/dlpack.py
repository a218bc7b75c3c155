"""Our own DLPack producer: a capsule for any strided buffer we can describe.

Why produce capsules ourselves instead of calling ``x.__dlpack__()``: the frameworks'
exporters refuse things that are perfectly shareable. NumPy refuses bfloat16 (ml_dtypes)
and read-only arrays (so pandas 3 and Polars views cannot reach JAX or TensorFlow), and
JAX/TensorFlow import only legacy capsules. Building the ``DLManagedTensor`` here lets us
hand any dtype and any read-only view over, and keeps the owner alive until the consumer
calls the deleter.

The structures follow dlpack.h (v1.1): ``DLManagedTensor`` for legacy "dltensor"
capsules, ``DLManagedTensorVersioned`` for "dltensor_versioned" ones.

Two implementations of the same three calls (``capsule``, ``capsule_info``, ``consume``):
the C extension ``zerocopy._speedups`` (a capsule in well under a microsecond) and the
ctypes one below, the reference, used where the extension was not built (no C compiler at
install) or when ``ZEROCOPY_PURE_PYTHON=1``. :func:`backend` says which one runs.
:func:`via_exchange_api` (a framework's DLPack C exchange API) exists on the C path only.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from zerocopy import _native
from zerocopy._dtypes import DLPACK_CODES, from_dlpack_code, name_of_numpy, numpy_dtype

__all__ = ["CPU", "CUDA", "CUDA_HOST", "CUDA_MANAGED", "DLPackExporter", "backend", "capsule_info",
           "capsule_maker", "device_importer", "host_importer", "via_exchange_api"]

# DLDeviceType values used here.
CPU, CUDA, CUDA_HOST, CUDA_MANAGED = 1, 2, 3, 13
READ_ONLY_FLAG = 1  # DLPACK_FLAG_BITMASK_READ_ONLY
DLPACK_VERSION = (1, 1)


class _Device(ctypes.Structure):
    _fields_ = (("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32))


class _DataType(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16))


class _Tensor(ctypes.Structure):
    _fields_ = (
        ("data", ctypes.c_void_p),
        ("device", _Device),
        ("ndim", ctypes.c_int32),
        ("dtype", _DataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    )


_Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _Managed(ctypes.Structure):
    _fields_ = (("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter))


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint32), ("minor", ctypes.c_uint32))


class _ManagedVersioned(ctypes.Structure):
    _fields_ = (
        ("version", _Version),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", _Deleter),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", _Tensor),
    )


# Everything a live capsule points at (the struct, shape/stride arrays, the owner of the
# memory) stays here until the consumer, or the capsule's destructor, calls the deleter.
_LIVE: dict[int, tuple[Any, ...]] = {}
_LIVE_LOCK = threading.Lock()


@_Deleter
def _delete(address: int | None) -> None:
    with _LIVE_LOCK:
        entry = _LIVE.pop(address or 0, None)
    # Dropped outside the lock: freeing the owner can run another capsule's deleter (a
    # chain of zerocopy views), which takes the lock again.
    del entry


_CapsuleDestructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _capi(name: str, restype: Any, *argtypes: Any) -> Any:
    # Private prototypes: setting argtypes on ctypes.pythonapi's shared function objects
    # would change them for every other library in the process (MXNet uses them too).
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


class _API:
    PyCapsule_New = _capi("PyCapsule_New", ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p,
                          _CapsuleDestructor)
    PyCapsule_IsValid = _capi("PyCapsule_IsValid", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
    PyCapsule_GetPointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_char_p)
    PyCapsule_GetName = _capi("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)
    PyCapsule_SetName = _capi("PyCapsule_SetName", ctypes.c_int, ctypes.py_object, ctypes.c_char_p)


_api = _API

# Names must outlive every capsule: module constants.
_LEGACY_NAME = b"dltensor"
_VERSIONED_NAME = b"dltensor_versioned"


def _destructor_for(name: bytes) -> Any:
    @_CapsuleDestructor
    def destroy(capsule: int | None) -> None:
        # A consumer renames the capsule ("used_...") and owns the deleter from then on;
        # a capsule still carrying its first name was never consumed: free it here.
        if capsule and _api.PyCapsule_IsValid(capsule, name):
            _delete(_api.PyCapsule_GetPointer(capsule, name))

    return destroy


_DESTROY_LEGACY = _destructor_for(_LEGACY_NAME)
_DESTROY_VERSIONED = _destructor_for(_VERSIONED_NAME)


class DLPackExporter:
    """A strided buffer that speaks ``__dlpack__``; ``owner`` keeps the memory alive.

    ``strides`` are in elements (DLPack's unit; None: C order), ``data`` is the address of
    element 0.
    A plain slotted class: it is built on the hot path of every conversion that needs it.
    """

    __slots__ = ("data", "device", "dtype", "owner", "readonly", "shape", "strides")

    def __init__(self, owner: Any, data: int, shape: tuple[int, ...], strides: tuple[int, ...] | None,
                 dtype: str, device: tuple[int, int] = (CPU, 0), readonly: bool = False) -> None:
        self.owner, self.data, self.shape, self.strides = owner, data, shape, strides
        self.dtype, self.device, self.readonly = dtype, device, readonly

    def __repr__(self) -> str:
        return (f"DLPackExporter(dtype={self.dtype}, shape={self.shape}, device={self.device}, "
                f"readonly={self.readonly})")

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: Any = None, copy: bool | None = None) -> Any:
        if copy:
            raise BufferError("this exporter never copies; copy=True is handled by zerocopy")
        if dl_device is not None and tuple(dl_device) != self.device:
            raise BufferError(f"data lives on {self.device}, not on {tuple(dl_device)}")
        if max_version is not None and max_version[0] >= 1:
            return self.capsule(versioned=True)
        return self.capsule(versioned=False)

    def capsule(self, *, versioned: bool) -> Any:
        code, bits = DLPACK_CODES[self.dtype]
        kind, index = self.device
        return _impl.capsule(self.owner, self.data, self.shape, self.strides, code, bits, kind, index,
                             self.readonly, versioned)


def _py_capsule(owner: Any, data: int, shape: tuple[int, ...], strides: tuple[int, ...] | None, code: int,
                bits: int, device_type: int, device_id: int, readonly: bool, versioned: bool) -> Any:
    ndim = len(shape)
    negative = [d for d in shape if d < 0]
    if negative:
        raise ValueError(f"shape has a negative extent ({negative[0]})")
    if strides is None:  # C order: the strides follow from the shape, as in the C extension
        strides = tuple(int(np.prod([max(d, 1) for d in shape[i + 1:]], dtype=np.int64))
                        for i in range(ndim))
    if len(strides) != ndim:
        raise ValueError(f"strides has {len(strides)} entries, the shape {ndim}")
    shape_array = (ctypes.c_int64 * max(ndim, 1))(*shape)
    strides_array = (ctypes.c_int64 * max(ndim, 1))(*strides)
    tensor = _Tensor(data or None, _Device(device_type, device_id), ndim, _DataType(code, bits, 1),
                     shape_array, strides_array, 0)
    if versioned:
        flags = READ_ONLY_FLAG if readonly else 0
        managed: Any = _ManagedVersioned(_Version(*DLPACK_VERSION), None, _delete, flags, tensor)
        name, destroy = _VERSIONED_NAME, _DESTROY_VERSIONED
    else:
        managed = _Managed(tensor, None, _delete)
        name, destroy = _LEGACY_NAME, _DESTROY_LEGACY
    address = ctypes.addressof(managed)
    with _LIVE_LOCK:
        _LIVE[address] = (managed, shape_array, strides_array, owner)
    return _api.PyCapsule_New(address, name, destroy)


def capsule_info(capsule: Any) -> dict[str, Any]:
    """Read a DLPack capsule without consuming it (for plans, tests and `doctor`): name,
    version, readonly, data, device, shape, strides (elements, or None), dtype (code, bits,
    lanes). A capsule already consumed ("used_...") raises BufferError: its memory may be gone."""
    return _impl.capsule_info(capsule)


def _unconsumed(capsule: Any) -> tuple[bytes, int]:
    """(name, address of the managed struct) of a capsule nobody consumed yet."""
    if type(capsule).__name__ != "PyCapsule":
        raise TypeError(f"expected a DLPack capsule, got {type(capsule).__name__}")
    name = _api.PyCapsule_GetName(capsule)
    if name not in (_VERSIONED_NAME, _LEGACY_NAME):
        raise BufferError(f"not an unconsumed DLPack capsule (its name is {name.decode()})")
    address = _api.PyCapsule_GetPointer(id(capsule), name)
    if name == _VERSIONED_NAME:
        version = _Version.from_address(address)  # the first field of every major version
        if version.major != DLPACK_VERSION[0]:
            raise BufferError(f"DLPack {version.major}.{version.minor} capsule: only major version "
                              f"{DLPACK_VERSION[0]} is understood")
    return name, address


def _py_capsule_info(capsule: Any) -> dict[str, Any]:
    name, address = _unconsumed(capsule)
    return _info_at(name, address)


def _info_at(name: bytes, address: int) -> dict[str, Any]:
    if name == _VERSIONED_NAME:
        managed: Any = _ManagedVersioned.from_address(address)
        flags, version = int(managed.flags), (managed.version.major, managed.version.minor)
    else:
        managed, flags, version = _Managed.from_address(address), 0, None
    tensor = managed.dl_tensor
    ndim = tensor.ndim
    return {
        "name": name.decode(),
        "version": version,
        "readonly": bool(flags & READ_ONLY_FLAG),
        "data": (tensor.data or 0) + tensor.byte_offset,
        "device": (tensor.device.device_type, tensor.device.device_id),
        "shape": tuple(tensor.shape[i] for i in range(ndim)),
        "strides": tuple(tensor.strides[i] for i in range(ndim)) if tensor.strides else None,
        "dtype": (tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes),
    }


# --------------------------------------------------------------- importing into NumPy

_USED_LEGACY = b"used_dltensor"
_USED_VERSIONED = b"used_dltensor_versioned"


class _Keeper:
    """The consumer's side of a capsule taken over in Python: calls the producer's deleter
    when it dies (the C extension's keeper is a capsule doing the same)."""

    __slots__ = ("_address", "_versioned")

    def __init__(self, address: int, versioned: bool) -> None:
        self._address, self._versioned = address, versioned

    def __del__(self) -> None:
        struct = _ManagedVersioned if self._versioned else _Managed
        managed = struct.from_address(self._address)
        if managed.deleter:
            managed.deleter(self._address)


def _py_consume(capsule: Any) -> tuple[Any, dict[str, Any]]:
    name, address = _unconsumed(capsule)
    info = _info_at(name, address)
    versioned = name == _VERSIONED_NAME
    _api.PyCapsule_SetName(capsule, _USED_VERSIONED if versioned else _USED_LEGACY)
    return _Keeper(address, versioned), info


class _ImportedTensor:
    """Owns a consumed capsule's tensor and exposes it through the array interface, so a
    NumPy array can sit on it; the producer's deleter runs when the last view goes."""

    def __init__(self, capsule: Any) -> None:
        self._keeper, info = _impl.consume(capsule)
        self.info = info
        itemsize = info["dtype"][1] // 8
        strides = info["strides"]
        self.__array_interface__ = {
            "version": 3,
            "shape": info["shape"],
            "typestr": f"|V{itemsize}",
            "data": (info["data"], info["readonly"]),
            "strides": None if strides is None else tuple(s * itemsize for s in strides),
        }


def to_numpy(producer: Any) -> Any:
    """NumPy view over any CPU DLPack producer, for every shared dtype (bfloat16 included)
    and on NumPy versions whose own importer lacks them."""
    capsule = producer.__dlpack__() if hasattr(producer, "__dlpack__") else producer
    tensor = _ImportedTensor(capsule)
    if tensor.info["device"][0] not in (CPU, CUDA_HOST, CUDA_MANAGED):
        raise BufferError(f"DLPack device {tensor.info['device']} is not host memory")
    code, bits, lanes = tensor.info["dtype"]
    name = from_dlpack_code(code, bits)
    if name is None or lanes != 1:
        raise BufferError(f"DLPack dtype {tensor.info['dtype']} is not a shared dtype")
    return np.asarray(tensor).view(numpy_dtype(name))


def data_pointer(x: Any) -> int:
    """Where a NumPy array's data starts: through the buffer protocol in C where the
    extension runs (the fast lane asks this on every call into JAX or TensorFlow), else
    ``__array_interface__``; an array without a buffer export (object dtype) the same way."""
    read = _impl.data_pointer if _impl is not _PYTHON else None
    if read is not None:
        try:
            return int(read(x))
        except (BufferError, TypeError, ValueError):
            pass
    return int(x.__array_interface__["data"][0])


# --------------------------------------------------------------- DLPack C exchange API

# type -> its framework's exchange API capsule (None: it publishes none). PyTorch >= 2.10
# publishes one on torch.Tensor; importing through it skips the capsule, the framework's
# Python-level from_dlpack and its read-only warning (torch.from_numpy warns on every
# read-only array, and silencing that costs a catch_warnings block per call).
_EXCHANGE_APIS: dict[type, Any] = {}


def _exchange_api(kind: type) -> Any | None:
    """``kind``'s exchange API capsule where the C path runs and the framework has one."""
    api = _EXCHANGE_APIS.get(kind, False)
    if api is False:
        api = _EXCHANGE_APIS[kind] = getattr(kind, "__dlpack_c_exchange_api__", None)
    return None if _impl is _PYTHON else api


def via_exchange_api(kind: type, x: Any, dtype: Any) -> Any | None:
    """``x`` (a host buffer exporter, e.g. a NumPy array) as a ``kind`` object made by its
    framework's DLPack C exchange API (``kind.__dlpack_c_exchange_api__``), sharing memory
    and keeping ``x`` alive; None where that path does not exist here (no C extension, a
    framework without the API, a dtype without a DLPack code), so the caller takes its
    usual one. ``dtype``: a canonical name or a NumPy dtype."""
    api = _exchange_api(kind)
    if api is None:
        return None
    code = _CODES.get(dtype) or _code_of(dtype)
    return None if code is None else _impl.buffer_to_object(api, x, *code)


def host_importer(kind: type, dtype: str) -> Callable[[Any], Any] | None:
    """``via_exchange_api`` bound to ``kind`` and ``dtype`` (a canonical name): a call taking
    only the host buffer exporter, or None where that path does not exist here."""
    api, code = _exchange_api(kind), DLPACK_CODES.get(dtype)
    if api is None or code is None:
        return None
    buffer_to_object, (number, bits) = _impl.buffer_to_object, code
    return lambda x: buffer_to_object(api, x, number, bits)


def device_importer(kind: type, dtype: str, device_id: int) -> Callable[..., Any] | None:
    """``make(owner, data, shape, readonly)``: a C-ordered ``kind`` object over device memory
    at ``data`` on CUDA device ``device_id``, made by the framework's DLPack C exchange API
    with no stream handshake (the caller ordered the work); None where that path does not
    exist here (no C extension, no API, no DLPack code for ``dtype``)."""
    api, code = _exchange_api(kind), DLPACK_CODES.get(dtype)
    if api is None or code is None:
        return None
    to_object, (number, bits) = _impl.to_object, code

    def make(owner: Any, data: int, shape: tuple[int, ...], readonly: bool) -> Any:
        return to_object(api, owner, data, shape, None, number, bits, CUDA, device_id, readonly)

    return make


def capsule_maker(dtype: str, device_type: int, device_id: int) -> Callable[..., Any] | None:
    """``make(owner, data, shape)``: a legacy capsule over C-ordered memory at ``data``
    keeping ``owner`` alive, for importers that take nothing else (JAX's); None on the
    pure-Python path (a ctypes capsule costs more than the importer call it would save) or
    for a dtype without a DLPack code."""
    code = DLPACK_CODES.get(dtype)
    if _impl is _PYTHON or code is None:
        return None
    capsule, (number, bits) = _impl.capsule, code

    def make(owner: Any, data: int, shape: tuple[int, ...]) -> Any:
        return capsule(owner, data, shape, None, number, bits, device_type, device_id, False, False)

    return make


# dtype (name or NumPy dtype) -> (DLPack code, bits): NumPy's dtype.name alone costs
# microseconds (it is computed in Python), so each dtype is looked up once.
_CODES: dict[Any, tuple[int, int] | None] = {}


def _code_of(dtype: Any) -> tuple[int, int] | None:
    name = dtype if isinstance(dtype, str) else name_of_numpy(dtype)
    code = _CODES[dtype] = DLPACK_CODES.get(name) if name is not None else None
    return code


# --------------------------------------------------------------- which implementation runs

_PYTHON = SimpleNamespace(capsule=_py_capsule, capsule_info=_py_capsule_info, consume=_py_consume)


def _load() -> tuple[ModuleType | SimpleNamespace, str]:
    module, why = _native.load()
    return (module if module is not None else _PYTHON), why


_impl, _backend = _load()


def backend() -> str:
    """Which implementation builds and reads capsules: "C extension" or "pure-Python path
    (why)"."""
    return _backend


@contextmanager
def pure_python() -> Iterator[None]:
    """Build and read capsules with the ctypes path inside the block (benchmarks compare the
    two paths in one process; ZEROCOPY_PURE_PYTHON=1 chooses it for the whole process)."""
    global _impl  # noqa: PLW0603 - the one switch every capsule call reads
    saved, _impl = _impl, _PYTHON
    try:
        yield
    finally:
        _impl = saved
