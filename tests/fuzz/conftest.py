"""Fuzz suite reporting: the seed in the header, cases run and time in the summary."""

from __future__ import annotations

import importlib.util
import time

import pytest
from tests.fuzz import settings

# The suite spans all seven CPU frameworks at once (it imports them at collection). Where one
# is missing, as on the GPU test machine (no TensorFlow, no Polars), it is not collected at
# all, and the header says why; CI installs all seven (requirements/cpu.txt).
_MISSING = [name for name in ("torch", "jax", "tensorflow", "pyarrow", "pandas", "polars")
            if importlib.util.find_spec(name) is None]
collect_ignore_glob = ["test_*.py"] if _MISSING else []

STATS = {"cases": 0, "seconds": 0.0}


def pytest_report_header(config: pytest.Config) -> str:
    if _MISSING:
        return f"zerocopy fuzz: NOT COLLECTED, {', '.join(_MISSING)} missing here"
    seed = "fixed (derandomized)" if settings.SEED is None else str(settings.SEED)
    return (f"zerocopy fuzz: seed {seed} (ZEROCOPY_FUZZ_SEED), {settings.PER_PAIR} cases per pair "
            f"x {len(settings.PAIRS)} pairs (ZEROCOPY_FUZZ_EXAMPLES)")


@pytest.fixture
def fuzz_clock():
    start = time.perf_counter()
    yield STATS
    STATS["seconds"] += time.perf_counter() - start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STATS["cases"]:
        seed = "fixed" if settings.SEED is None else settings.SEED
        terminalreporter.write_line(
            f"zerocopy fuzz: {STATS['cases']} cases in {STATS['seconds']:.1f} s (seed {seed})")
