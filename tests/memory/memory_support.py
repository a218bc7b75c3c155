"""Helpers for the memory tests (not fixtures): fake pools, subprocess runs, chains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
UINT64_MAX = (1 << 64) - 1


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 240) -> dict:
    """Run ``code`` in a fresh interpreter (framework settings that must precede the
    runtime need one); the script prints one JSON object as its last line."""
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **(env or {})}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class FakePool:
    """A pool with the attributes governance reads; tests play the frameworks' part."""

    def __init__(self) -> None:
        self.release_threshold = 0
        self._reserved = 0
        self._used = 0
        self.trims: list[int] = []

    def reserved(self) -> int:
        return self._reserved

    def used(self) -> int:
        return self._used

    def trim(self, keep: int = 0) -> None:
        self.trims.append(keep)
        self._reserved = max(self._used, keep)

    # what frameworks do to it
    def grow(self, reserved: int, used: int) -> None:
        self._reserved, self._used = reserved, used
