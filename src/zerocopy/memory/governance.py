"""Pool governance: zerocopy owns the shared pool's settings and watches who changes them.

The release threshold is one value per pool, and every framework writes it: JAX started
last (``cuda_async``, no preallocation) sets it to 0, after which every synchronisation
trims the pool (64 MiB alloc+free+sync: 281 us instead of 4.5 us). The governor sets the
threshold it was given (default: keep everything, UINT64_MAX), re-asserts it whenever a
check finds it changed, and records each change. With the threshold at its maximum the
pool never shrinks by itself, so any drop of cached memory (reserved minus used) is a trim
someone asked for: it is recorded as an event with the bytes lost.

``protect_caches=True`` also wraps ``torch.cuda.empty_cache``: on torch's async backend it
would trim the *shared* pool, throwing away memory other frameworks keep warm, and block
the host until the GPU is idle (19 ms behind a 20 ms kernel). The wrapper records the call
and skips it; on torch's native allocator it calls through.

Caches in front of the pool (CuPy's MemoryPool in ``cached`` mode) keep idle blocks that
another framework may need. Besides the out-of-memory callback (which asks them on a
failure), a check that finds the device short of free memory (below ``idle_release_below``
of its total, default 10%) asks every cache for its idle blocks (:func:`release_idle`,
event ``idle-released``) before anyone fails. That returns blocks through stream-ordered
frees and does not wait for the GPU.

Checks run on a daemon thread every ``interval`` seconds (``None``: only when ``check()``
is called). They read two pool attributes and the device's free memory, a few
microseconds, and never block.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from zerocopy._cuda import UINT64_MAX
from zerocopy.memory.hooks import HOOKS, hook, loaded

__all__ = ["GovernedPool", "PoolEvent", "PoolGovernor", "release_idle"]


class GovernedPool(Protocol):
    release_threshold: int

    def reserved(self) -> int: ...

    def used(self) -> int: ...

    def trim(self, keep: int = 0) -> None: ...


@dataclass(frozen=True)
class PoolEvent:
    time: float
    kind: str        # threshold-reset | trim | trim-by-zerocopy | empty-cache-skipped | idle-released
    detail: str
    before: int = 0
    after: int = 0


class PoolGovernor:
    def __init__(self, pool: GovernedPool, *, release_threshold: int = UINT64_MAX,
                 interval: float | None = 0.05, protect_caches: bool = True,
                 max_events: int = 1000, idle_release_below: float = 0.1,
                 device_memory: Callable[[], tuple[int, int]] | None = None) -> None:
        self.pool = pool
        self.idle_release_below = idle_release_below
        # (free, total) bytes of the device; None: no pressure check (a host pool)
        self.device_memory = device_memory or getattr(pool, "device_memory", None)
        self.release_threshold = release_threshold
        self.interval = interval
        self.protect_caches = protect_caches
        self.events: collections.deque[PoolEvent] = collections.deque(maxlen=max_events)
        self.polls: list[Callable[[], bool]] = []  # run each check until they return True
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = (0, 0)
        self._own_trim = False
        self._patched: list[tuple[Any, str, Any]] = []
        self.checks = 0

    # --- life cycle ---
    def start(self) -> PoolGovernor:
        with self._lock:
            self.pool.release_threshold = self.release_threshold
            self._last = (self.pool.reserved(), self.pool.used())
        if self.interval:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="zerocopy-pool-governor",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()

    def _watch(self) -> None:
        bind = getattr(self.pool, "bind_thread", None)
        if bind is not None:
            bind()
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # a failing check must not kill the watcher silently
                self._record("check-failed", repr(exc))

    # --- the work ---
    def check(self) -> list[PoolEvent]:
        """Re-assert the threshold, detect trims, run pending polls; returns new events."""
        with self._lock:
            self.checks += 1
            start = len(self.events)
            self._reassert_threshold()
            self._detect_trim()
            self._run_polls()
            self._release_idle_under_pressure()
            if self.protect_caches:
                self._protect_torch()
            return list(self.events)[start:] if len(self.events) >= start else []

    def _reassert_threshold(self) -> None:
        current = self.pool.release_threshold
        if current != self.release_threshold:
            self._record("threshold-reset", f"release threshold was changed to {current} "
                         f"(by {_suspect()}); set back to {self.release_threshold}",
                         current, self.release_threshold)
            self.pool.release_threshold = self.release_threshold

    def _detect_trim(self) -> None:
        reserved, used = self.pool.reserved(), self.pool.used()
        last_reserved, last_used = self._last
        cached_before, cached_now = last_reserved - last_used, reserved - used
        if reserved < last_reserved and cached_now < cached_before:
            kind = "trim-by-zerocopy" if self._own_trim else "trim"
            self._record(kind, f"the shared pool released {last_reserved - reserved} bytes "
                         f"of cached memory (by {'zerocopy' if self._own_trim else _suspect()})",
                         last_reserved, reserved)
        self._own_trim = False
        self._last = (reserved, used)

    def _release_idle_under_pressure(self) -> None:
        if self.device_memory is None or self.idle_release_below <= 0:
            return
        free, total = self.device_memory()
        if free >= total * self.idle_release_below:
            return
        asked = release_idle(asking=None)
        if asked:
            self._record("idle-released", f"the device had {free} of {total} bytes free: idle "
                         f"cached blocks ({asked} bytes) were given back to the pool", free, asked)

    def _run_polls(self) -> None:
        self.polls[:] = [poll for poll in self.polls if not poll()]

    def trim(self, keep: int = 0) -> None:
        """Trim the shared pool on purpose (recorded as zerocopy's own). Does not wait for
        the GPU: only memory whose frees have completed is released."""
        with self._lock:
            self._own_trim = True
            self.pool.trim(keep)
            self._detect_trim()

    def _record(self, kind: str, detail: str, before: int = 0, after: int = 0) -> None:
        self.events.append(PoolEvent(time.time(), kind, detail, before, after))

    # --- keeping torch.cuda.empty_cache off the shared pool ---
    def _protect_torch(self) -> None:
        torch = sys.modules.get("torch")
        if torch is None or any(name == "empty_cache" for _, name, _ in self._patched):
            return
        cuda = getattr(torch, "cuda", None)
        if cuda is None or not hasattr(cuda, "empty_cache"):
            return
        original = cuda.empty_cache

        def empty_cache() -> None:
            if _torch_backend(torch) == "cudaMallocAsync":
                self._record("empty-cache-skipped", "torch.cuda.empty_cache() would trim the "
                             "shared pool and block until the GPU is idle; skipped by zerocopy")
                return
            original()

        empty_cache.__wrapped__ = original  # type: ignore[attr-defined]
        for owner in (cuda, getattr(cuda, "memory", None)):
            if owner is not None and getattr(owner, "empty_cache", None) is original:
                self._patched.append((owner, "empty_cache", original))
                owner.empty_cache = empty_cache


def _torch_backend(torch: Any) -> str:
    try:
        return str(torch.cuda.get_allocator_backend())
    except (AttributeError, RuntimeError):
        return "none"


def _suspect() -> str:
    """Best guess of who changed the pool: the frameworks with a pool hook that are loaded
    (their own modules, or the package their hook drives: RMM for cuDF)."""
    running = [name for name in HOOKS if loaded(name)]
    return ", ".join(running) or "unknown"


def release_idle(asking: str | None) -> int:
    """Ask every loaded framework's cache but ``asking``'s for its idle blocks. Only hooks
    with ``idle_bytes()`` take part: caches whose release returns blocks with stream-ordered
    frees (CuPy's MemoryPool in cached mode), never a call that waits for the GPU."""
    asked = 0
    for name in HOOKS:
        if name == asking or not loaded(name):
            continue
        module = hook(name)
        idle = getattr(module, "idle_bytes", None)
        if idle is None:
            continue
        try:
            held = int(idle())
            if held > 0 and module.release_cache():
                asked += held
        except Exception:  # a cache that cannot answer keeps its blocks; the pool grows
            continue
    return asked
