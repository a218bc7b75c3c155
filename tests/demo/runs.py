"""Running ``zerocopy demo`` in a fresh process, and the data files the tests feed it
(what the tests and their fixtures share)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from zerocopy.demo.ecgsyn import EcgParams, simulate


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zerocopy", "demo", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def run_demos(*runs: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several demo runs side by side (each is a chain of mostly one busy process at a
    time: starting them together saves wall time on a machine of two or more cores)."""
    procs = [subprocess.Popen([sys.executable, "-m", "zerocopy", "demo", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in runs]
    done = []
    try:
        for args, proc in zip(runs, procs, strict=True):
            out, err = proc.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    finally:
        for proc in procs:   # a run that timed out takes no other run's machine with it
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return done


def two_record_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Two records of two named leads (II, V5) with ids 100 and 101, written to ``path`` as
    a CSV whose rows are shuffled; returns the table in order and the signals."""
    params = EcgParams(records=2, minutes=0.1, leads=2, seed=3)
    signals = simulate(params)
    n = signals.shape[2]
    table = pd.DataFrame({
        "record": np.repeat([100, 101], 2 * n), "lead": np.tile(np.repeat(["II", "V5"], n), 2),
        "time": np.tile(np.arange(n) / params.fs, 4), "value": signals.reshape(-1)})
    table.sample(frac=1.0, random_state=0).to_csv(path, index=False)
    return table, signals
