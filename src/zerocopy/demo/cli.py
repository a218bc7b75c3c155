"""``zerocopy demo``: the ECG pipeline run both ways (naive one-liners vs zerocopy) in one run.

Generates (once, cached) or reads the signals, runs each way in a fresh process, checks
that both found the same peaks and beats bit for bit and the same model outputs within a
stated tolerance, then prints the summary, the per-stage table and the copy ledger.
``--out DIR`` writes report.md with PNG charts and the result tables; ``--json PATH`` the
machine-readable record.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from zerocopy.errors import (
    DeviceError,
    FrameworkNotInstalledError,
    InvalidArgumentError,
    UnsupportedObjectError,
    message,
)

__all__ = ["add_arguments", "main"]

QUICK = {"records": 12, "minutes": 2.0, "epochs": 1, "train_beats": 2048}
DEFAULT = {"records": 80, "minutes": 12.0, "epochs": 2, "train_beats": 8192}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when a GPU and CuPy are there, else cpu")
    parser.add_argument("--records", type=int, help=f"synthetic records (default {DEFAULT['records']})")
    parser.add_argument("--minutes", type=float, help=f"minutes per record (default {DEFAULT['minutes']:g})")
    parser.add_argument("--epochs", type=int, help=f"autoencoder epochs (default {DEFAULT['epochs']})")
    parser.add_argument("--quick", action="store_true", help="CI-sized run (12 records x 2 min, 1 epoch)")
    parser.add_argument("--data", help="CSV or Parquet with columns record, lead, time, value "
                        "(or a WFDB record path when wfdb is installed) instead of the synthetic set")
    parser.add_argument("--out", help="write report.md, PNG charts and the result tables here")
    parser.add_argument("--json", dest="json_path", help="write the machine-readable record here")
    parser.add_argument("--cache", help="folder for the generated Parquet (default ~/.cache/zerocopy/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tensorflow", action=argparse.BooleanOptionalAction, default=None,
                        help="also train a tiny TensorFlow classifier (default: on where installed, "
                        "off with --quick and on cuda)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each way N times, alternating which goes first; report each way's "
                        "fastest run (results must match in every round)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8),
                        help="torch threads (fixed, for deterministic training)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="local[:N]",
                       help="run load, filter, peaks and beats per record partition on a Dask cluster "
                       "of N worker processes here (on a GPU: one worker per GPU, LocalCUDACluster "
                       "where dask-cuda is installed); training stays in this process. Needs "
                       "zerocopy-ml[dask]")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="the same on the workers of a running Dask scheduler (they must read the "
                       "data file at the same path); the naive way runs first, then the zerocopy "
                       "way sets zerocopy.dask up on the cluster")
    parser.add_argument("--partitions", type=int, default=0,
                        help="record partitions on the cluster (default: two per worker)")


def _device(asked: str | None) -> str:
    try:
        import cupy

        found = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy or no driver: a CPU machine
        found = False
    if asked == "cuda" and not found:
        raise DeviceError(message("--device cuda needs a CUDA GPU and CuPy", got="none found",
                                  hint="run with --device cpu, or install cupy-cuda13x on a GPU machine"))
    device = asked or ("cuda" if found else "cpu")
    if device == "cuda":  # before any way runs: a typed error, not one from a kernel launch
        from zerocopy.demo.kernels import check_numba_cuda_compiles  # it imports numba

        check_numba_cuda_compiles()
    return device


def _data(args: argparse.Namespace, sizes: dict[str, Any], console: Any) -> str:
    if args.data:
        path = Path(args.data)
        if not path.exists():
            raise FileNotFoundError(message("--data file not found", got=str(path),
                                            hint="give a CSV or Parquet file, or a WFDB record path"))
        if path.suffix in {".csv", ".parquet"}:
            return str(path)
        return _from_wfdb(path, args)
    from zerocopy.demo.ecgsyn import EcgParams, cache_dir, cached_parquet

    params = EcgParams(records=sizes["records"], minutes=sizes["minutes"], seed=args.seed)
    start = time.perf_counter()
    with console.status(f"ECGSYN: {params.records} records x {params.minutes:g} min (cached once made)"):
        path = cached_parquet(params, args.cache)
    took = time.perf_counter() - start
    made = f", generated in {took:.1f} s" if took > 1 else ""
    console.print(f"data: {path.name} in {Path(args.cache) if args.cache else cache_dir()} "
                  f"({path.stat().st_size / 2**20:.0f} MiB{made})", soft_wrap=True, highlight=False)
    return str(path)


def _from_wfdb(path: Path, args: argparse.Namespace) -> str:
    try:
        import wfdb
    except ImportError as exc:
        raise FrameworkNotInstalledError(message(
            "reading WFDB records needs the wfdb package", got=f"{path} (not CSV or Parquet)",
            hint="pip install wfdb, or convert the recording to CSV/Parquet with columns record, lead, "
            "time, value")) from exc
    import numpy as np

    from zerocopy.demo.ecgsyn import write_parquet

    rec = wfdb.rdrecord(str(path.with_suffix("")))
    signals = np.asarray(rec.p_signal, dtype=np.float32).T[None]
    if not np.isfinite(signals).all():
        raise UnsupportedObjectError(message("the WFDB record has missing samples", got=str(path),
                                             hint="fill or cut the gaps first"))
    folder = Path(args.cache) if args.cache else Path(tempfile.gettempdir())
    return str(write_parquet(folder / f"wfdb-{path.stem}.parquet", signals, float(rec.fs),
                             lead_names=tuple(rec.sig_name)))


def _on_cluster(args: argparse.Namespace, data: str, work: Path, console: Any) -> str:
    """Check the cluster flags before any way runs; the data file the workers will read."""
    import zerocopy.dask  # noqa: F401 (a missing dask/distributed is one typed line, here)
    from zerocopy.demo.cluster import check_scheduler, local_workers, partitionable

    if args.cluster:
        local_workers(args.cluster)
    if args.partitions < 0:
        raise InvalidArgumentError(message("--partitions must be 0 (two per worker) or more",
                                           got=str(args.partitions)))
    data = partitionable(data, work)
    if args.scheduler:
        workers = check_scheduler(args.scheduler, data)
        console.print(f"Dask scheduler {args.scheduler}: {len(workers)} worker(s)", highlight=False)
    return data


def _orders(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The order of the ways in each round: alternating (a busy machine or a cold cache then
    does not always hit the same way), except on a shared scheduler, where the zerocopy
    way's setup stays on the cluster: there the naive way always runs first."""
    rounds = max(1, args.repeat)
    if args.scheduler:
        return [("naive", "zerocopy")] * rounds
    return [("naive", "zerocopy") if i % 2 == 0 else ("zerocopy", "naive") for i in range(rounds)]


def _run_way(mode: str, config: Path, console: Any) -> None:
    cmd = [sys.executable, "-m", "zerocopy.demo.worker", mode, str(config)]
    with console.status(f"running the {mode} way in a fresh process") as status:
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        tail: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            tail = [*tail[-30:], line.rstrip()]
            if line.startswith("  ["):
                status.update(line.strip().replace("[", "\\["))
                console.print(line.rstrip(), highlight=False, markup=False)
        if proc.wait() != 0:
            last = [t for t in tail if t.strip() and not t.startswith(("I0000", "W0000", "WARNING: All"))]
            raise RuntimeError(f"the {mode} way failed (exit {proc.returncode}): " + " | ".join(last[-4:]))


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from zerocopy.demo.compare import compare, pipeline_seconds, summary
    from zerocopy.demo.pipeline import Config
    from zerocopy.demo.report import print_report, write_report

    console = Console(width=None if sys.stdout.isatty() else 160)
    sizes = dict(QUICK if args.quick else DEFAULT)
    for key in ("records", "minutes", "epochs"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    device = _device(args.device)
    data = _data(args, sizes, console)
    tf = args.tensorflow if args.tensorflow is not None else (
        not args.quick and device == "cpu" and importlib.util.find_spec("tensorflow") is not None)
    with tempfile.TemporaryDirectory(prefix="zerocopy-demo-") as tmp:
        work = Path(tmp)
        if args.cluster or args.scheduler:
            data = _on_cluster(args, data, work, console)
        elif args.partitions:
            raise InvalidArgumentError(message("--partitions is for a cluster run",
                                               hint="add --cluster local:N or --scheduler ADDRESS"))
        cfg = Config(data=data, work=str(work), device=device, epochs=int(sizes["epochs"]),
                     train_beats=int(sizes["train_beats"]), tensorflow=bool(tf), threads=args.threads,
                     seed=args.seed, cluster=args.cluster or "", scheduler=args.scheduler or "",
                     partitions=args.partitions)
        config = work / "config.json"
        config.write_text(json.dumps(cfg.to_dict()))
        runs: dict[str, Any] = {}
        matches = []
        for order in _orders(args):
            for mode in order:   # keep each way's fastest run
                _run_way(mode, config, console)
                run = json.loads((work / f"{mode}.json").read_text())
                run["repeats"] = [*runs.get(mode, {}).get("repeats", []), pipeline_seconds(run)]
                if mode in runs and pipeline_seconds(runs[mode]) <= pipeline_seconds(run):
                    run = runs[mode] | {"repeats": run["repeats"]}
                runs[mode] = run
            matches.append(compare(work))
        match = next((m for m in matches if not m["ok"]), matches[-1])
        totals = summary(runs)
        print_report(runs, totals, match, device, console)
        public = {k: v for k, v in replace(cfg, work="").to_dict().items() if k != "work"}
        if args.out:
            path = write_report(runs, totals, match, device, work, Path(args.out), public)
            console.print(f"report: {path}")
        if args.json_path:
            record = {
                "stages": [s for m in runs.values() for s in m["stages"]],
                "handoffs": [h for m in runs.values() for h in m["handoffs"]],
                "results_match": bool(match["ok"]),
                "device": device,
                "cluster": {m: runs[m].get("cluster") for m in runs},
                "digests": {m: runs[m]["digests"] for m in runs},
                "summary": totals, "checks": match, "config": public,
            }
            Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_path).write_text(json.dumps(record, indent=1))
    return 0 if match["ok"] else 1
