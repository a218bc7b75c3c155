"""``zerocopy bench dask``: one tensor between two Dask workers, zerocopy's serializers vs
Dask's own, time and peak memory, side by side in one run.

One LocalCluster of two worker processes (one thread each, TCP). For each case a tensor of
``--mb`` MiB is made on worker A, then a task on worker B takes it (the transfer A -> B is
what is timed, plus one tiny task). Each case runs first with Dask's default serializers,
then ``zerocopy.dask.setup`` registers ours on both workers and the same cases run again.
Peak memory is each worker's resident high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` before the transfer) minus its resident size before it: what the
transfer made the sender and the receiver hold at their peak, after a 1 MiB warm-up transfer
of the same case (framework imports are not counted). The receiver must hold the
tensor (``--mb``); anything above that on either side is a copy.

``--gpu``: the same for a CUDA tensor (CuPy, JAX, torch) made in the client and scattered to
one GPU worker (``zerocopy.dask.local_cluster(1, gpu=True)``: dask-cuda's LocalCUDACluster
where installed, else one worker process whose ``CUDA_VISIBLE_DEVICES`` is the GPU), over
TCP, so both serializers stage through host memory (the ``cuda`` family is UCX's). Before a
transfer the client serializes the tensor as its comm would: a serializer that cannot (Dask's
own for torch CUDA tensors, distributed issues 6111 and 8001) is reported as "cannot send"
with its error, and nothing is sent. Peaks: the client's and the worker's resident memory as
above, and the device's used memory (``cudaMemGetInfo``, sampled every millisecond, both
processes' caches emptied first) above what it was before.

Nothing here imports a framework or Dask at module level.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import sys
import threading
import time
from typing import Any

import numpy as np

import zerocopy
from zerocopy import _cuda
from zerocopy._dtypes import numpy_dtype
from zerocopy.bench._timing import machine
from zerocopy.errors import DeviceError, FrameworkNotInstalledError, message

__all__ = ["add_arguments", "main", "make_tensor", "peak_reset", "peak_since_reset", "scatter_to",
           "transfer"]

MiB = 1 << 20
# A tensor Dask cannot send leaves the receiving worker stuck on it, and the next transfer
# between the pair times out: cases Dask's default fails on run last, and the workers are
# restarted between the two serializers.
CPU_CASES = (("torch", "float32"), ("jax", "float32"), ("tensorflow", "float32"),
             ("torch", "bfloat16"))
GPU_CASES = (("cupy", "float32"), ("jax", "float32"), ("torch", "float32"))  # torch last: see above
# Two processes share the GPU: JAX must not take 75% of it in each.
GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mb", type=int, default=256, help="MiB per tensor (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="transfers per case (median kept)")
    parser.add_argument("--gpu", action="store_true", help="CUDA tensors instead (one GPU)")
    parser.add_argument("--json", metavar="PATH", help="write all rows to PATH")


# ---------------------------------------------------------------- run on the workers
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_reset() -> int:
    """Reset this process's resident high-water mark; its resident bytes now."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_kib("VmRSS") * 1024


def peak_since_reset() -> int:
    """This process's resident high-water mark (bytes) since ``peak_reset``."""
    return _status_kib("VmHWM") * 1024


def make_tensor(framework: str, dtype: str, nbytes: int, device: str = "cpu") -> Any:
    """A ``framework`` tensor of ``nbytes`` bytes with a known pattern of bits."""
    bits = zerocopy.empty(nbytes, np.uint8)
    bits[:] = np.arange(nbytes, dtype=np.uint32).astype(np.uint8) if nbytes <= 16 * MiB else 7
    bits[:: 4097] = np.arange(bits[:: 4097].size, dtype=np.uint32).astype(np.uint8)
    values = bits.view(numpy_dtype(dtype))
    return zerocopy.to(values, framework, copy=True, device=device if device != "cpu" else None)


def _fingerprint(x: Any) -> tuple[str | None, int, bytes]:
    """(dtype, nbytes, every 4099th element's bits): tells the received tensor is exact
    without a host copy of the whole of it (a device tensor is sampled on the device)."""
    info = zerocopy.inspect(x)
    sample = zerocopy.to(x[::4099], "numpy", copy=True)
    return (info.dtype, int(info.nbytes), sample.view("uint8").tobytes())


def _type_of(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__qualname__}"


def _received(x: Any) -> tuple[str, tuple[str | None, int, bytes]]:
    return _type_of(x), _fingerprint(x)


# ---------------------------------------------------------------- one transfer
def transfer(client: Any, framework: str, dtype: str, nbytes: int, *, sender: str,
             receiver: str, device: str = "cpu", timeout: float = 60) -> dict[str, Any]:
    """Make the tensor on ``sender``, move it to ``receiver`` in a task; time, both peaks
    above what each held before, and whether the received tensor is exact. A transfer the
    serializer cannot make (the receiver then waits for ever) is given up after ``timeout``
    seconds and reported as an error."""
    source = client.submit(make_tensor, framework, dtype, nbytes, device, workers=[sender],
                           allow_other_workers=False, pure=False)
    expected = client.submit(_received, source, workers=[sender], allow_other_workers=False,
                             pure=False).result()
    before = client.run(peak_reset, workers=[sender, receiver])
    start = time.perf_counter()
    got = client.submit(_received, source, workers=[receiver], allow_other_workers=False,
                        pure=False)
    try:
        received = got.result(timeout=timeout)
        error = None
    except Exception as exc:  # Dask's default cannot send some tensors at all
        received, error = None, _why(client, sender, source.key, exc)
    seconds = time.perf_counter() - start
    peaks = client.run(peak_since_reset, workers=[sender, receiver])
    client.cancel([got, source], force=True)
    del source, got
    client.run(gc.collect)
    return {"framework": framework, "dtype": dtype, "device": device, "nbytes": nbytes,
            "seconds": seconds if error is None else None, "error": error,
            "exact": received == expected if error is None else False,
            "sender_peak": peaks[sender] - before[sender],
            "receiver_peak": peaks[receiver] - before[receiver]}


def _serialize_error(key: Any, dask_worker: Any = None) -> str:
    """Run on the sender: why its serializers cannot send the value of ``key`` ("" if they can)."""
    from distributed.protocol import serialize

    try:
        serialize(dask_worker.data[key], on_error="raise")
    except Exception as exc:
        cause = exc.__cause__ or exc
        return f"{type(cause).__name__}: {str(cause).splitlines()[0][:90]}"
    return ""


def _why(client: Any, sender: str, key: Any, exc: BaseException) -> str:
    """The sender's serializer error if it has one, else what the wait ended with."""
    reason = client.run(_serialize_error, key, workers=[sender])[sender]
    return f"not sent: {reason or type(exc).__name__}"


def _case(client: Any, case: tuple[str, str], nbytes: int, repeat: int, workers: list[str],
          device: str) -> dict[str, Any]:
    # warm-up: both workers import the framework and run the same path once (importing torch
    # or TensorFlow alone raises a worker's resident peak by hundreds of MiB)
    transfer(client, *case, MiB, sender=workers[0], receiver=workers[1], device=device)
    runs = []
    for _ in range(repeat):
        runs.append(transfer(client, *case, nbytes, sender=workers[0], receiver=workers[1],
                             device=device))
        if runs[-1]["error"]:
            break  # a serializer that cannot send it will not on the next try either
    row = dict(runs[-1])
    ok = [r["seconds"] for r in runs if r["seconds"] is not None]
    row["seconds"] = statistics.median(ok) if ok else None
    row["sender_peak"] = max(r["sender_peak"] for r in runs)
    row["receiver_peak"] = max(r["receiver_peak"] for r in runs)
    row["exact"] = all(r["exact"] for r in runs)
    return row


# ---------------------------------------------------------------- client -> GPU worker
def release_device_caches() -> None:
    """Give the frameworks' cached device blocks back, so device used memory is what is live."""
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    if "cupy" in sys.modules:
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()


class DevicePeak:
    """The device's used memory (all processes), sampled every millisecond in a thread."""

    def __init__(self) -> None:
        self.before = self.peak = self._used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _used(self) -> int:
        free, total = _cuda.mem_info()
        return total - free

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._used())

    def stop(self) -> int:
        """Bytes above what the device held when sampling started."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._used()) - self.before


def cannot_send(x: Any) -> str:
    """Why this process's serializers (the families a TCP comm uses) cannot send ``x``
    ("" if they can)."""
    from distributed.protocol import serialize

    try:
        serialize(x, serializers=("dask", "pickle"), on_error="raise")
    except Exception as exc:
        cause = exc.__cause__ or exc
        return f"{type(cause).__name__}: {str(cause).splitlines()[0][:90]}"
    return ""


def scatter_to(client: Any, framework: str, dtype: str, nbytes: int, *, worker: str,
               timeout: float = 60) -> dict[str, Any]:
    """Make a CUDA tensor in this process (the client), scatter it to ``worker``; time,
    peaks (client, worker, device) and whether the worker holds it exactly. A tensor the
    client's serializers cannot send is not sent: the row says why."""
    row: dict[str, Any] = {"framework": framework, "dtype": dtype, "device": "cuda", "nbytes": nbytes,
                           "seconds": None, "exact": False, "sender_peak": None, "receiver_peak": None,
                           "device_peak": None, "error": None}
    try:
        x = make_tensor(framework, dtype, nbytes, "cuda")
    except Exception as exc:  # e.g. a CPU-only JAX next to a CUDA torch: that case is skipped
        return row | {"error": f"cannot make it here: {type(exc).__name__}: {str(exc)[:90]}"}
    reason = cannot_send(x)
    if reason:
        return row | {"error": f"cannot send: {reason}"}
    expected = _received(x)
    release_device_caches()
    client.run(release_device_caches, workers=[worker])
    before = {"client": peak_reset(), **client.run(peak_reset, workers=[worker])}
    device = DevicePeak()
    start = time.perf_counter()
    try:
        (sent,) = client.scatter([x], workers=[worker], hash=False, direct=True, timeout=timeout)
        received = client.submit(_received, sent, workers=[worker], allow_other_workers=False,
                                 pure=False).result(timeout=timeout)
    except Exception as exc:  # a serializer that fails on the far side
        device.stop()
        return row | {"error": f"not sent: {type(exc).__name__}: {str(exc)[:90]}"}
    seconds = time.perf_counter() - start
    row |= {"seconds": seconds, "exact": received == expected, "device_peak": device.stop(),
            "sender_peak": peak_since_reset() - before["client"],
            "receiver_peak": client.run(peak_since_reset, workers=[worker])[worker] - before[worker]}
    client.cancel([sent], force=True)
    del x, sent
    client.run(gc.collect)
    return row


def _gpu_case(client: Any, case: tuple[str, str], nbytes: int, repeat: int, worker: str) -> dict[str, Any]:
    scatter_to(client, *case, MiB, worker=worker)   # warm-up: imports and CUDA contexts not counted
    runs = []
    for _ in range(repeat):
        runs.append(scatter_to(client, *case, nbytes, worker=worker))
        if runs[-1]["error"]:
            break
    row = dict(runs[-1])
    ok = [r["seconds"] for r in runs if r["seconds"] is not None]
    row["seconds"] = statistics.median(ok) if ok else None
    for key in ("sender_peak", "receiver_peak", "device_peak"):
        values = [r[key] for r in runs if r[key] is not None]
        row[key] = max(values) if values else None
    row["exact"] = all(r["exact"] for r in runs)
    return row


def require_gpu() -> list[str]:
    """The visible GPUs; a :class:`~zerocopy.errors.DeviceError` when there is none."""
    from zerocopy.dask import visible_gpus  # noqa: PLC0415 (loads distributed: the dask extra)

    gpus = visible_gpus()
    if not gpus:
        raise DeviceError(message("zerocopy bench dask --gpu needs a CUDA GPU",
                                  got="no CUDA device visible to this process",
                                  hint="run it on a GPU machine; without --gpu it benchmarks host "
                                       "tensors between two CPU workers"))
    return gpus


def run_gpu(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from distributed import Client

    import zerocopy.dask  # noqa: PLC0415 (loads distributed: the dask extra)

    require_gpu()
    for key, value in GPU_ENV.items():
        os.environ.setdefault(key, value)   # before this process starts JAX
    cases, _ = _cases(args)
    if not cases:
        raise FrameworkNotInstalledError(message("no GPU framework to benchmark",
                                                 expected="cupy, jax or torch with CUDA",
                                                 hint="pip install cupy-cuda13x (or torch with CUDA)"))
    rows = []
    cluster, info = zerocopy.dask.local_cluster(1, gpu=True, env=GPU_ENV)
    with cluster, Client(cluster) as client:
        for serializer in ("dask default", "zerocopy"):
            if serializer == "zerocopy":   # ours in this client and, after a restart, the worker
                client.restart()
                zerocopy.dask.register()
                client.run(zerocopy.dask.register)
            (worker,) = sorted(client.scheduler_info()["workers"])
            for case in cases:
                rows.append({"serializer": serializer,
                             **_gpu_case(client, case, args.mb * MiB, args.repeat, worker)})
                print(_line(rows[-1]), flush=True)
    return rows, info.describe()


# ---------------------------------------------------------------- main
def _cases(args: argparse.Namespace) -> tuple[tuple[tuple[str, str], ...], str]:
    cases = GPU_CASES if args.gpu else CPU_CASES
    present = tuple(c for c in cases if importlib.util.find_spec(c[0]) is not None)
    return present, "cuda" if args.gpu else "cpu"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from distributed import Client

    import zerocopy.dask  # noqa: PLC0415 (loads distributed: the dask extra)

    cases, device = _cases(args)
    nbytes = args.mb * MiB
    rows = []
    cluster, _ = zerocopy.dask.local_cluster(2)
    with cluster, Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        for serializer in ("dask default", "zerocopy"):
            if serializer == "zerocopy":
                client.restart()
                zerocopy.dask.setup(client, environment_on="none")
                workers = sorted(client.scheduler_info()["workers"])
            for case in cases:
                rows.append({"serializer": serializer,
                             **_case(client, case, nbytes, args.repeat, workers, device)})
                print(_line(rows[-1]), flush=True)
    return rows


_HEAD = (f"{'case':<22} {'serializer':<13} {'seconds':>8} {'GB/s':>6} {'sender peak MiB':>16} "
         f"{'receiver peak MiB':>18} {'GPU peak MiB':>13}  exact / note")


def _line(row: dict[str, Any]) -> str:
    label = f"{row['framework']} {row['dtype']} {row['device']}"
    secs = row["seconds"]
    rate = f"{row['nbytes'] / secs / 1e9:6.2f}" if secs else "     -"
    note = "yes" if row["exact"] else (row["error"] or "NOT EXACT")
    seconds = f"{secs:8.3f}" if secs else "       -"
    return (f"{label:<22} {row['serializer']:<13} {seconds} {rate} "
            f"{_mib(row['sender_peak']):>16} {_mib(row['receiver_peak']):>18} "
            f"{_mib(row.get('device_peak')):>13}  {note}")


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MiB:8.1f}"


def main(args: argparse.Namespace) -> int:
    if args.gpu:
        require_gpu()   # one typed line, before any cluster starts
        print(f"zerocopy bench dask --gpu: {args.mb} MiB CUDA tensor, client -> GPU worker (TCP), "
              f"median of {args.repeat}; {machine()}")
        print(_HEAD, flush=True)
        rows, where = run_gpu(args)
        print(f"cluster: {where}")
    else:
        print(f"zerocopy bench dask: {args.mb} MiB tensor, worker A -> worker B (TCP, LocalCluster "
              f"of 2 processes), median of {args.repeat}; {machine()}")
        print(_HEAD, flush=True)
        rows = run(args)
    print("\nside by side:\n" + _HEAD)
    for row in rows:
        print(_line(row))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine(), "pid": os.getpid(), "rows": rows}, out, indent=1)
    ours = [r for r in rows if r["serializer"] == "zerocopy"
            and not (r["error"] or "").startswith("cannot make it here")]
    return 0 if all(r["exact"] for r in ours) else 1
