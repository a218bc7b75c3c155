"""The demo on a Dask cluster: the record-level stages per record partition on the workers.

``zerocopy demo --cluster local[:N]`` starts, in each way's process, a cluster on this
machine (``zerocopy.dask.local_cluster``: N CPU worker processes, or one worker per GPU,
through dask-cuda's ``LocalCUDACluster`` where it is installed); ``--scheduler ADDRESS``
connects to a running one instead. Each way's process is then the Dask client:

- the zerocopy way calls ``zerocopy.dask.setup`` first (serializers on every worker, the
  shared pool on GPU workers); the naive way leaves the workers as Dask starts them;
- the records are split into partitions of whole records, one task per partition
  (``zerocopy.dask.map_partitions_stage``): load (the partition's rows of the Parquet
  file), filter, peaks and beats run on a worker through the way's own hand-offs, each
  task with its own copy ledger and stage clock;
- the client gathers the beats where the model trains (the way's ``gather``) and runs
  train, score, table and write as in one process;
- stage records and ledgers are summed over the partitions; ``zerocopy.dask.report``
  gathers every worker's memory report.

Each record is filtered, searched and cut on its own, so the features (peaks, beat windows,
the beats table) are the single-process run's bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from zerocopy.demo.ledger import Clock, Handoff, Ledger, StageRecord
from zerocopy.demo.pipeline import (
    Config,
    Records,
    checked_layout,
    device_probes,
    device_sync,
    read_table,
    record_stages,
    shape_of,
    to_host,
    warm_up_records,
)
from zerocopy.demo.ways import WAYS
from zerocopy.errors import InvalidArgumentError, message

__all__ = ["RECORD_STAGES", "Workers", "check_scheduler", "local_workers", "partitionable",
           "split_records"]

RECORD_STAGES = ("load", "filter", "peaks", "beats")
CONNECT_TIMEOUT = "10s"


def local_workers(spec: str) -> int | None:
    """``local`` -> None (the default count), ``local:N`` -> N; anything else is refused."""
    name, _, count = spec.partition(":")
    if name != "local" or (count and (not count.isdigit() or int(count) < 1)):
        raise InvalidArgumentError(message("--cluster takes local or local:N", got=repr(spec),
                                           hint="--cluster local:2 (two worker processes here), "
                                                "or --scheduler ADDRESS for a running cluster"))
    return int(count) if count else None


def split_records(records: int, parts: int) -> list[tuple[int, int]]:
    """(first record, count) of ``parts`` partitions of whole records, sizes within one."""
    return [(int(chunk[0]), len(chunk)) for chunk in np.array_split(np.arange(records), parts)
            if len(chunk)]


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InvalidArgumentError(message(
            "cannot reach the Dask scheduler", got=f"{address} ({type(exc).__name__})",
            hint="start one (`dask scheduler` and `dask worker ADDRESS`), or run on this "
                 "machine with --cluster local:N")) from exc


def check_scheduler(address: str, data: str) -> list[str]:
    """Before the run: the scheduler answers, has workers, and each of them can read
    ``data`` (the workers load their partitions themselves). Returns the workers."""
    with _connect(address) as client:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            raise InvalidArgumentError(message("the Dask scheduler has no workers", got=address,
                                               hint="start workers: `dask worker ADDRESS`"))
        seen = client.run(os.path.exists, data)
    blind = sorted(w for w, ok in seen.items() if not ok)
    if blind:
        raise InvalidArgumentError(message(
            "some workers cannot read the data file", got=f"{data} missing on {', '.join(blind)}",
            hint="put it on a filesystem every worker mounts at the same path (--data, --cache)"))
    return workers


def partitionable(path: str, folder: Path) -> str:
    """``path`` if it is the demo's Parquet layout (its shape in the metadata), else the
    table made so once, here, into ``folder``: sorted by record, lead, time, float32
    values, the record ids kept. A partition's task then reads its records' rows only."""
    if shape_of(path) is not None:
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    df, shape = checked_layout(read_table(path, gpu=False), None)
    table = pa.Table.from_pandas(df[["record", "lead", "time", "value"]], preserve_index=False)
    out = folder / f"records-{Path(path).stem}.parquet"
    pq.write_table(table.replace_schema_metadata({"zerocopy.demo": str(shape)}), out)
    return str(out)


# ---------------------------------------------------------------- on a worker
def _warm_up_worker(device: str) -> int:
    """The record stages' start-up, once per worker (the same in both ways). Not on a GPU
    worker: its stages do not use JAX, whose start would take 75% of the GPU there."""
    if device == "cpu":
        warm_up_records()
    return os.getpid()


def _quiet(text: str) -> None:
    pass


def _partition(part: tuple[int, int], *, mode: str,
               config: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Stages 1-4 over one partition of records, in a worker; the partition's beats, its
    stage records and its ledger (a ``map_partitions_stage`` function)."""
    cfg = Config(**config)
    gpu = cfg.device == "cuda"
    ledger = Ledger(mode)
    clock = Clock(ledger, **device_probes(gpu, mode))
    try:
        rec = record_stages(WAYS[mode](ledger, gpu), clock, cfg, _quiet, part)
    finally:
        clock.close()
    first, count = part
    leads = rec.rows // count
    result = {"part": part, "window": rec.window, "beats": rec.beats,
              "peak_rows": to_host(rec.peak_rows) + first * leads,   # rows of the whole set
              "peak_cols": to_host(rec.peak_cols), "filtered": rec.filtered,
              "rows": rec.rows, "samples": rec.samples, "fs": rec.fs,
              "stages": [s.to_dict() for s in clock.stages]}
    return result, [h.to_dict() for h in ledger.entries]


# ---------------------------------------------------------------- on the client
class Workers:
    """The cluster one way of the demo runs its record stages on (open, run, close)."""

    def __init__(self, mode: str, cfg: Config, client: Any, cluster: Any, kind: str) -> None:
        self.mode, self.cfg, self.client, self.cluster = mode, cfg, client, cluster
        self.info: dict[str, Any] = {"mode": "scheduler" if cfg.scheduler else "local",
                                     "kind": kind, "address": client.scheduler.address}

    @classmethod
    def open(cls, mode: str, cfg: Config, progress: Any = print) -> Workers:
        """Start (``cfg.cluster``) or reach (``cfg.scheduler``) the cluster; the zerocopy way
        sets zerocopy up on it; every worker warms up the record stages."""
        from distributed import Client

        if cfg.scheduler:
            client, cluster, kind = _connect(cfg.scheduler), None, f"scheduler {cfg.scheduler}"
        else:
            from zerocopy.dask import local_cluster  # noqa: PLC0415 (loads distributed: cluster mode only)

            env = {"JAX_PLATFORMS": "cpu"} if cfg.device == "cpu" else {}
            cluster, made = local_cluster(local_workers(cfg.cluster), gpu=cfg.device == "cuda", env=env)
            client, kind = Client(cluster), made.describe()
        workers = cls(mode, cfg, client, cluster, kind)
        try:
            workers._prepare(progress)
        except BaseException:
            workers.close()
            raise
        return workers

    def _prepare(self, progress: Any) -> None:
        import zerocopy.dask as zd  # noqa: PLC0415 (loads distributed: cluster mode only)

        if self.mode == "zerocopy":
            installed = zd.setup(self.client, frameworks=_worker_frameworks())
            self.info["setup"] = {w: {"serializers": sorted(i["serializers"]), "pool": i["pool"]}
                                  for w, i in installed.items()}
        addresses = sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        warm = [self.client.submit(_warm_up_worker, self.cfg.device, workers=[w],
                                   allow_other_workers=False, pure=False) for w in addresses]
        self.info["pids"] = dict(zip(addresses, self.client.gather(warm), strict=True))
        progress(f"{len(addresses)} Dask workers ready ({self.info['kind']})")

    def record_stages(self, way: Any, clock: Clock, progress: Any = print) -> Records:
        """Stages 1-4 on the workers, one task per partition of records; then the stage
        ``gather``: the partitions' beats to the client, assembled by the way."""
        from distributed import wait

        import zerocopy.dask as zd  # noqa: PLC0415 (loads distributed: cluster mode only)

        shape = shape_of(self.cfg.data) or {}
        parts = split_records(shape["records"], self.cfg.partitions or 2 * len(self.info["pids"]))
        start = time.perf_counter()
        futures = zd.map_partitions_stage(self.client, _partition, parts, gather=False,
                                          mode=self.mode, config=self.cfg.to_dict())
        wait(futures)
        self.info["records_seconds"] = time.perf_counter() - start
        first_gather = len(clock.ledger.entries)
        with clock.stage("gather", device_sync(self.cfg.device == "cuda")):
            outputs = self.client.gather(futures)
            window, beats = way.gather([o.result for o in outputs], self.cfg.width)
        # the workers' stages come before the client's gather, in the records and the ledger
        clock.stages[-1:-1] = _sum_stages(self.mode, outputs)
        clock.ledger.entries[first_gather:first_gather] = _sum_handoffs([o.ledger for o in outputs])
        self.info["report"] = zd.report(self.client).to_dict()["rows"]
        self.info["workers"] = _per_worker(outputs, self.info["pids"])
        self.info["partitions"] = len(parts)
        progress(f"{sum(len(o.result['peak_rows']) for o in outputs)} R-peaks in {len(parts)} "
                 f"partitions on {len(self.info['pids'])} workers")
        results = [o.result for o in outputs]
        return Records(window, beats, np.concatenate([r["peak_rows"] for r in results]),
                       np.concatenate([r["peak_cols"] for r in results]),
                       np.concatenate([r["filtered"] for r in results]),
                       sum(r["rows"] for r in results), results[0]["samples"], results[0]["fs"])

    def close(self) -> dict[str, Any]:
        """Leave the cluster (close it if this process started it); what ran where."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return self.info


def _worker_frameworks() -> list[str]:
    """What the record stages allocate with on a GPU worker (its shared pool routes them;
    a CPU worker installs no pool)."""
    return ["cupy", "numba"] + (["cudf"] if importlib.util.find_spec("cudf") else [])


def _sum_stages(mode: str, outputs: list[Any]) -> list[StageRecord]:
    """One record per worker stage: seconds = the busiest worker's time in it (the workers
    run side by side), CPU seconds and bytes copied summed, peaks the highest worker's."""
    out = []
    for name in RECORD_STAGES:
        busy: dict[str, float] = defaultdict(float)
        rows = []
        for o in outputs:
            row = next(s for s in o.result["stages"] if s["stage"] == name)
            busy[o.worker] += row["seconds"]
            rows.append(row)
        device = [r["peak_device_bytes"] for r in rows if r["peak_device_bytes"] is not None]
        memory: dict[str, int] = {}
        for r in rows:
            for framework, held in r["memory"].items():
                memory[framework] = max(memory.get(framework, 0), held)
        out.append(StageRecord(mode, name, max(busy.values()), sum(r["bytes_copied"] for r in rows),
                               max(r["peak_bytes"] for r in rows), sum(r["cpu_seconds"] for r in rows),
                               max(device) if device else None, memory))
    return out


def _sum_handoffs(ledgers: list[list[dict[str, Any]]]) -> list[Handoff]:
    """The partitions' ledgers as one: each hand-off once, bytes and seconds summed."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for entries in ledgers:
        for h in entries:
            key = (h["stage"], h["src"], h["dst"], h["call"])
            if key not in merged:
                merged[key] = {**h, "partitions": 1}
                continue
            m = merged[key]
            for field in ("nbytes", "copied_bytes", "seconds"):
                m[field] += h[field]
            plans = (m["planned_copied_bytes"], h["planned_copied_bytes"])
            m["planned_copied_bytes"] = None if None in plans else sum(plans)
            m["reason"] = m["reason"] or h["reason"]
            m["partitions"] += 1
    return [Handoff(**m) for m in merged.values()]


def _per_worker(outputs: list[Any], pids: dict[str, int]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {
        w: {"address": w, "pid": pid, "partitions": 0, "records": 0, "seconds": 0.0,
            "peak_host_bytes": 0} for w, pid in pids.items()}
    for o in outputs:
        row = rows.setdefault(o.worker, {"address": o.worker, "pid": o.pid, "partitions": 0,
                                         "records": 0, "seconds": 0.0, "peak_host_bytes": 0})
        row["partitions"] += 1
        row["records"] += o.result["part"][1]
        row["seconds"] += o.seconds
        row["peak_host_bytes"] = max(row["peak_host_bytes"], *(s["peak_bytes"] for s in o.result["stages"]))
    return [rows[w] for w in sorted(rows)]
