"""Running ``zerocopy demo`` in a fresh process (what the tests and their fixtures share)."""

from __future__ import annotations

import subprocess
import sys


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
