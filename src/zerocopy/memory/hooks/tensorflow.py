"""TensorFlow: ``TF_GPU_ALLOCATOR=cuda_malloc_async`` before its runtime starts.

TF's async allocator uses the device's default pool (the shared one). A per-framework limit
is TF's own logical-device ``memory_limit``, which must also be set before the runtime
starts. Proven on the GPU test machine (H200, TensorFlow 2.21 with its CUDA 12 libraries,
brought in parts): TF allocates from the device's default pool next to torch and JAX
(tests/exchange/test_gpu_tensorflow.py counts the pool's bytes). The per-framework limit
is not exercised there: it is marked so in the capability table.
"""

from __future__ import annotations

import os
import sys

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
]

NAME = "tensorflow"
PACKAGE = "tensorflow"  # installed means: this top-level package is importable
INSTALL_HINT = "pip install tensorflow[and-cuda]"
MODES = ("cuda_malloc_async",)
ENV = {"TF_GPU_ALLOCATOR": "cuda_malloc_async"}


def capabilities(mode: str | None = None) -> Capabilities:
    return Capabilities(
        framework=NAME, mode="cuda_malloc_async",
        route="TF_GPU_ALLOCATOR=cuda_malloc_async (default pool)",
        per_allocation=False,
        limits="TF logical device memory_limit -> TF's ResourceExhaustedError (untested on GPU)",
        accounting="tf.config.experimental.get_memory_info, plus the pool",
        before_runtime=True,
        undoable="only before TF's runtime starts (the environment is restored)",
        notes="pool sharing proven on the GPU test machine (TF 2.21, CUDA 12 libraries); "
              "the memory_limit path is not exercised there")


def started() -> bool:
    context = sys.modules.get("tensorflow.python.eager.context")
    if context is None:
        return False
    ctx = context.context_safe()
    return ctx is not None and getattr(ctx, "_context_handle", None) is not None


def check(mode: str | None = None) -> None:
    if mode not in (None, *MODES):
        raise unknown_mode(NAME, mode, MODES)
    if started() and os.environ.get("TF_GPU_ALLOCATOR") != ENV["TF_GPU_ALLOCATOR"]:
        raise started_error(NAME, "TF_GPU_ALLOCATOR=cuda_malloc_async",
                            "call zerocopy.memory.share() before TensorFlow's first op, or "
                            "export TF_GPU_ALLOCATOR=cuda_malloc_async before starting Python")


def install(resource: MemoryResource, *, limit: int | None = None,
            mode: str | None = None) -> Installation:
    check(mode)
    undo = set_env(ENV) if not started() else (lambda: None)
    details: dict[str, object] = dict(ENV)
    if limit is not None:
        details["poll"] = lambda: _apply_limit(limit)
        _apply_limit(limit)
    return Installation(NAME, capabilities(mode), details, undo)


def _apply_limit(limit: int) -> bool:
    tf = sys.modules.get("tensorflow")
    if tf is None or started():
        return tf is not None  # too late once started: TF's own rule
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.set_logical_device_configuration(
            gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=limit // (1 << 20))])
    return True


def framework_stats() -> dict[str, int] | None:
    if not started():
        return None
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    info = tf.config.experimental.get_memory_info("GPU:0")
    return {"current_bytes": int(info["current"]), "peak_bytes": int(info["peak"])}


def release_cache() -> bool:
    return False  # TF offers no call that returns cached device memory


def oom_type() -> type[BaseException] | None:
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError
