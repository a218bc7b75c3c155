"""PyTorch: two ways into the shared pool; torch takes no Python allocator.

``mode="async"`` (default): ``PYTORCH_ALLOC_CONF=backend:cudaMallocAsync``. torch's own
stream-ordered backend allocates from the device's default pool, i.e. the shared pool.
torch reads the setting when it is imported, so this must happen before ``import torch``
(or the variable must already be set). Accounting comes from torch's own counters; a
per-framework limit is torch's ``set_per_process_memory_fraction``, which raises
``torch.OutOfMemoryError`` itself, the cleanest failure torch has.

``mode="pluggable"``: a ``CUDAPluggableAllocator`` whose two C function pointers are
ctypes callbacks into our resource chain, so torch gets per-allocation statistics, logs
and leak stacks like CuPy. It must be set before torch's first CUDA allocation and cannot
be swapped back afterwards. torch does not check the pointer a pluggable allocator
returns, and a callback cannot raise into C++, so a refusal by a limit must not become a
NULL: the allocation is served from the base pool instead ("overdraft") and recorded, and
the limit is soft in this mode. Use ``async`` for a hard torch limit.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any

from zerocopy.memory.hooks import Capabilities, Installation
from zerocopy.memory.hooks._common import import_framework, set_env, started_error, unknown_mode
from zerocopy.memory.resource import MemoryResource, layers

__all__ = [
    "ENV",
    "INSTALL_HINT",
    "MODES",
    "NAME",
    "PACKAGE",
    "capabilities",
    "check",
    "framework_stats",
    "install",
    "merge_env",
    "oom_type",
    "overdrafts",
    "release_cache",
]

NAME = "torch"
PACKAGE = "torch"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install torch (a CUDA build)"
MODES = ("async", "pluggable")
_ENV_KEYS = ("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF")
_BACKEND = "backend:cudaMallocAsync"
# What the default mode ("async") needs before import torch (torch reads either spelling).
ENV = dict.fromkeys(_ENV_KEYS, _BACKEND)


def capabilities(mode: str | None = None) -> Capabilities:
    if (mode or "async") == "async":
        return Capabilities(
            framework=NAME, mode="async",
            route="PYTORCH_ALLOC_CONF=backend:cudaMallocAsync (torch's backend on the default pool)",
            per_allocation=False,
            limits="torch.cuda.set_per_process_memory_fraction -> torch.OutOfMemoryError",
            accounting="torch.cuda.memory_allocated / max_memory_allocated, plus the pool",
            before_runtime=True,
            undoable="only before import torch (the environment variable is restored)",
            notes="set before import torch; the limit applies once torch has initialised CUDA")
    return Capabilities(
        framework=NAME, mode="pluggable",
        route="CUDAPluggableAllocator with ctypes callbacks -> shared resource chain",
        per_allocation=True,
        limits="soft: a refusal is served from the base pool and recorded (torch cannot fail it)",
        accounting="per allocation (StatisticsAdaptor)",
        before_runtime=True,
        undoable="no: torch cannot swap an allocator it has used",
        notes="set before torch's first CUDA allocation; adds a ctypes call per allocation")


def check(mode: str | None = None) -> None:
    mode = mode or "async"
    if mode not in MODES:
        raise unknown_mode(NAME, mode, MODES)
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if mode == "async" and _backend(torch) != "cudaMallocAsync":
        raise started_error(NAME, f"PYTORCH_ALLOC_CONF={_BACKEND}",
                            "call zerocopy.memory.share() before import torch, set "
                            f"PYTORCH_ALLOC_CONF={_BACKEND} in the environment, or use "
                            "modes={'torch': 'pluggable'} before torch's first CUDA allocation")
    if mode == "pluggable" and _allocator_initialized(torch):
        raise started_error(NAME, "a pluggable allocator",
                            "call zerocopy.memory.share() before torch's first CUDA tensor")


def _backend(torch: Any) -> str:
    try:
        return str(torch.cuda.get_allocator_backend())
    except (AttributeError, RuntimeError):  # a CPU-only torch has no CUDA allocator at all
        return "none"


def _allocator_initialized(torch: Any) -> bool:
    return bool(torch.cuda.is_initialized())


def merge_env(key: str, current: str | None) -> str:
    """``ENV[key]`` joined with the allocator options already set (``current``): torch's
    options are one comma-separated list, so the backend is replaced and the rest kept."""
    parts = [p for p in (current or "").split(",") if p and not p.startswith("backend:")]
    return ",".join([ENV[key], *parts])


def _merged_conf() -> str:
    current = os.environ.get("PYTORCH_ALLOC_CONF") or os.environ.get("PYTORCH_CUDA_ALLOC_CONF")
    return merge_env("PYTORCH_ALLOC_CONF", current)


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    mode = mode or "async"
    check(mode)
    if mode == "async":
        return _install_async(limit)
    return _install_pluggable(resource)


def _install_async(limit: int | None) -> Installation:
    conf = _merged_conf()
    undo = set_env(dict.fromkeys(_ENV_KEYS, conf)) if "torch" not in sys.modules else None
    installation = Installation(NAME, capabilities("async"), {"PYTORCH_ALLOC_CONF": conf,
                                                              "limit": limit},
                                undo or (lambda: None))
    if limit is not None:
        installation.details["poll"] = lambda: _apply_limit(limit)
        _apply_limit(limit)
    return installation


def _apply_limit(limit: int) -> bool:
    """Set torch's own cap once torch has started CUDA; True when done (polled until then)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    device = torch.cuda.current_device()
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total), device)
    return True


# --- pluggable mode ---------------------------------------------------------------
_ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p)
_keep_alive: list[Any] = []  # torch keeps the raw pointers forever; so must we
_overdrafts: dict[int, int] = {}
_overdraft_lock = threading.Lock()
_overdraft_total = [0, 0]  # count, bytes


def overdrafts() -> dict[str, int]:
    """Allocations served past a refusal in pluggable mode: count, bytes, live now."""
    with _overdraft_lock:
        return {"count": _overdraft_total[0], "bytes": _overdraft_total[1],
                "live": len(_overdrafts)}


def _callbacks(resource: MemoryResource) -> tuple[Any, Any]:
    base = list(layers(resource))[-1]

    def allocate(nbytes: int, device: int, stream: int | None) -> int:
        try:
            return resource.allocate(nbytes, stream or 0, framework=NAME)
        except MemoryError:
            ptr = base.allocate(nbytes, stream or 0, framework=NAME)
            with _overdraft_lock:
                _overdrafts[ptr] = nbytes
                _overdraft_total[0] += 1
                _overdraft_total[1] += nbytes
            return ptr

    def free(ptr: int | None, nbytes: int, device: int, stream: int | None) -> None:
        if not ptr:
            return
        with _overdraft_lock:
            overdraft = _overdrafts.pop(ptr, None)
        (base if overdraft is not None else resource).deallocate(ptr, nbytes, stream or 0)

    return _ALLOC(_guard(allocate, 0)), _FREE(_guard(free, None))


def _guard(fn: Any, failed: Any) -> Any:
    # An exception must not cross into C++: keep it for report(), return the failure value.
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except BaseException as exc:
            _errors.append(repr(exc))
            return failed

    return call


_errors: list[str] = []


def _install_pluggable(resource: MemoryResource) -> Installation:
    torch = import_framework("torch", NAME, INSTALL_HINT)
    alloc, free = _callbacks(resource)
    raw = torch._C._cuda_customAllocator(ctypes.cast(alloc, ctypes.c_void_p).value,
                                         ctypes.cast(free, ctypes.c_void_p).value)
    torch.cuda.memory.change_current_allocator(torch.cuda.memory._CUDAAllocator(raw))
    _keep_alive.extend([alloc, free, raw])
    return Installation(NAME, capabilities("pluggable"), {"errors": _errors},
                        lambda: None)


def framework_stats() -> dict[str, int] | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    if torch.cuda.get_allocator_backend() == "pluggable":
        return {"overdraft_count": overdrafts()["count"], "callback_errors": len(_errors)}
    return {"current_bytes": int(torch.cuda.memory_allocated()),
            "peak_bytes": int(torch.cuda.max_memory_allocated()),
            "reserved_bytes": int(torch.cuda.memory_reserved())}


def release_cache() -> bool:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    torch.cuda.empty_cache()
    return True


def oom_type() -> type[BaseException] | None:
    import torch

    return torch.OutOfMemoryError
