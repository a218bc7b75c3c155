"""PyTorch: two ways into the shared pool; torch takes no Python allocator.

``mode="async"`` (default): ``PYTORCH_ALLOC_CONF=backend:cudaMallocAsync``. torch's own
stream-ordered backend allocates from the device's default pool, i.e. the shared pool.
torch reads the setting when it is imported, so this must happen before ``import torch``
(or the variable must already be set). Accounting comes from torch's own counters; a
per-framework limit is torch's ``set_per_process_memory_fraction``, which raises
``torch.OutOfMemoryError`` itself, the cleanest failure torch has.

``mode="cached"``: a ``CUDAPluggableAllocator`` over zerocopy's block cache in C
(``_cache.c``): freed blocks are cached per stream and size class, a miss takes a block
from the shared pool, ``record_stream`` makes the allocation stream wait for the other
users, ``torch.cuda.empty_cache()`` and governance hand idle blocks back without waiting for
the GPU. torch and the C functions talk without Python: an allocation costs what torch's
default allocator costs (``zerocopy bench memory --gpu``: ``torch-shared-cached``). Set
before torch's first CUDA allocation, not undoable. torch's own memory counters
(``torch.cuda.memory_allocated`` and friends, which raise for a pluggable allocator) are
answered from the cache's counters. A limit is soft, as in ``pluggable``. Inside a CUDA
graph capture an allocation is captured into the graph (its own memory); any other block
freed while a capture is under way waits for its end. A request the device cannot serve
raises ``RuntimeError`` ("CUDA out of memory. Tried to allocate ... in zerocopy's cached
mode") from the torch call that asked, thrown in C++ by ``zerocopy._raise``: torch does not
check a NULL.

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
import importlib
import os
import sys
import threading
from typing import Any

from zerocopy import _native
from zerocopy._cuda import driver_path
from zerocopy.errors import DeviceError, FrameworkError, InvalidArgumentError, message
from zerocopy.memory.adaptors.failure import release_caches
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
    "idle_bytes",
    "install",
    "merge_env",
    "oom_type",
    "overdrafts",
    "release_cache",
]

NAME = "torch"
PACKAGE = "torch"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install torch (a CUDA build)"
MODES = ("async", "cached", "pluggable")
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
    if mode == "cached":
        return Capabilities(
            framework=NAME, mode="cached",
            route="CUDAPluggableAllocator over zerocopy's block cache in C -> shared pool",
            per_allocation=False,
            limits="soft: allocations past the limit are counted as overdrafts",
            accounting="the cache's counters (live, peak, cached, held), also behind "
                       "torch.cuda.memory_allocated and friends",
            before_runtime=True,
            undoable="no: torch cannot swap an allocator it has used",
            notes="set before torch's first CUDA allocation; needs the C extension, "
                  "zerocopy._raise (C++), a driver and a torch with set_record_stream_fn")
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
    if mode in ("pluggable", "cached") and _allocator_initialized(torch):
        raise started_error(NAME, "a pluggable allocator",
                            "call zerocopy.memory.share() before torch's first CUDA tensor")
    if mode == "cached":
        _cache_parts(torch)


def _cache_parts(torch: Any) -> tuple[Any, tuple[int, ...], int]:
    """(the C extension, the driver's addresses, the C++ throw's address) for cached mode,
    or the typed error that says which one is missing."""
    speedups = _native.speedups()
    if speedups is None or not hasattr(speedups, "cache_setup"):
        raise InvalidArgumentError(message(
            "torch's 'cached' memory mode runs in zerocopy's C extension, which is not active",
            got=_native.reason(), hint="use modes={'torch': 'async'} (the default)"))
    thrower = _thrower()
    if thrower is None:
        raise InvalidArgumentError(message(
            "torch's 'cached' memory mode fails an allocation through zerocopy._raise (C++), "
            "which was not built", got="no zerocopy._raise next to the package",
            hint="reinstall zerocopy where a C++ compiler is, or use modes={'torch': 'async'}"))
    addresses = driver_path.cache_addresses()
    if addresses is None:
        raise DeviceError(message(
            "torch's 'cached' memory mode calls the CUDA driver, and libcuda (CUDA 11.2 or "
            "newer) was not found", hint="run on a machine with an NVIDIA driver"))
    if not hasattr(getattr(torch, "_C", None), "_cuda_customAllocator"):
        raise FrameworkError(message(
            f"this torch ({getattr(torch, '__version__', '?')}) has no pluggable CUDA "
            "allocator (a CPU-only build?)", hint="install a CUDA build of torch"))
    return speedups, addresses, thrower


def _thrower() -> int | None:
    """The address of zerocopy._raise's C++ throw: torch does not check a NULL from a
    pluggable allocator (a kernel then writes address 0 and the CUDA context is lost), but
    turns a C++ exception into a Python RuntimeError."""
    try:
        return int(importlib.import_module("zerocopy._raise").THROW)
    except ImportError:  # built without a C++ compiler
        return None


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
    if mode == "cached":
        return _install_cached(resource, limit)
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


# --- cached mode --------------------------------------------------------------------
def _install_cached(resource: MemoryResource, limit: int | None) -> Installation:
    torch = import_framework("torch", NAME, INSTALL_HINT)
    speedups, addresses, thrower = _cache_parts(torch)
    if not _cached[0]:  # one C cache per process, like torch's allocator
        raw = _custom_allocator(torch, speedups.cache_functions())
        speedups.cache_setup(addresses, on_oom=_make_room, thrower=thrower)
        torch.cuda.memory.change_current_allocator(torch.cuda.memory._CUDAAllocator(raw))
        _keep_alive.append(raw)
        _answer_torch_counters(torch, speedups)
        _count_captures(torch, speedups)
        _cached[0] = True
    device = int(getattr(list(layers(resource))[-1], "device", 0) or 0)
    speedups.cache_set_limit(device, limit or 0)
    return Installation(NAME, capabilities("cached"), {"limit": limit, "device": device,
                                                       "path": "cached+C"}, lambda: None)


_cached = [False]  # whether this process's torch allocator is the C cache


def _custom_allocator(torch: Any, calls: dict[str, int]) -> Any:
    """torch's pluggable allocator over the cache's C functions. The cache must hear of
    ``record_stream``: without it, a block another stream still reads could be handed out
    again, so a torch that cannot pass it on is refused before anything changes."""
    raw = torch._C._cuda_customAllocator(calls["alloc"], calls["free"])
    if not (hasattr(raw, "set_record_stream_fn") and hasattr(raw, "set_reset_fn")):
        raise FrameworkError(message(
            f"this torch ({getattr(torch, '__version__', '?')}) cannot tell a pluggable "
            "allocator about record_stream, so cached blocks could be reused too early",
            hint="use modes={'torch': 'async'} (the default), or a newer CUDA build of torch"))
    raw.set_record_stream_fn(calls["record_stream"])
    raw.set_reset_fn(calls["empty"])  # torch.cuda.empty_cache(): idle blocks back, no wait
    return raw


def _make_room(nbytes: int, device: int) -> bool:
    """A cache miss found the device full even after the cache gave its own idle blocks
    back: dropped tensors still waiting for the garbage collector, then the other
    frameworks' caches. The C cache retries once after this."""
    release_caches(nbytes, NAME, 0)  # gc.collect()
    release_caches(nbytes, NAME, 1)
    return True


def _cache_stats(device: int) -> dict[str, int]:
    speedups = _native.speedups()
    return dict(speedups.cache_stats(device)) if speedups is not None else {}


# torch.cuda.memory_stats() keys: "<metric>.<pool>.<stat>" plus a few scalars. All are
# present (torch.cuda.memory_summary reads every one); the cache has one pool, so "all"
# carries the numbers and the large/small pools read 0.
_METRICS = ("allocation", "segment", "active", "inactive_split", "allocated_bytes",
            "reserved_bytes", "active_bytes", "inactive_split_bytes", "requested_bytes")
_POOLS = ("all", "large_pool", "small_pool")
_STATS = ("current", "peak", "allocated", "freed")


def _torch_memory_stats(c: dict[str, int]) -> dict[str, int]:
    """The cache's counters ``c`` (``cache_stats``) under torch's memory_stats() keys."""
    out = {f"{m}.{p}.{t}": 0 for m in _METRICS for p in _POOLS for t in _STATS}
    live = {"current": c["live_bytes"], "peak": c["peak_bytes"],
            "allocated": c["alloc_bytes_total"], "freed": c["freed_bytes_total"]}
    count = {"current": c["live_count"], "peak": c["peak_count"],
             "allocated": c["allocs_total"], "freed": c["frees_total"]}
    for metric, values in (("allocated_bytes", live), ("active_bytes", live),
                           ("requested_bytes", live), ("allocation", count), ("active", count)):
        out.update({f"{metric}.all.{t}": v for t, v in values.items()})
    out["reserved_bytes.all.current"] = c["reserved_bytes"]
    out["reserved_bytes.all.peak"] = c["reserved_peak"]
    # torch's memory_summary calls this "Non-releasable memory": blocks held or deferred.
    out["inactive_split_bytes.all.current"] = c["held_bytes"] + c["deferred_bytes"]
    out.update({"num_alloc_retries": c["retries"], "num_ooms": c["ooms"],
                "num_sync_all_streams": 0, "num_device_alloc": c["misses"] + c["captured"],
                "num_device_free": 0, "max_split_size": -1})
    out.update({f"oversize_{kind}.{t}": 0 for kind in ("allocations", "segments") for t in _STATS})
    return dict(sorted(out.items()))  # torch's own is sorted by key


def _answer_torch_counters(torch: Any, speedups: Any) -> None:
    """torch raises "CUDAPluggableAllocator does not yet support getDeviceStats" from
    ``torch.cuda.memory_stats`` (and so ``memory_allocated``, ``memory_reserved``, their
    maxima, ``memory_summary``) and from the resets. Training scripts call these; here they
    read the cache's counters under torch's own key names."""
    memory = torch.cuda.memory

    def index(device: Any) -> int:
        return int(memory._get_device_index(device, optional=True))

    def memory_stats(device: Any = None) -> dict[str, int]:
        return _torch_memory_stats(speedups.cache_stats(index(device)))

    def memory_stats_as_nested_dict(device: Any = None) -> dict[str, Any]:
        nested: dict[str, Any] = {}
        for key, value in memory_stats(device).items():
            *path, last = key.split(".")
            node = nested
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
        return nested

    def reset_peak_memory_stats(device: Any = None) -> None:
        speedups.cache_reset_peaks(index(device))

    def reset_accumulated_memory_stats(device: Any = None) -> None:
        speedups.cache_reset_accumulated(index(device))

    answers = {"memory_stats": memory_stats,
               "memory_stats_as_nested_dict": memory_stats_as_nested_dict,
               "reset_peak_memory_stats": reset_peak_memory_stats,
               "reset_accumulated_memory_stats": reset_accumulated_memory_stats}
    for owner in (torch.cuda, memory):
        for name, function in answers.items():
            if hasattr(owner, name):
                setattr(owner, name, function)


def _count_captures(torch: Any, speedups: Any) -> None:
    """Tell the cache when a torch graph capture begins and ends: while one is under way a
    freed block is deferred whichever stream it was freed on (nothing may be recorded into
    the capture, which runs on a stream of its own), until the last capture ends. Wraps
    ``torch.cuda.CUDAGraph``'s two methods, which ``torch.cuda.graph`` and
    ``make_graphed_callables`` call."""
    graph = torch.cuda.CUDAGraph
    begin, end = graph.capture_begin, graph.capture_end

    def capture_begin(self: Any, *args: Any, **kwargs: Any) -> Any:
        speedups.cache_capture(1)
        try:
            return begin(self, *args, **kwargs)
        except BaseException:
            speedups.cache_capture(-1)
            raise

    def capture_end(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return end(self, *args, **kwargs)
        finally:
            speedups.cache_capture(-1)

    graph.capture_begin, graph.capture_end = capture_begin, capture_end


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
    if _cached[0]:
        c = _cache_stats(torch.cuda.current_device())
        return {"current_bytes": c["live_bytes"], "peak_bytes": c["peak_bytes"],
                "reserved_bytes": c["reserved_bytes"], "cached_free_bytes": c["cached_bytes"],
                "held_bytes": c["held_bytes"], "overdraft_count": c["overdrafts"]}
    if torch.cuda.get_allocator_backend() == "pluggable":
        return {"overdraft_count": overdrafts()["count"], "callback_errors": len(_errors)}
    return {"current_bytes": int(torch.cuda.memory_allocated()),
            "peak_bytes": int(torch.cuda.max_memory_allocated()),
            "reserved_bytes": int(torch.cuda.memory_reserved())}


def idle_bytes() -> int:
    """Bytes the C cache holds that no tensor uses (cached mode), 0 otherwise: governance
    asks for them back when another framework needs memory."""
    speedups = _native.speedups()
    if not _cached[0] or speedups is None:
        return 0
    return sum(speedups.cache_stats(d)["cached_bytes"] for d in range(_device_count()))


def _device_count() -> int:
    torch = sys.modules.get("torch")
    return int(torch.cuda.device_count()) if torch is not None else 1


def release_cache() -> bool:
    if _cached[0]:  # stream-ordered frees of the idle blocks: no wait for the GPU
        speedups = _native.speedups()
        return bool(speedups.cache_release(-1)) if speedups is not None else False
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    torch.cuda.empty_cache()
    return True


def oom_type() -> type[BaseException] | None:
    import torch

    return torch.OutOfMemoryError
