"""The one place zerocopy talks to the CUDA runtime: which binding, devices, pointers,
stream ordering, host synchronisation, memory. The exchange and the memory part both
call these functions; nothing else names ``cuda.bindings`` or ``cupy.cuda.runtime``.

Which binding (:func:`binding`), in this order, written only here:

1. ``ZEROCOPY_CUDA_BINDING=cuda.bindings`` or ``=cupy``: the one named (a choice; the
   benchmarks and GPU tests use it to run both).
2. CuPy's runtime when CuPy is *already loaded*: its Cython functions take plain ints and
   cost less per call than cuda.bindings' wrappers (measured on the allocation hot path),
   and the import is already paid.
3. cuda.bindings (cuda-python) when importable: importing it creates no CUDA context and
   imports no framework.
4. Neither: ``FrameworkNotInstalledError`` with the install hint. CuPy is never imported
   here unless chosen: importing it costs about half a second and a user who never loaded
   it did not ask for it.

The choice is made once per state of 2 (before and after CuPy is loaded), so a process
that loads CuPy later moves to the cheaper binding; handles are plain ints either way.

Every failure is typed: a CUDA out-of-memory is ``OutOfMemoryError``, any other CUDA
failure (no driver, no device, a bad handle) ``DeviceError``, a missing binding
``FrameworkNotInstalledError``; each message ends with a hint.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from zerocopy._cuda.runtime import UINT64_MAX, CudaRuntime, PoolAttr
from zerocopy._cuda.via_bindings import BindingsRuntime
from zerocopy._cuda.via_cupy import CupyRuntime
from zerocopy.errors import FrameworkNotInstalledError, InvalidArgumentError, message

__all__ = [
    "ENVIRONMENT",
    "UINT64_MAX",
    "CudaRuntime",
    "PoolAttr",
    "binding",
    "current_device",
    "device_count",
    "mem_info",
    "on_device",
    "pointer_device",
    "reset",
    "single_gpu",
    "synchronize",
    "synchronize_stream",
    "wait",
]

ENVIRONMENT = "ZEROCOPY_CUDA_BINDING"
_BINDINGS: dict[str, type[CudaRuntime]] = {"cuda.bindings": BindingsRuntime, "cupy": CupyRuntime}
_INSTALL_HINT = ("pip install cuda-bindings (or import cupy first, "
                 f"or set {ENVIRONMENT}=cupy where CuPy is installed)")

_CHOSEN: dict[bool, CudaRuntime] = {}  # "is CuPy loaded?" -> the binding chosen then
_DEVICE_COUNT: list[int] = []


# --------------------------------------------------------------- the binding

def binding(name: str | None = None) -> CudaRuntime:
    """The CUDA runtime binding to use now (the order is in the module docstring), or the
    one called ``name`` ("cuda.bindings" or "cupy"; naming CuPy imports it)."""
    if name is not None:
        return _make(name)
    cupy_loaded = sys.modules.get("cupy") is not None  # None: an import that was blocked
    chosen = _CHOSEN.get(cupy_loaded)
    if chosen is None:
        chosen = _CHOSEN[cupy_loaded] = _make(_preferred(cupy_loaded))
    return chosen


def _preferred(cupy_loaded: bool) -> str:
    forced = os.environ.get(ENVIRONMENT, "")
    if forced:
        return forced
    if cupy_loaded:
        return "cupy"
    if _importable("cuda.bindings"):
        return "cuda.bindings"
    raise FrameworkNotInstalledError(message(
        "CUDA work needs a CUDA runtime binding", expected="cuda-bindings, or CuPy already imported",
        got="neither", hint=_INSTALL_HINT), name="cuda.bindings")


def _importable(module: str) -> bool:
    try:  # find_spec imports the parent package (``cuda``, a namespace: no side effects)
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def _make(name: str) -> CudaRuntime:
    kind = _BINDINGS.get(name)
    if kind is None:
        raise InvalidArgumentError(message(
            f"Unknown CUDA binding {name!r}", expected=" or ".join(map(repr, _BINDINGS)),
            hint=f"check {ENVIRONMENT} (unset it to let zerocopy choose)"))
    try:
        return kind()
    except ImportError as exc:
        raise FrameworkNotInstalledError(message(
            f"The CUDA binding {name!r} cannot be imported", got=f"{type(exc).__name__}: {exc}",
            hint=_INSTALL_HINT), name=name) from exc


def reset() -> None:
    """Forget the chosen binding and the device count (for tests; a process never needs it)."""
    _CHOSEN.clear()
    _DEVICE_COUNT.clear()
    _make.cache_clear()


# --------------------------------------------------------------- devices and pointers

def device_count() -> int:
    """CUDA devices this process sees (raises ``DeviceError`` where there is no driver or
    no device, ``FrameworkNotInstalledError`` where there is no binding)."""
    return binding().device_count()


def single_gpu() -> bool:
    """True on a machine with one CUDA device (asked once: devices do not come and go)."""
    if not _DEVICE_COUNT:
        _DEVICE_COUNT.append(device_count())
    return _DEVICE_COUNT[0] == 1


def current_device() -> int:
    return binding().current_device()


@contextmanager
def on_device(index: int) -> Iterator[None]:
    """Make ``index`` the current CUDA device for the block (restored after).

    Importers label foreign memory with the *current* device (CuPy, Numba) and torch
    refuses to export a tensor of another device with a stream; converting data that lives
    on device 1 while device 0 is current must therefore happen on device 1."""
    rt = binding()
    previous = rt.current_device()
    if previous == index:
        yield
        return
    rt.set_device(index)
    try:
        yield
    finally:
        rt.set_device(previous)


def pointer_device(ptr: int) -> tuple[str, int]:
    """("cuda", ordinal) of the device that holds ``ptr``; with several GPUs, managed and
    pinned host memory report as "cuda_managed" / "cuda_host" with their device. A null
    pointer (an empty array) is on the current device. With one GPU every pointer is on
    device 0, and no driver query is made (this is on every conversion's path)."""
    if not ptr:
        return ("cuda", current_device())
    if single_gpu():
        return ("cuda", 0)
    return binding().pointer_device(ptr)


def mem_info() -> tuple[int, int]:
    """(free, total) bytes of the current device."""
    return binding().mem_get_info()


# --------------------------------------------------------------- streams

def wait(consumer: int, producer: int, *, device: int | None = None) -> None:
    """Make stream ``consumer`` wait, on the GPU, for the work queued so far on stream
    ``producer``: an event (one per device, reused) recorded on the producer, waited on by
    the consumer. The host does not block. ``device``: the device of the streams, made
    current for the call (default: the current one). Handles are raw ``cudaStream_t`` ints."""
    rt = binding()
    current = rt.current_device()
    if device is None or device == current:
        rt.wait(consumer, producer, current)
        return
    rt.set_device(device)
    try:
        rt.wait(consumer, producer, device)
    finally:
        rt.set_device(current)


def synchronize_stream(stream: int) -> None:
    """Block the host until the work queued on ``stream`` has finished."""
    binding().stream_synchronize(stream)


def synchronize() -> None:
    """Block the host until the current device is idle."""
    binding().synchronize()
