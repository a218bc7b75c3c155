"""JAX arrays. Immutable, C-ordered, on one device each; import through DLPack only."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from zerocopy import _cuda
from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import require
from zerocopy.errors import UnsupportedDtypeError, UnsupportedObjectError, message
from zerocopy.exchange import cai, checks, dlpack, pointers, streams
from zerocopy.exchange.edges import CAI, DLPACK, PASS, SAME, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "jax"
IMPORT_NAME = "jax"
PIP = "jax"
HOST_ALIGNMENT = 64  # JAX shares only host buffers aligned to this many bytes
DLPACK_NO_SYNC = None  # its __dlpack__ rejects stream=-1 ("do not synchronise"): no stream
PROTOCOLS = {"exports": ("DLPack legacy", "array interface (np.asarray)", "buffer protocol",
                         "CUDA Array Interface v2 (GPU)"),
             "imports": ("DLPack (objects with __dlpack__, legacy only)",
                         "CUDA Array Interface (GPU, C order, through jaxlib's importer)")}
_WIDE = frozenset({"int64", "uint64", "float64", "complex128"})


def _jax() -> Any:
    return require("jax")


def x64_enabled() -> bool:
    return bool(_jax().config.read("jax_enable_x64"))


def dtypes() -> frozenset[str]:
    shared = frozenset(SHARED_DTYPES)
    return shared if x64_enabled() else shared - _WIDE


def version() -> str:
    return str(_jax().__version__)


def devices() -> list[str]:
    return [f"{d.platform}:{d.id}" for d in _jax().devices()]


@cache
def _dtype_name(dtype: Any) -> str:
    name = str(dtype)
    if name not in SHARED_DTYPES:
        raise UnsupportedDtypeError(message(f"JAX dtype {name} is not shared by the other frameworks",
                                            hint="cast explicitly first"))
    return name


@cache
def _device_key(device: Any) -> tuple[str, int]:
    return ("cpu", 0) if device.platform == "cpu" else ("cuda", device.id)


def _device_of(x: Any) -> tuple[str, int]:
    sharding = x.sharding
    if sharding.is_fully_replicated and len(sharding.device_set) == 1:  # the common case
        return _device_key(next(iter(sharding.device_set)))
    devices = x.devices()
    if len(devices) != 1:
        raise UnsupportedObjectError(message(
            "A JAX array sharded over several devices has no single buffer to share",
            got=f"{len(devices)} devices", hint="gather it first (jax.device_get) or take one shard"))
    device = next(iter(devices))
    return ("cpu" if device.platform == "cpu" else "cuda", device.id if device.platform != "cpu" else 0)


@cache
def _tracer_type() -> type:
    return _jax().core.Tracer


def inspect(x: Any) -> Info:
    if isinstance(x, _tracer_type()):
        raise UnsupportedObjectError(message(
            "A JAX tracer (a value inside jax.jit, grad or vmap) has no buffer yet",
            got=type(x).__name__,
            hint="convert outside the transformation, or call out with jax.pure_callback"))
    if x.is_deleted():
        raise UnsupportedObjectError(message(
            "The JAX array was deleted: its buffer is gone",
            got=f"a deleted jax array {x.dtype}{list(x.shape)}",
            hint="convert it before x.delete(), or before a jit with donate_argnums takes it "
                 "(donating deletes it)"))
    dtype = x.dtype
    name = _dtype_name(dtype)
    itemsize = dtype.itemsize
    shape = tuple(x.shape)
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=shape, strides=_strides(x, shape, itemsize),
                itemsize=itemsize, pointer=lambda: _pointer(x), device=_device_of(x),
                readonly=True)


def _minor_order(x: Any) -> tuple[int, ...] | None:
    """The array's dimension order in memory when it is not row-major, else None. JAX
    arrays imported through DLPack from column-major or transposed buffers keep that
    layout, and importers such as TensorFlow's take only row-major data."""
    if x.ndim < 2:
        return None
    order = tuple(x.format.layout.major_to_minor)
    return None if order == tuple(range(x.ndim)) else order


def _strides(x: Any, shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    order = _minor_order(x)
    if order is None:
        return None
    strides, step = [0] * len(shape), itemsize
    for dim in reversed(order):  # the most minor dimension moves by one element
        strides[dim] = step
        step *= max(shape[dim], 1)
    return tuple(strides)


def _pointer(x: Any) -> int:
    # unsafe_buffer_pointer() waits for pending work *holding the GIL*; if that work must
    # run Python (a torch DLPack deleter), the process deadlocks. block_until_ready()
    # waits without the GIL first. (Found by `zerocopy bench exchange` at 256 MiB.)
    x.block_until_ready()
    return int(x.unsafe_buffer_pointer())


# Sharding -> the device key of a single-device sharding, or None: a sharding is immutable
# and hashable, and reading its devices costs 0.3 us a call (the dict lookup 0.1).
_SINGLE_DEVICE: dict[Any, tuple[str, int] | None] = {}


def _single_device(sharding: Any) -> tuple[str, int] | None:
    known = _SINGLE_DEVICE.get(sharding, False)
    if known is not False:
        return known  # type: ignore[return-value]
    device = None
    if sharding.is_fully_replicated and len(sharding.device_set) == 1:
        device = _device_key(next(iter(sharding.device_set)))
    if len(_SINGLE_DEVICE) >= 256:  # a program that makes many shardings: start over
        _SINGLE_DEVICE.clear()
    _SINGLE_DEVICE[sharding] = device
    return device


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for a single-device JAX array (always C-ordered, immutable).
    Written out for the common cases (a known sharding, a 1-D shape: 0.6 -> 0.4 us on the
    VM): every repeated conversion from JAX pays it."""
    if isinstance(x, _tracer_type()) or x.is_deleted():  # deleted: inspect() says so
        return None
    sharding = x.sharding
    device = _SINGLE_DEVICE.get(sharding, False)
    if device is False:
        device = _single_device(sharding)
    if device is None:
        return None
    shape = x.shape
    if len(shape) == 1:  # size_class() and _minor_order() of a 1-D shape, without the calls
        n = shape[0]
        return (x.dtype, n if n < 2 else 2, device, None)
    return (x.dtype, size_class(shape), device, _minor_order(x))


def fast_pointer(x: Any) -> int:
    """Where the data of an array with a fast key starts (Info.ptr)."""
    return _pointer(x)


def make(values: np.ndarray) -> Any:
    """A host probe, on JAX's CPU device even where a GPU is its default."""
    jax = _jax()
    return jax.device_put(values, jax.devices("cpu")[0])


def to_host(x: Any) -> np.ndarray:
    # JAX caches an array's host value after the first read (its arrays are immutable), so
    # a proof that reads memory written by another framework must read it afresh: copy on
    # the device first.
    jnp = require("jax.numpy", "jax")
    return np.asarray(jnp.array(x, copy=True))


def move(x: Any, device: tuple[str, int]) -> Any:
    """A copy of ``x`` (a JAX or NumPy array) on ``device``, as a JAX array."""
    jax = _jax()
    if device[0] == "cpu":
        where = jax.devices("cpu")[0]
    else:
        where = next(d for d in jax.devices() if d.platform in ("gpu", "cuda") and d.id == device[1])
    return jax.device_put(x, where, may_alias=False)


# --------------------------------------------------------------- between workers (zerocopy.dask)

def tensor_classes() -> tuple[type, ...]:
    """The classes zerocopy.dask registers its serializers for (imports JAX). jax.Array is
    abstract: the arrays themselves are of a jaxlib class (the record's class_modules)."""
    return (_jax().Array,)


def wait_ready(x: Any, device: int) -> None:
    """Host wait until ``x`` is computed (JAX dispatches asynchronously)."""
    x.block_until_ready()


def contiguous(x: Any) -> Any:
    """``x`` itself: JAX arrays are dense and row-major."""
    return x


# --------------------------------------------------------------- edges

def _to_numpy(x: Any, options: Options) -> np.ndarray:
    return np.asarray(x)


def _from_dlpack(x: Any, options: Options) -> Any:
    _refuse_narrowing(str(getattr(x, "dtype", "")).removeprefix("torch."))  # NumPy, torch, CuPy, ours
    # copy=False: the plan already decided this hop shares; JAX must not copy behind it.
    return _jax().dlpack.from_dlpack(streams.dlpack_source(x, options.stream), copy=False)


def _refuse_narrowing(dtype: str) -> None:
    # The plan refused 64-bit data without x64, but a cached route outlives the setting
    # (jax.config.update after the first conversion): JAX would narrow silently (or, through
    # its importer, hold 64-bit data it does not expect), so the hop checks the setting
    # itself when the data is wide.
    if dtype in _WIDE and not x64_enabled():
        raise UnsupportedDtypeError(message(
            f"JAX runs without 64-bit mode and would silently narrow {dtype} to 32 bits",
            hint="enable it with jax.config.update('jax_enable_x64', True) at start-up"))


def _from_dlpack_fast(info: Info, source: str) -> Callable[[Any], Any] | None:
    # 64-bit data keeps run(): its guard reads the x64 setting on every call.
    if info.dtype is None or info.dtype in _WIDE:
        return None
    one_liner = functools.partial(_jax().dlpack.from_dlpack, copy=False)
    if info.device[0] == "cpu":
        return _host_importer(info.dtype, one_liner) or one_liner
    return pointers.direct(NAME, info, source) or one_liner


# --------------------------------------------------------------- JAX's own importer, called directly

# jax.dlpack.from_dlpack is Python around one call of jaxlib's importer: it asks the producer
# for its device, looks the backend up, asks the producer's __dlpack__ for a capsule (torch's
# records and waits on an event in Python), imports, then jnp.asarray() the result (a no-op
# for the 32-bit and smaller dtypes the fast plans carry). Measured: 19-20 us on the VM for a
# NumPy array, 29 us (CuPy) to 52 us (torch) on the H200, for an import that is a few
# microseconds of work. Where a plan already proved the route (dtype, layout, device,
# alignment), the capsule is built in C and handed to the importer itself.

@cache
def _buffer_import() -> Callable[[Any, Any, int | None, int], Any] | None:
    """``imported(capsule, device, stream, device_type)``: jaxlib's importer under
    jax.dlpack.from_dlpack, never copying; None where it is not the one known here (it is
    private: its signature is checked on a host probe once, pointer for pointer)."""
    try:
        lib = importlib.import_module("jax._src.lib")  # private: looked up once, probed below
        importer = lib._jax.dlpack_managed_tensor_to_buffer
        if lib.jaxlib_extension_version >= 467:  # the DLPack device type joined the signature there
            def imported(capsule: Any, device: Any, stream: int | None, kind: int) -> Any:
                return importer(capsule, device, stream, False, kind)
        else:
            def imported(capsule: Any, device: Any, stream: int | None, kind: int) -> Any:
                return importer(capsule, device, stream, False)
        probe = np.zeros(1 + HOST_ALIGNMENT // 4, np.float32)
        start = (-dlpack.data_pointer(probe) % HOST_ALIGNMENT) // 4
        probe = probe[start:start + 1]
        capsule = dlpack.DLPackExporter(probe, dlpack.data_pointer(probe), probe.shape, (1,),
                                        "float32").capsule(versioned=False)  # either backend's
        result = imported(capsule, _jax().devices("cpu")[0], None, dlpack.CPU)
        if result.unsafe_buffer_pointer() != dlpack.data_pointer(probe) or result.dtype != probe.dtype:
            return None
    except Exception:  # another jaxlib: the public one-liner stays
        return None
    return imported


def _host_importer(dtype: str, otherwise: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """The import of what reaches this hop on the host, as the one-liner does it on the
    host (no stream) minus its Python: a writable NumPy array (from NumPy sources) over a
    capsule built in C; any other producer over the capsule its own ``__dlpack__()`` makes
    where it says its data is in host memory: our exporter (read-only data, as pandas 3,
    Polars and Arrow hand it out, and bfloat16), TensorFlow's and torch's tensors. Anything
    else takes ``otherwise``, JAX's one-liner (a read-only ndarray too: NumPy's exporter
    refuses it, and the route must fail as it does)."""
    imported, make = _buffer_import(), dlpack.capsule_maker(dtype, dlpack.CPU, 0)
    if imported is None or make is None:
        return None
    devices, ndarray, pointer, host = _jax().devices, np.ndarray, dlpack.data_pointer, dlpack.CPU

    def from_host(x: Any) -> Any:
        # The device is asked for on every call (0.2 us), as the one-liner does: JAX's
        # backends can be cleared and made anew, and a kept device is the old client's.
        cpu = devices("cpu")[0]
        if type(x) is ndarray:
            if x.flags.writeable:
                return imported(make(x, pointer(x), x.shape), cpu, None, host)
            return otherwise(x)  # NumPy's exporter refuses read-only arrays: so does the route
        where = getattr(x, "__dlpack_device__", None)
        if where is not None and where()[0] == host:
            return imported(x.__dlpack__(), cpu, None, host)
        return otherwise(x)

    return from_host


def _gpu_device(ordinal: int) -> Any:
    """JAX's device for CUDA device ``ordinal`` (what from_dlpack looks up)."""
    return next(d for d in _jax().devices()
                if d.platform in ("gpu", "cuda") and getattr(d, "local_hardware_id", d.id) == ordinal)


def adopter(dtype: str, device: int) -> Callable[..., Any] | None:
    """A JAX array over a device pointer handed over (pointers.py), made by jaxlib's importer
    from a capsule built in C. JAX imports on a stream of its own: that stream first waits,
    on the GPU, for the legacy default stream's work so far (where ready_buffer found the
    source's work), as the producer's __dlpack__(stream=...) does on the one-liner's route.
    None for 64-bit data (its x64 guard stays per call) and where the importer is not here."""
    imported, make = _buffer_import(), dlpack.capsule_maker(dtype, dlpack.CUDA, device)
    if dtype in _WIDE or imported is None or make is None:
        return None
    try:
        target = _gpu_device(device)
        platform, position = target.platform, _jax().devices(target.platform).index(target)
        target.get_stream_for_external_ready_events()  # the platform has that stream
    except Exception:  # no such device, or a platform without that stream
        return None
    devices, runtime, legacy, kind = _jax().devices, _cuda.binding(), streams.LEGACY, dlpack.CUDA

    def adopt(owner: Any, ptr: int, shape: tuple[int, ...], readonly: bool) -> Any:
        # Device and stream asked for on every call (about 0.3 us), as the one-liner does:
        # JAX's backends can be cleared and made anew, and a kept stream is the old client's.
        where = devices(platform)[position]
        stream = int(where.get_stream_for_external_ready_events())
        runtime.wait(stream, legacy, device)
        return imported(make(owner, ptr, shape), where, stream, kind)

    return adopt


# --------------------------------------------------------------- handing pointers over (pointers.py)

def ready_buffer(x: Any) -> tuple[int, Any, bool] | None:
    """(data pointer, shape, read-only) of a single-device array that is computed already
    (nothing left to order against); None while JAX is still computing it: the planned
    route then orders the consumer behind it (DLPack) or waits (CUDA Array Interface).
    Not marked read-only: the planned routes' DLPack legacy capsule cannot say it either."""
    if not x.is_ready():
        return None
    return x.unsafe_buffer_pointer(), x.shape, False


def _from_cai(x: Any, options: Options) -> Any:
    """A JAX array over a CUDA Array Interface export (Numba's arrays have no DLPack): a
    capsule over the interface's pointer, handed to jaxlib's importer on JAX's import
    stream, which first waits for the producer's stream. An export without a stream (CAI
    v2, or v3's "ordered already", which Numba says of arrays on the legacy default stream)
    is ordered behind the legacy default stream: JAX's streams do not synchronise with it."""
    imported = _buffer_import()
    if imported is None:  # the plan's check refused this route; a cached plan outlived that
        raise BufferError("jaxlib's DLPack importer is not available")
    view = cai.read(x)
    _refuse_narrowing(view.dtype)
    device = view.device[1]
    target = _gpu_device(device)
    stream = int(target.get_stream_for_external_ready_events())
    if options.stream is not streams.NO_SYNC and view.nbytes:
        streams.order(view.stream if view.stream is not None else streams.LEGACY, stream, device)
    exporter = dlpack.DLPackExporter(view.owner, view.ptr, view.shape, None, view.dtype,
                                     device=(dlpack.CUDA, device), readonly=view.readonly)
    return imported(exporter.capsule(versioned=False), target, stream, dlpack.CUDA)


def _cai_importer(info: Info, options: Options) -> Refusal | None:
    if _buffer_import() is None:
        return Refusal("JAX takes the CUDA Array Interface only through jaxlib's DLPack importer, "
                       "which this jaxlib does not have as zerocopy knows it", fixable=False, quiet=True)
    return None


def _to_cai(x: Any, options: Options) -> cai.CAIExporter:
    # JAX publishes CAI v2 without a stream: wait until this array is computed (a wait on
    # this array only), then publish it as "already ordered".
    if options.stream is not streams.NO_SYNC:
        x.block_until_ready()
    view = cai.read(x)
    return cai.CAIExporter.of(view, None)


def _host_aligned(info: Info, options: Options) -> Refusal | None:
    # JAX shares only 64-byte aligned host buffers; on the GPU it takes any pointer.
    return None if info.device[0] != "cpu" else _ALIGNED(info, options)


_ALIGNED = checks.aligned("JAX", HOST_ALIGNMENT)


def _x64(info: Info, options: Options) -> Refusal | None:
    if info.dtype in _WIDE and not x64_enabled():
        return Refusal(f"JAX runs without 64-bit mode and would silently narrow {info.dtype} to 32 bits",
                       "enable it with jax.config.update('jax_enable_x64', True) at start-up",
                       fixable=False, error=UnsupportedDtypeError)
    return None


def _immutable_caveat(info: Info) -> str | None:
    return "JAX arrays are immutable: the result is a read-only view of JAX's buffer"


EDGES = (
    Edge(NAME, "numpy", "array interface", "np.asarray(x)", _to_numpy, cost=0.6,
         fast=lambda info, source: np.asarray,
         check=checks.all_of(checks.on_cpu("NumPy"),
                             checks.layouts("np.asarray(jax array)", frozenset({"C"}),
                                            "copies arrays that JAX keeps in another layout")),
         caveat=_immutable_caveat),
    Edge(NAME, DLPACK, "DLPack legacy", "x  (Array.__dlpack__)", lambda x, o: x, cost=1.0,
         fast=lambda info, source: SAME),
    # Only Numba needs this door (it has no DLPack); DLPack stays cheaper for the others.
    Edge(NAME, CAI, "CUDA Array Interface v2", "x.block_until_ready().__cuda_array_interface__",
         _to_cai, cost=2.5, check=cai.refuse_dtype, fast=lambda info, source: PASS),
    # copy=True within JAX: a new buffer on the same device.
    Edge(NAME, NAME, "copy", "jnp.array(x, copy=True)",
         lambda x, o: require("jax.numpy", "jax").array(x, copy=True), copies=True, immutable_result=True,
         cost=4.0),
    # Numba's way in (its arrays have no DLPack). Cost above the DLPack import's 20 so that
    # producers with DLPack keep it (CuPy, torch: 1 + 20 against 1-1.5 + 22); Numba's route
    # through CuPy or torch cost 24.3 and ran at 95-165 us on the H200.
    Edge(CAI, NAME, "CUDA Array Interface (capsule by zerocopy)",
         "jaxlib importer over a capsule of x.__cuda_array_interface__", _from_cai, cost=22.0,
         needs_pointer=True, fast=pointers.specialiser(NAME),
         check=checks.all_of(
             cai.refuse_dtype, _x64, _cai_importer,
             checks.layouts("JAX (from the CUDA Array Interface)", frozenset({"C"}),
                            "is imported C-ordered only on this route"))),
    Edge(DLPACK, NAME, "DLPack legacy", "jax.dlpack.from_dlpack(x, copy=False)", _from_dlpack,
         cost=20.0, needs_pointer=True, fast=_from_dlpack_fast,
         check=checks.all_of(
             _x64,
             checks.layouts("JAX", frozenset({"C", "F", "compact"}),
                            "imports only compact strides (no step slices, no negative strides)"),
             _host_aligned),
         caveat=lambda info: ("JAX treats the buffer as immutable; writes made through the "
                              "source afterwards are visible to JAX") if not info.readonly else None),
)
