"""On the GPU test machine (scripts/gpu-check): one GPU worker with the shared pool; CUDA
tensors of torch, CuPy and JAX sent from the client to the worker and back, values exact;
the report shows the worker's pool."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

pytest.importorskip("distributed", reason="zerocopy.dask needs dask and distributed (pip install zerocopy[dask])")

from distributed import Client, LocalCluster

import zerocopy
import zerocopy.dask as zd
from zerocopy.testing import make_device_source

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=0) as cluster, Client(cluster) as client:
        client.installed_at_setup = zd.setup(client)  # type: ignore[attr-defined]
        yield client


def test_the_gpu_worker_has_the_environment_and_the_shared_pool(client: Any) -> None:
    (entry,) = client.installed_at_setup.values()
    assert entry["environment"] == zd.environment()
    assert entry["pool"]["installed"] is True, entry["pool"]


def _describe(x: Any) -> tuple[str, tuple[str, int], bytes]:
    info = zerocopy.inspect(x)
    return info.framework, info.device, zerocopy.to(x, "numpy").tobytes()


@pytest.mark.parametrize("framework", ["torch", "cupy", "jax"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64"])
def test_cuda_tensors_go_to_the_worker_and_back_exact(client: Any, framework: str, dtype: str) -> None:
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    if framework == "cupy" and dtype == "bfloat16":
        pytest.skip("CuPy has no bfloat16")
    if framework == "jax" and dtype == "int64":
        pytest.skip("JAX without x64 refuses 64-bit data (by design)")
    from zerocopy._dtypes import numpy_dtype

    itemsize = numpy_dtype(dtype).itemsize
    src = np.arange((1 << 20) * itemsize, dtype=np.uint32).astype(np.uint8).view(numpy_dtype(dtype))
    x, _ = make_device_source(framework, src)
    sent = client.scatter(x)
    on_worker = client.submit(_describe, sent, pure=False).result()
    assert on_worker == (framework, ("cuda", 0), src.tobytes())
    back = sent.result()
    assert zerocopy.inspect(back).device[0] == "cuda"
    assert zerocopy.to(back, "numpy").tobytes() == src.tobytes()


def test_the_report_shows_the_workers_pool(client: Any) -> None:
    rep = zd.report(client)
    (row,) = rep.rows()
    assert row["reserved"] is not None and row["reserved_high"] > 0, rep.format()


def test_the_gpu_bench_sends_cuda_tensors_and_says_what_dask_cannot(tmp_path: Any) -> None:
    """``zerocopy bench dask --gpu`` in a fresh process (Dask's own serializers first, then
    ours): client -> GPU worker, values exact with ours; Dask's own torch serializer cannot
    send a CUDA tensor, which is a row, not a crash."""
    import json
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "zerocopy", "bench", "dask", "--gpu", "--mb", "8",
                           "--repeat", "1", "--json", str(out)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {(r["serializer"], r["framework"]): r for r in json.loads(out.read_text())["rows"]}
    if importlib.util.find_spec("torch"):
        assert rows[("dask default", "torch")]["error"].startswith("cannot send: TypeError")
        assert rows[("zerocopy", "torch")]["exact"] is True
        assert rows[("zerocopy", "torch")]["device_peak"] >= 8 << 20   # the worker's tensor
    if importlib.util.find_spec("cupy"):
        assert rows[("dask default", "cupy")]["exact"] is True
        assert rows[("zerocopy", "cupy")]["exact"] is True
