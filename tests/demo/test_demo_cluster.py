"""``zerocopy demo --cluster local:2`` and ``--scheduler ADDRESS``: the record stages run per
record partition on Dask workers and give the single-process run's features bit for bit;
the ledger sums the partitions' hand-offs; the report says where each way ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed", reason="the cluster mode needs zerocopy[dask]")

from tests.demo.runs import run_demo, run_demos, two_record_csv

from zerocopy.demo.cluster import local_workers, partitionable, split_records
from zerocopy.demo.compare import EXACT, TOLERANCE
from zerocopy.demo.pipeline import _load
from zerocopy.errors import InvalidArgumentError

MODES = ("naive", "zerocopy")
WORKER_STAGES = ("load", "filter", "peaks", "beats")
FEATURES = ["record", "peak", "rr", "amp"]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, quick) -> Iterator[dict[str, Any]]:
    """``--cluster local:2`` and ``--scheduler`` (a LocalCluster started here) side by side, on
    the quick run's records (``quick`` first: it made them, and it is the reference)."""
    from distributed import Client

    import zerocopy.dask as zd

    tmp = tmp_path_factory.mktemp("demo-cluster")
    cluster, _ = zd.local_cluster(2, env={"JAX_PLATFORMS": "cpu"})
    with cluster, Client(cluster) as client:
        local, scheduled = run_demos(
            ("--quick", "--device", "cpu", "--cluster", "local:2", "--json", str(tmp / "local.json"),
             "--out", str(tmp / "out"), "--cache", str(demo_cache)),
            ("--quick", "--device", "cpu", "--scheduler", cluster.scheduler_address, "--json",
             str(tmp / "scheduler.json"), "--cache", str(demo_cache)))
        for proc in (local, scheduled):
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield {"local": (json.loads((tmp / "local.json").read_text()), tmp / "out", local.stdout),
               "scheduler": json.loads((tmp / "scheduler.json").read_text()),
               "address": cluster.scheduler_address,
               "workers": set(client.scheduler_info()["workers"]),
               "installed": zd.installed(client)}          # what the zerocopy way set up there


@pytest.fixture(scope="module")
def local(both: dict[str, Any]) -> tuple[dict, Path, str]:
    return both["local"]


def test_local_cluster_features_are_the_single_process_ones_bit_for_bit(local, quick) -> None:
    cluster, cluster_out, _ = local
    single, single_out, _ = quick
    assert cluster["results_match"] is True
    for mode in MODES:
        for key in EXACT:                       # peaks and beat windows: the same bytes
            assert cluster["digests"][mode][key] == single["digests"][mode][key], (mode, key)
        here, there = (pd.read_parquet(out / f"beats-{mode}.parquet") for out in (cluster_out, single_out))
        assert here[FEATURES].equals(there[FEATURES])
        for column in ("z0", "error", "score"):  # training on the same beats: the demo's tolerance
            assert np.allclose(here[column], there[column], **TOLERANCE), (mode, column)


def _handoffs(record: dict[str, Any], mode: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(h["stage"], h["call"]): h for h in record["handoffs"]
            if h["mode"] == mode and h["stage"] in WORKER_STAGES}


def test_local_cluster_ledger_sums_the_partitions(local, quick) -> None:
    cluster, _, _ = local
    single, _, _ = quick
    where = cluster["cluster"]["zerocopy"]
    assert where["mode"] == "local" and "LocalCluster" in where["kind"]
    assert len(where["workers"]) == 2 and where["partitions"] == 4
    assert sum(w["records"] for w in where["workers"]) == 12          # the --quick set
    assert len({w["pid"] for w in where["workers"]}) == 2
    for mode in MODES:
        ours, theirs = _handoffs(cluster, mode), _handoffs(single, mode)
        assert ours.keys() == theirs.keys()     # the same hand-offs, each summed over partitions
        for key, h in ours.items():
            assert h["partitions"] == 4, key
            assert (h["nbytes"], h["copied_bytes"]) == (theirs[key]["nbytes"], theirs[key]["copied_bytes"]), key
        stages = [s["stage"] for s in cluster["stages"] if s["mode"] == mode]
        assert stages == ["startup", *WORKER_STAGES, "gather", "train", "score", "table", "write"]
    gather = [h for h in cluster["handoffs"] if h["stage"] == "gather" and h["mode"] == "zerocopy"]
    assert gather[0]["planned_copied_bytes"] == gather[0]["copied_bytes"] > 0   # the one stated copy
    assert gather[0]["reason"]
    assert all(h["copied_bytes"] == 0 for h in gather[1:])                   # then views, as in one process


def test_local_cluster_report_says_where_it_ran(local) -> None:
    _, out, stdout = local
    assert "on Dask           LocalCluster, 2 worker process(es)" in stdout
    report = (out / "report.md").read_text()
    assert "## Where it ran" in report and "zerocopy.dask.report" in report
    assert report.count("| `tcp://127.0.0.1:") >= 8    # 2 workers x (task table + memory table) x 2 ways


def test_scheduler_mode_runs_on_a_cluster_started_elsewhere(both, quick) -> None:
    record, single, workers = both["scheduler"], quick[0], both["workers"]
    assert record["results_match"] is True
    for mode in MODES:
        where = record["cluster"][mode]
        assert where["mode"] == "scheduler" and where["address"] == both["address"]
        assert {w["address"] for w in where["workers"]} == workers
        assert sum(w["records"] for w in where["workers"]) == 12
        assert record["digests"][mode] == single["digests"][mode]   # features and training alike
    assert "setup" not in record["cluster"]["naive"]   # the naive way ran first, on Dask's defaults
    assert set(record["cluster"]["zerocopy"]["setup"]) == workers
    assert all(entry["serializers"]["torch"] == ["dask", "cuda"] for entry in both["installed"].values())


@pytest.mark.gpu
def test_cuda_cluster_mode_matches_the_single_process_run(tmp_path: Path, demo_cache: Path) -> None:
    """On the GPU machine: one worker per GPU (dask-cuda's LocalCUDACluster where installed),
    the zerocopy way's workers on the shared pool, the features the single-process run's."""
    records = {}
    for name, extra in (("single", ()), ("cluster", ("--cluster", "local"))):
        proc = run_demo("--quick", "--device", "cuda", "--json", str(tmp_path / f"{name}.json"),
                        "--cache", str(demo_cache), *extra)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        records[name] = json.loads((tmp_path / f"{name}.json").read_text())
    single, cluster = records["single"], records["cluster"]
    assert cluster["results_match"] is True
    for mode in MODES:
        for key in EXACT:
            assert cluster["digests"][mode][key] == single["digests"][mode][key], (mode, key)
    where = cluster["cluster"]["zerocopy"]
    assert where["workers"] and "GPU" in where["kind"]
    assert all(entry["pool"]["installed"] for entry in where["setup"].values()), where["setup"]
    assert all(row["reserved"] is not None for row in where["report"])   # the workers' pools


# ---------------------------------------------------------------- the parts, without a cluster
def test_cluster_flags_are_checked_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_workers("local") is None and local_workers("local:3") == 3
    for bad in ("local:0", "remote", "local:x"):
        with pytest.raises(InvalidArgumentError, match="--cluster takes local or local:N"):
            local_workers(bad)
    import zerocopy.demo.cluster as demo_cluster

    monkeypatch.setattr(demo_cluster, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(InvalidArgumentError, match="cannot reach the Dask scheduler"):
        demo_cluster.check_scheduler("tcp://127.0.0.1:9", "data.parquet")
    proc = run_demo("--cluster", "remote")
    assert proc.returncode == 2 and "--cluster takes local or local:N" in proc.stderr


def test_records_split_whole_and_even() -> None:
    assert split_records(12, 4) == [(0, 3), (3, 3), (6, 3), (9, 3)]
    assert split_records(5, 2) == [(0, 3), (3, 2)]
    assert split_records(2, 4) == [(0, 1), (1, 1)]     # never an empty partition


def test_a_csv_is_made_partitionable_once_with_its_record_ids(tmp_path: Path) -> None:
    _, signals = two_record_csv(tmp_path / "ecg.csv")
    n = signals.shape[2]
    path = partitionable(str(tmp_path / "ecg.csv"), tmp_path)
    assert path.endswith(".parquet") and partitionable(path, tmp_path) == path   # once
    df, shape = _load(path, False, (1, 1))              # the second record's rows only
    assert shape["records"] == 1 and shape["record_ids"] == [101]
    assert set(df["record"]) == {101}
    assert np.allclose(df["value"].to_numpy().reshape(2, n), signals[1], atol=1e-6)
