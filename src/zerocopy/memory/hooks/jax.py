"""JAX: configured only by environment variables read when its GPU backend starts.

``XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async`` makes XLA allocate from the device's default
pool (the shared one); ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` stops it from reserving 75%
of the card. No per-allocation hook exists, so JAX gets pool-level accounting (its own
``memory_stats``) and no zerocopy limit. Two traps measured on the H100 are handled:
JAX started last sets the pool's release threshold to 0 (governance re-asserts it), and a
mistyped allocator name makes JAX fall back to the CPU silently (``verify()`` checks).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from zerocopy.errors import FrameworkStartedError, InvalidArgumentError, message
from zerocopy.memory.hooks import Capabilities, Installation
from zerocopy.memory.hooks._common import set_env, started_error, unknown_mode
from zerocopy.memory.resource import MemoryResource

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
    "oom_type",
    "release_cache",
    "verify",
]

NAME = "jax"
PACKAGE = "jax"  # installed means: this top-level package is importable
INSTALL_HINT = 'pip install "jax[cuda13]"'
MODES = ("cuda_async",)
ENV = {"XLA_PYTHON_CLIENT_ALLOCATOR": "cuda_async", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def capabilities(mode: str | None = None) -> Capabilities:
    return Capabilities(
        framework=NAME, mode="cuda_async",
        route="XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async, PREALLOCATE=false (default pool)",
        per_allocation=False,
        limits="none (JAX raises its own RESOURCE_EXHAUSTED when the pool is full)",
        accounting="jax device memory_stats (bytes_in_use, peak), plus the pool",
        before_runtime=True,
        undoable="only before JAX's backend starts (the environment is restored)",
        notes="governance re-asserts the release threshold JAX resets to 0")


def started() -> bool:
    """Has JAX created its backends (after which the environment is no longer read)?"""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is None:
        return False
    check = getattr(bridge, "backends_are_initialized", None)
    return bool(check()) if check else bool(getattr(bridge, "_backends", {}))


def check(mode: str | None = None) -> None:
    if mode not in (None, *MODES):
        raise unknown_mode(NAME, mode, MODES)
    if started() and not _configured():
        raise started_error(NAME, "XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async",
                            "call zerocopy.memory.share() before JAX's first operation, or "
                            "export XLA_PYTHON_CLIENT_ALLOCATOR=cuda_async "
                            "XLA_PYTHON_CLIENT_PREALLOCATE=false before starting Python")


def _configured() -> bool:
    return all(os.environ.get(key) == value for key, value in ENV.items())


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    check(mode)
    if limit is not None:
        raise InvalidArgumentError(message("JAX has no per-allocation hook, so zerocopy cannot limit it",
                                 got=f"limit={limit}",
                                 hint="leave JAX out of limits=; the global pool is still shared"))
    undo = set_env(ENV) if not started() else (lambda: None)
    return Installation(NAME, capabilities(mode), dict(ENV), undo)


def verify() -> None:
    """Raise if JAX is running but not on the GPU (a bad allocator name does that silently)."""
    if not started():
        return
    import jax

    if jax.default_backend() != "gpu":
        raise FrameworkStartedError(message(
            "JAX started without a GPU backend", expected="gpu", got=jax.default_backend(),
            hint="check XLA_PYTHON_CLIENT_ALLOCATOR (cuda_async) and the jax CUDA plugin"))


def framework_stats() -> dict[str, int] | None:
    if not started():
        return None
    import jax

    device: Any = jax.devices()[0]
    stats = device.memory_stats() or {}
    return {"current_bytes": int(stats.get("bytes_in_use", 0)),
            "peak_bytes": int(stats.get("peak_bytes_in_use", 0)),
            "allocations": int(stats.get("num_allocs", 0))}


def release_cache() -> bool:
    return False  # JAX has no public call that returns cached device memory


def oom_type() -> type[BaseException] | None:
    return None  # JAX's XlaRuntimeError is not a memory type; ours is raised instead
