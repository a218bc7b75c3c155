"""``share()``: route every GPU framework to one pool, with one adaptor chain in front.

The chain, inside out: base resource (the device's default pool) -> limits -> the
out-of-memory callback (collect garbage, ask other caches, retry) -> leak tracking (opt-in)
-> CSV log (opt-in) -> statistics. Frameworks with a Python allocator (CuPy, Numba, torch
``pluggable``, cuDF ``callback``) go through the whole chain; those that can only be told
by configuration (torch ``async``, JAX, TensorFlow, cuDF ``view``) allocate straight from
the same pool and are accounted at pool level. Nothing is changed until every framework
has been checked, so a framework that started too early fails the call with no half-setup.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import IO, Any

from zerocopy import _cuda
from zerocopy._cuda import UINT64_MAX
from zerocopy.errors import DeviceError, FrameworkNotInstalledError, InvalidArgumentError, message
from zerocopy.memory._active import LOCK, active, set_active
from zerocopy.memory.adaptors.failure import Callback, OutOfMemoryCallbackAdaptor, release_caches
from zerocopy.memory.adaptors.limiting import LimitingAdaptor
from zerocopy.memory.adaptors.logging import LoggingAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor
from zerocopy.memory.adaptors.tracking import TrackingAdaptor
from zerocopy.memory.governance import PoolGovernor, release_idle
from zerocopy.memory.hooks import HOOKS, Capabilities, Installation, hook
from zerocopy.memory.report import MemoryReport, report
from zerocopy.memory.resource import MemoryResource, find, layers, set_current_resource
from zerocopy.memory.resources.device_pool import DevicePoolResource

__all__ = ["SharedPool", "active", "installed_frameworks", "share", "unshare"]


def installed_frameworks() -> list[str]:
    """Frameworks whose package is importable here (nothing is imported to find out)."""
    return [name for name in HOOKS if importlib.util.find_spec(hook(name).PACKAGE) is not None]


class SharedPool:
    """What ``share()`` set up: the chain, the installations, the governor. Undo with ``undo()``."""

    def __init__(self, resource: MemoryResource, device: int) -> None:
        self.resource = resource
        self.device = device
        self.installations: dict[str, Installation] = {}
        self.governor: PoolGovernor | None = None
        self._previous: MemoryResource | None = None

    @property
    def base(self) -> MemoryResource:
        return list(layers(self.resource))[-1]

    @property
    def statistics(self) -> StatisticsAdaptor | None:
        return find(self.resource, StatisticsAdaptor)

    @property
    def tracker(self) -> TrackingAdaptor | None:
        return find(self.resource, TrackingAdaptor)

    @property
    def limiter(self) -> LimitingAdaptor | None:
        return find(self.resource, LimitingAdaptor)

    def capabilities(self) -> dict[str, Capabilities]:
        return {name: inst.capabilities for name, inst in self.installations.items()}

    def check(self) -> list[Any]:
        """Run governance and pending per-framework setup now (the watcher does it anyway)."""
        if self.governor is not None:
            return self.governor.check()
        for inst in self.installations.values():
            poll = inst.details.get("poll")
            if callable(poll) and poll():
                inst.details.pop("poll")
        return []

    def trim(self, keep: int = 0) -> None:
        """Give the shared pool's cached memory above ``keep`` bytes back to the device,
        now, recorded as zerocopy's own trim. Meant for step boundaries: it does not wait
        for the GPU (blocks whose frees are still in flight stay reserved until a later
        trim), unlike ``torch.cuda.empty_cache()`` or CuPy's ``free_all_blocks()``."""
        if self.governor is not None:
            self.governor.trim(keep)
            return
        trim = getattr(self.base, "trim", None)
        if trim is None:
            raise InvalidArgumentError(message(f"{type(self.base).__name__} has no trim()"))
        trim(keep)

    def handoff(self, consumer: int | str, producer: int = 0) -> int | None:
        """Stream-ordered handoff between frameworks: frees queued so far on ``producer``
        (default: the legacy stream, where CuPy and torch work unless told otherwise)
        become reusable by the ``consumer`` stream, which waits on an event recorded after
        them. ``consumer`` is a stream handle, or ``"jax"`` for the stream JAX names for
        external work (``get_stream_for_external_ready_events``). The caches in front of
        the pool (CuPy's, in cached mode) first give their idle blocks back, so the next
        framework can reuse them. Does not block the host.
        Returns the consumer stream used, or None where it could not be found."""
        release_idle(asking=None)  # caches in front (CuPy's): their idle blocks go back first
        stream = _consumer_stream(consumer)
        handoff = getattr(self.base, "handoff", None)
        if stream is None or handoff is None:
            return None
        handoff(stream, producer)
        return stream

    def report(self) -> MemoryReport:
        return report(self)

    def undo(self) -> None:
        """Undo every installation (newest first), stop governance, close the log."""
        for inst in reversed(list(self.installations.values())):
            inst.undo()
        if self.governor is not None:
            self.governor.stop()
        logger = find(self.resource, LoggingAdaptor)
        if logger is not None:
            logger.close()
        set_current_resource(self._previous, self.device)
        with LOCK:
            if active() is self:
                set_active(None)

    def __enter__(self) -> SharedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def _consumer_stream(consumer: int | str) -> int | None:
    if isinstance(consumer, int):
        return consumer
    if consumer != "jax":
        raise InvalidArgumentError(message("handoff() takes a stream handle or 'jax'", got=repr(consumer)))
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    try:
        return int(jax.devices()[0].get_stream_for_external_ready_events())
    except Exception:  # not a GPU device, or a JAX without that call
        return None


def _chain(base: MemoryResource, *, limit: int | None, limits: Mapping[str, int],
           on_oom: Callback | None, track: bool, capture_stacks: bool,
           log: str | IO[str] | None, statistics: bool) -> MemoryResource:
    resource = base
    if limit is not None or limits:
        resource = LimitingAdaptor(resource, limit=limit, limits=limits)
    if on_oom is not None:
        resource = OutOfMemoryCallbackAdaptor(resource, on_oom)
    if track:
        resource = TrackingAdaptor(resource, capture_stacks=capture_stacks)
    if log is not None:
        resource = LoggingAdaptor(resource, log)
    if statistics:
        resource = StatisticsAdaptor(resource)
    return resource


def _has_gpu() -> bool:
    """A CUDA device is visible to this process (asked through the runtime binding)."""
    try:
        _cuda.current_device()
    except Exception:  # no binding, no driver or no device: all mean "no GPU" here
        return False
    return True


def _without_gpu(names: list[str], *, named: bool) -> list[str]:
    """No GPU: routing a framework's GPU allocations would only set CUDA environment
    variables (PYTORCH_ALLOC_CONF, XLA_PYTHON_CLIENT_ALLOCATOR, TF_GPU_ALLOCATOR) and
    hooks that nothing uses. Frameworks named by the caller: DeviceError; the default
    (every installed framework): a warning, and none of them is touched."""
    what = (f"there is no CUDA GPU here, so {', '.join(names)} cannot be routed to a shared GPU "
            "pool; nothing was changed (no CUDA environment variable was set)")
    hint = "run on a GPU machine, or share([], resource=...) to account host allocations only"
    if named:
        raise DeviceError(message(what, hint=hint))
    warnings.warn(message(what, hint=hint), RuntimeWarning, stacklevel=3)
    return []


def _resolve(frameworks: Iterable[str] | None) -> list[str]:
    if frameworks is None:
        return installed_frameworks()
    names = list(frameworks)
    for name in names:
        module = hook(name)  # KeyError for an unknown name
        if importlib.util.find_spec(module.PACKAGE) is None:
            raise FrameworkNotInstalledError(message(
                f"{name} was asked to share the pool but is not installed",
                hint=module.INSTALL_HINT), name=module.PACKAGE)
    return names


def share(frameworks: Iterable[str] | None = None, *, resource: MemoryResource | None = None,
          limit: int | None = None, limits: Mapping[str, int] | None = None,
          modes: Mapping[str, str] | None = None, statistics: bool = True,
          track: bool = False, capture_stacks: bool = True, log: str | IO[str] | None = None,
          on_oom: Callback | None = release_caches, governance: bool | None = None,
          release_threshold: int = UINT64_MAX, interval: float | None = 0.05,
          protect_caches: bool = True, device: int = 0) -> SharedPool:
    """Route ``frameworks`` (default: every installed one) to one shared pool.

    ``resource`` defaults to the device's default CUDA pool. ``limit`` is a global budget in
    bytes over everything that goes through the chain; ``limits`` per framework (enforced
    as each framework's capabilities say). ``modes`` picks a hook mode, e.g.
    ``{"torch": "pluggable"}``. ``governance`` (default: on when the base is a device pool)
    keeps the pool's release threshold at ``release_threshold`` and records trims.
    Raises ``FrameworkStartedError`` (nothing changed) if a framework that must be set up
    before its runtime starts has already started. Without a CUDA GPU nothing is changed:
    frameworks named in ``frameworks`` raise ``DeviceError``; by default (every installed
    framework) a ``RuntimeWarning`` says none was routed (``share([])`` stays valid).
    """
    names = _resolve(frameworks)
    modes, limits = dict(modes or {}), dict(limits or {})
    for name in names:
        hook(name).check(modes.get(name))
    if names and not _has_gpu():
        names = _without_gpu(names, named=frameworks is not None)
    with LOCK:
        if active() is not None:
            raise RuntimeError(message("a shared pool is already active",
                                       hint="call .undo() on it (or zerocopy.memory.unshare()) first"))
        if resource is None:
            resource = DevicePoolResource(device)
        chain = _chain(resource, limit=limit, limits=limits, on_oom=on_oom, track=track,
                       capture_stacks=capture_stacks, log=log, statistics=statistics)
        shared = SharedPool(chain, device)
        try:
            for name in names:
                shared.installations[name] = hook(name).install(
                    chain, limit=limits.get(name), mode=modes.get(name))
        except BaseException:
            for inst in reversed(list(shared.installations.values())):
                inst.undo()
            raise
        shared._previous = set_current_resource(chain, device)
        _start_governance(shared, resource, governance, release_threshold, interval,
                          protect_caches)
        set_active(shared)
    return shared


def _start_governance(shared: SharedPool, base: MemoryResource, governance: bool | None,
                      threshold: int, interval: float | None, protect: bool) -> None:
    pool_like = all(hasattr(base, attr) for attr in ("reserved", "used", "trim",
                                                     "release_threshold"))
    if governance is False or (governance is None and not pool_like):
        return
    governor = PoolGovernor(base, release_threshold=threshold,  # type: ignore[arg-type]
                            interval=interval, protect_caches=protect)
    for inst in shared.installations.values():
        poll = inst.details.get("poll")
        if callable(poll):
            governor.polls.append(poll)
    shared.governor = governor.start()


def unshare() -> None:
    """Undo the active ``share()``, if any (what the test fixture calls after each test)."""
    shared = active()
    if shared is not None:
        shared.undo()
