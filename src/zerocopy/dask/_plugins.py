"""The two plugins ``setup`` registers, and what each worker installs.

``EnvironmentPlugin`` (a NannyPlugin) puts the allocator settings that must precede the
frameworks' runtimes (``zerocopy.memory.share``'s environment: PyTorch's allocator backend,
XLA's and TensorFlow's allocators) into the nanny's environment for the worker process and
restarts the worker, so a worker that starts or joins later has them from its first line.
It does nothing (and restarts nothing) on a nanny that sees no CUDA device unless asked.

``WorkerPlugin`` runs in each worker: registers zerocopy's serializers and, on a worker with
a CUDA device, routes its frameworks to one shared pool (``zerocopy.memory.share`` with the
same arguments); a CPU-only worker skips the pool and says so.
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import NannyPlugin, WorkerPlugin  # noqa: TID253 (its subclasses)

from zerocopy import _cuda
from zerocopy.dask._serialize import register, registered
from zerocopy.errors import ZeroCopyError
from zerocopy.memory.hooks import HOOKS, hook, loaded
from zerocopy.memory.share import share

__all__ = ["ENV_PLUGIN", "WORKER_PLUGIN", "EnvironmentPlugin", "ZeroCopyWorkerPlugin",
           "environment", "gpu_count", "installed_here"]

ENV_PLUGIN = "zerocopy-environment"
WORKER_PLUGIN = "zerocopy"

# What setup() did in this worker process (read back by installed_here()).
_STATE: dict[str, Any] = {}


def environment(frameworks: list[str] | None = None,
                modes: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ``zerocopy.memory.share(frameworks, modes=modes)`` sets before the
    frameworks start (default: every framework zerocopy can route, installed or not): each
    hook's ``ENV``, which is its default mode's (the first of its ``MODES``); another mode
    is set up by the hook's ``install`` instead."""
    modes = modes or {}
    env: dict[str, str] = {}
    for name in frameworks if frameworks is not None else list(HOOKS):
        module = hook(name)
        if (modes.get(name) or module.MODES[0]) == module.MODES[0]:
            env.update(getattr(module, "ENV", {}))
    return env


def _merged(env: dict[str, str], already: dict[str, str]) -> dict[str, str]:
    """``env`` where a hook with ``merge_env`` joins its value with one already set
    (``already``, else this process's environment), such as torch's other allocator options."""
    merged = dict(env)
    for name in HOOKS:
        module = hook(name)
        if not hasattr(module, "merge_env"):
            continue
        for key in getattr(module, "ENV", {}):
            if key in merged:
                merged[key] = module.merge_env(key, already.get(key) or os.environ.get(key))
    return merged


def gpu_count() -> int:
    """CUDA devices this process sees (0 where no CUDA runtime or driver is found). Imports
    no framework; creates no context."""
    try:
        return _cuda.device_count()
    except Exception:  # no cuda.bindings / CuPy, no driver, no device: a CPU worker
        return 0


class EnvironmentPlugin(NannyPlugin):
    """Sets ``env`` for the worker processes of every nanny (now and joining later), then
    restarts the worker so the frameworks read it at start. ``force=False`` leaves a nanny
    that sees no CUDA device untouched (no restart)."""

    name = ENV_PLUGIN
    idempotent = False

    def __init__(self, env: dict[str, str], *, force: bool = False) -> None:
        self.env = dict(env)
        self.force = force
        self.restart = True

    def setup(self, nanny: Any) -> None:
        if not self.force and gpu_count() == 0:
            self.restart = False  # read by the nanny after setup: nothing changed, no restart
            return
        env = _merged(self.env, nanny.env)
        # nanny.env is applied in the worker process before it runs anything of ours or the
        # user's, which is early enough for the allocators. Not pre_spawn_env: Dask writes
        # that into the nanny's own process, and a LocalCluster's nannies live in the
        # client's process, whose environment must stay the user's.
        nanny.env.update(env)


class ZeroCopyWorkerPlugin(WorkerPlugin):
    """Serializers and (on a GPU worker) the shared pool, in every worker."""

    name = WORKER_PLUGIN
    idempotent = False

    def __init__(self, *, frameworks: list[str] | None, limit: int | None,
                 limits: dict[str, int] | None, modes: dict[str, str] | None,
                 serializers: bool, env_keys: list[str]) -> None:
        self.frameworks, self.limit, self.limits, self.modes = frameworks, limit, limits, modes
        self.serializers, self.env_keys = serializers, env_keys

    def setup(self, worker: Any) -> None:
        _STATE.clear()
        _STATE["environment"] = {key: os.environ.get(key) for key in self.env_keys}
        _STATE["serializers"] = register() if self.serializers else {}
        _STATE["pool"] = _share(self.frameworks, self.limit, self.limits, self.modes)

    def teardown(self, worker: Any) -> None:
        shared = _STATE.pop("shared", None)
        if shared is not None:
            shared.undo()


def _share(frameworks: list[str] | None, limit: int | None, limits: dict[str, int] | None,
           modes: dict[str, str] | None) -> dict[str, Any]:
    devices = gpu_count()
    if devices == 0:
        return {"installed": False, "reason": "no CUDA device visible to this worker: "
                "the shared pool is for GPU workers (serializers are registered anyway)"}

    try:
        shared = share(frameworks, limit=limit, limits=limits, modes=modes)
    except (ZeroCopyError, RuntimeError, ValueError, KeyError) as exc:
        return {"installed": False, "reason": f"{type(exc).__name__}: {exc}"}
    _STATE["shared"] = shared
    return {"installed": True, "devices": devices, "frameworks": sorted(shared.installations),
            "modes": {name: inst.capabilities.mode for name, inst in shared.installations.items()},
            "limit": limit, "limits": dict(limits or {})}


def installed_here() -> dict[str, Any]:
    """What ``setup`` installed in this process (run on each worker by ``setup``)."""
    # The frameworks with a pool hook: their allocator settings had to come before them.
    started = [name for name in HOOKS if loaded(name)]
    return {"pid": os.getpid(),
            "environment": dict(_STATE.get("environment", {})),
            "serializers": registered(),
            "pool": dict(_STATE.get("pool", {"installed": False, "reason": "setup did not run here"})),
            "frameworks_imported": started}
