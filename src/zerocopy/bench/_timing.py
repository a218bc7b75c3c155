"""Timing helpers shared by the bench parts: medians of auto-ranged loops."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["machine", "paired_per_call_seconds", "per_call_seconds"]


def per_call_seconds(fn: Callable[[], Any], *, budget: float = 0.05, samples: int = 7) -> float:
    """Median over ``samples`` of the mean per-call time of a loop sized to ``budget``."""
    loops, slow = _loops(fn, budget)
    return statistics.median(_sample(fn, loops) for _ in range(3 if slow else samples))


def paired_per_call_seconds(first: Callable[[], Any], second: Callable[[], Any], *,
                            budget: float = 0.05, samples: int = 7,
                            between: Callable[[], Any] | None = None) -> tuple[float, float]:
    """``per_call_seconds`` of two calls, their samples taken in turn (first, second, first,
    ...): a slow spell of a shared machine then falls on both sides of a comparison, not on
    whichever side it happened to be measuring (on the 2-core dev VM one-sided spells put
    single cells of the exchange bench 5 us off, both sides being 1-12 us calls).
    ``between`` runs untimed after every sample (the GPU bench waits for the device there,
    so that work one side queued is not paid by the other's next sample)."""
    loops_a, slow_a = _loops(first, budget)
    loops_b, slow_b = _loops(second, budget)
    a: list[float] = []
    b: list[float] = []
    for _ in range(3 if slow_a or slow_b else samples):
        for fn, loops, out in ((first, loops_a, a), (second, loops_b, b)):
            if between is not None:
                between()
            out.append(_sample(fn, loops))
    return statistics.median(a), statistics.median(b)


def _loops(fn: Callable[[], Any], budget: float) -> tuple[int, bool]:
    """(calls per sample to fill ``budget``, whether one call alone is slow: a copy of a
    large buffer, where a few single calls are enough)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    return max(1, min(100_000, int(budget / max(first, 1e-7)))), first > 0.01


def _sample(fn: Callable[[], Any], loops: int) -> float:
    """Mean seconds per call over ``loops`` calls, with the cyclic garbage collector off as
    timeit has it: a collection lands on whichever call happens to allocate past the
    threshold (pandas' calls allocate many objects), so it is noise, not the call's cost."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - start) / loops
    finally:
        if collecting:
            gc.enable()


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")
