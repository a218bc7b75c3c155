"""Running ``zerocopy demo`` in a fresh process (what the tests and their fixtures share)."""

from __future__ import annotations

import subprocess
import sys


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zerocopy", "demo", *args], capture_output=True,
                          text=True, timeout=300, check=False)
