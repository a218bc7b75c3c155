"""zerocopy.dask on a LocalCluster of two worker processes (one thread each, TCP): setup on
every worker and on one that joins later, every serializer between workers bit for bit,
a 256 MiB tensor between workers without a host copy beyond the transport's, partitions to
tensors where they live (pointer and write proven on the worker), stages and the report."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest

pytest.importorskip("distributed", reason="zerocopy.dask needs dask and distributed (pip install zerocopy[dask])")

import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster, wait

import zerocopy
import zerocopy.dask as zd
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.bench.dask import transfer
from zerocopy.dask._plugins import gpu_count

FRAMEWORKS = [name for name in ("torch", "jax", "tensorflow") if importlib.util.find_spec(name)]
MiB = 1 << 20


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=0) as cluster, Client(cluster) as client:
        before = dict(os.environ)
        client.installed_at_setup = zd.setup(client, environment_on="all")  # type: ignore[attr-defined]
        client.environ_changed = {k for k in set(before) | set(os.environ)  # type: ignore[attr-defined]
                                  if before.get(k) != os.environ.get(k)}
        client.cluster_handle = cluster  # type: ignore[attr-defined]
        yield client


def test_setup_leaves_the_clients_own_environment_alone(client: Any) -> None:
    # A LocalCluster's nannies live in the client's process: the allocator settings are for
    # the workers only (they leaked into the client, and from there into later subprocesses).
    assert not client.environ_changed & set(zd.environment())


def _workers(client: Any) -> list[str]:
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _check_installed(entry: dict[str, Any]) -> None:
    assert entry["environment"] == zd.environment()          # set before any framework import
    assert entry["serializers"]["torch"] == ["dask", "cuda"]
    assert entry["serializers"]["tensorflow"] == ["dask"]
    if gpu_count() == 0:                                      # this machine's workers see no GPU
        assert entry["pool"]["installed"] is False
        assert "no CUDA device" in entry["pool"]["reason"]    # a CPU worker skips the pool, says so


def test_setup_reaches_both_workers(client: Any) -> None:
    installed = client.installed_at_setup
    assert sorted(installed) == _workers(client) and len(installed) == 2
    for entry in installed.values():
        _check_installed(entry)
        assert entry["frameworks_imported"] == []


# ---------------------------------------------------------------- serializers on the wire
def _bits(dtype: str, seed: int) -> np.ndarray:
    size = numpy_dtype(dtype).itemsize
    raw = np.random.default_rng(seed).integers(0, 256, 60 * size, dtype=np.uint8)
    if dtype == "bool":
        raw %= 2
    return raw.view(numpy_dtype(dtype)).reshape(6, 10)


def _x64(on: bool) -> None:
    import jax

    jax.config.update("jax_enable_x64", on)


def _make_all(framework: str) -> dict[str, Any]:
    return {dtype: zerocopy.to(_bits(dtype, i), framework) for i, dtype in enumerate(SHARED_DTYPES)}


def _describe(tensors: dict[str, Any]) -> dict[str, tuple[str, str | None, bytes]]:
    return {dtype: (type(x).__name__, zerocopy.inspect(x).dtype,
                    zerocopy.to(x, "numpy").tobytes()) for dtype, x in tensors.items()}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_serializer_round_trips_every_dtype_between_workers(client: Any, framework: str) -> None:
    a, b = _workers(client)[:2]
    if framework == "jax":
        client.run(_x64, True)
    try:
        made = client.submit(_make_all, framework, workers=[a], pure=False)
        kinds = client.submit(lambda d: {k: type(v).__name__ for k, v in d.items()}, made,
                              workers=[a], pure=False).result()
        got = client.submit(_describe, made, workers=[b], allow_other_workers=False,
                            pure=False).result()
    finally:
        if framework == "jax":
            client.run(_x64, False)
    for i, dtype in enumerate(SHARED_DTYPES):
        name, dt, raw = got[dtype]
        assert name == kinds[dtype] and dt == dtype, (framework, dtype, name, dt)
        assert raw == _bits(dtype, i).tobytes(), (framework, dtype)


@pytest.mark.parametrize(("framework", "dtype"), [("torch", "bfloat16"), ("torch", "float32")])
def test_a_256_mib_tensor_between_workers_makes_no_extra_host_copy(client: Any, framework: str,
                                                                   dtype: str) -> None:
    """Peak resident memory of both workers (VmHWM after a reset) during the transfer: the
    sender adds nothing, the receiver the one buffer the transport reads into, which is the
    tensor. (Dask's default cannot send a bfloat16 tensor at all.)"""
    pytest.importorskip(framework)
    a, b = _workers(client)[:2]
    transfer(client, framework, dtype, MiB, sender=a, receiver=b)  # warm-up: imports not counted
    row = transfer(client, framework, dtype, 256 * MiB, sender=a, receiver=b)
    assert row["error"] is None and row["exact"]
    assert row["sender_peak"] < 16 * MiB, row                 # the frame is the tensor's memory
    assert row["receiver_peak"] < 256 * MiB + 32 * MiB, row   # the transport's buffer is the tensor


# ---------------------------------------------------------------- partitions to tensors
def _proof(part: pd.DataFrame, tensor: Any) -> dict[str, Any]:
    first = zerocopy.inspect(part[part.columns[0]]).ptr
    tensor[0, 1] = -1.0                                      # write through the tensor ...
    return {"same_pointer": tensor.data_ptr() == first, "shape": tuple(tensor.shape),
            "write_seen": float(part.iloc[0, 1]) == -1.0}    # ... seen by the partition


def test_to_over_a_dataframe_gives_zero_copy_tensors_per_partition(client: Any) -> None:
    pytest.importorskip("torch")
    pdf = pd.DataFrame({c: np.arange(4000, dtype=np.float32) + i for i, c in enumerate("abcd")})
    parts = zd.partitions(dd.from_pandas(pdf, npartitions=4), client=client)
    tensors = zd.to(parts, "torch", copy=False, client=client)
    assert len(tensors) == 4
    wait(tensors)   # to() hands back futures: who holds a result is known once it exists
    holders = client.who_has(parts + tensors)
    for part, tensor in zip(parts, tensors, strict=True):
        where = sorted(holders[part.key])
        assert sorted(holders[tensor.key]) == where            # converted where it lives
        proof = client.submit(_proof, part, tensor, workers=where, allow_other_workers=False,
                              pure=False).result()
        assert proof == {"same_pointer": True, "shape": (1000, 4), "write_seen": True}


def _rows_and_pointers(tensors: Any) -> list[tuple[int, int]]:
    return [(int(t.shape[0]), zerocopy.inspect(t).ptr) for t in tensors]


def test_training_iterates_each_workers_own_partitions(client: Any) -> None:
    pytest.importorskip("torch")
    import dask.array as da

    x = da.from_array(np.arange(64 * 8, dtype=np.float32).reshape(64, 8), chunks=(8, 8))
    held = zd.by_worker(x, client=client)
    assert sum(len(parts) for parts in held.values()) == 8
    seen = zd.train_on_workers(_rows_and_pointers, x, "torch", client=client,
                               options={"copy": False})
    assert set(seen) == set(held)                             # one run per worker holding data
    for worker, per in seen.items():                          # each over its own partitions only
        assert sum(rows for rows, _ in per) == 8 * len(held[worker])
    assert sum(rows for per in seen.values() for rows, _ in per) == 64


def _stage(part: np.ndarray, *, scale: float) -> tuple[float, list[dict[str, Any]]]:
    return float(part.sum() * scale), [{"stage": "sum", "copied_bytes": 0, "nbytes": part.nbytes}]


def test_map_partitions_stage_returns_results_and_ledgers_in_order(client: Any) -> None:
    parts = [np.full(100, i, dtype=np.float64) for i in range(5)]
    outputs = zd.map_partitions_stage(client, _stage, parts, scale=2.0)
    assert [o.index for o in outputs] == list(range(5))
    assert [o.result for o in outputs] == [200.0 * i for i in range(5)]
    assert all(o.ledger == [{"stage": "sum", "copied_bytes": 0, "nbytes": 800}] for o in outputs)
    assert {o.worker for o in outputs} <= set(_workers(client))
    assert all(o.seconds >= 0 and "resource" in o.memory for o in outputs)


def test_report_gathers_every_workers_memory_report(client: Any) -> None:
    rep = zd.report(client)
    assert sorted(rep.workers) == _workers(client)
    if gpu_count() == 0:
        assert all(r["resource"] == "nothing shared" for r in rep.workers.values())
    text = rep.format()
    assert f"{len(rep.workers)} worker(s)" in text
    assert all(address[-24:] in text for address in rep.workers)


# ---------------------------------------------------------------- last: the cluster grows
def test_a_worker_added_later_gets_setup_too(client: Any) -> None:
    before = set(_workers(client))
    client.cluster_handle.scale(3)
    client.wait_for_workers(3, timeout=120)
    installed = zd.installed(client)
    (new,) = set(installed) - before
    _check_installed(installed[new])
    assert installed[new]["frameworks_imported"] == []


def test_something_else_than_a_client_is_a_typed_error() -> None:
    """Dask's own answers are an AttributeError here, and a bare ValueError ("No global
    client found") where no client runs."""
    with pytest.raises(zerocopy.InvalidArgumentError, match="needs a Dask client"):
        zd.report(object())
    with pytest.raises(zerocopy.InvalidArgumentError, match="needs a Dask client"):
        zd.setup(42)
