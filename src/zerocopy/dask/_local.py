"""``local_cluster(n, gpu=...)``: a Dask cluster of worker processes on this machine.

CPU: distributed's ``LocalCluster`` of ``n`` worker processes (one thread each).
GPU: dask-cuda's ``LocalCUDACluster`` where ``dask_cuda`` is importable (one worker per GPU,
as RAPIDS users run it); otherwise a cluster of one nanny per GPU whose worker process sees
only its GPU (``CUDA_VISIBLE_DEVICES``), which is what ``LocalCUDACluster`` does at heart.
The client's process keeps seeing every GPU.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from zerocopy.dask._plugins import gpu_count
from zerocopy.errors import DeviceError, message

__all__ = ["LocalClusterInfo", "local_cluster", "visible_gpus"]


@dataclass
class LocalClusterInfo:
    """What ``local_cluster`` started, in words the demo's and the bench's reports print."""

    kind: str                   # "LocalCluster", "LocalCUDACluster" or "one nanny per GPU"
    workers: int
    gpus: list[str] = field(default_factory=list)   # the GPU each worker sees (GPU clusters)
    note: str = ""              # e.g. fewer workers than asked: one per GPU

    def describe(self) -> str:
        gpus = f" on GPU {', '.join(self.gpus)}" if self.gpus else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.kind}, {self.workers} worker process(es){gpus}{note}"


def visible_gpus() -> list[str]:
    """The GPUs this process may hand to workers: ``CUDA_VISIBLE_DEVICES`` where set, else
    every device the CUDA runtime counts (none without a driver)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = gpu_count()
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()][:count]
    return [str(i) for i in range(count)]


def local_cluster(n_workers: int | None = None, *, gpu: bool = False,
                  env: dict[str, str] | None = None) -> tuple[Any, LocalClusterInfo]:
    """Start a cluster of worker processes here; ``(cluster, info)``. ``gpu=False``: ``n_workers``
    (default 2) CPU workers. ``gpu=True``: one worker per GPU (at most ``n_workers``);
    raises :class:`~zerocopy.errors.DeviceError` when no GPU is visible. ``env`` is added to
    each worker's environment (where the cluster class takes one)."""
    if not gpu:
        from distributed import LocalCluster

        n = n_workers or 2
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit=0,
                               env=dict(env or {}) or None)
        return cluster, LocalClusterInfo("LocalCluster", n)
    gpus = visible_gpus()
    if not gpus:
        raise DeviceError(message("a GPU cluster needs a CUDA GPU", got="no CUDA device visible",
                                  hint="run on a GPU machine, or use CPU workers"))
    note = ""
    if n_workers is not None and n_workers > len(gpus):
        note = f"asked for {n_workers}: one worker per GPU"
    chosen = gpus[:n_workers] if n_workers else gpus
    if importlib.util.find_spec("dask_cuda") is not None:
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(chosen), threads_per_worker=1,
                                   dashboard_address=":0", memory_limit=0)
        return cluster, LocalClusterInfo("LocalCUDACluster", len(chosen), chosen, note)
    return _one_nanny_per_gpu(chosen, env or {}), LocalClusterInfo(
        "LocalCluster, one worker per GPU (no dask_cuda)", len(chosen), chosen, note)


def _one_nanny_per_gpu(gpus: list[str], env: dict[str, str]) -> Any:
    """What LocalCUDACluster starts, without dask_cuda: a scheduler in this process and one
    nanny per GPU whose worker sees that GPU alone."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {f"gpu-{gpu}": {"cls": Nanny, "options": {
        "host": "127.0.0.1", "nthreads": 1, "memory_limit": 0, "silence_logs": logging.WARNING,
        "env": {**env, "CUDA_VISIBLE_DEVICES": gpu}}} for gpu in gpus}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, name="zerocopy-gpu",
                       silence_logs=logging.WARNING)
