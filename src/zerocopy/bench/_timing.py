"""Timing helpers shared by the bench parts: medians of auto-ranged loops."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["machine", "per_call_seconds"]


def per_call_seconds(fn: Callable[[], Any], *, budget: float = 0.05, samples: int = 7) -> float:
    """Median over ``samples`` of the mean per-call time of a loop sized to ``budget``."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    loops = max(1, min(100_000, int(budget / max(first, 1e-7))))
    if first > 0.01:  # a copy of a large buffer: a few single calls are enough
        samples = 3
    results = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        results.append((time.perf_counter() - start) / loops)
    return statistics.median(results)


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")
