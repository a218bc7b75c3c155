"""``report()``: the shared pool, each framework's use of it, leaks and governance events.

Numbers come from the most direct source for each framework: our statistics for the ones
that allocate through the chain, the framework's own counters for the ones configured by
environment, and the pool's attributes for the whole. ``format()`` gives a text table;
``to_dict()`` the same as JSON-ready data (the CLI uses both).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from zerocopy._display import report_html, report_rich
from zerocopy._units import human_bytes as _b  # short: it fills table rows
from zerocopy.memory._active import active
from zerocopy.memory.adaptors.limiting import LimitingAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor, Stats
from zerocopy.memory.adaptors.tracking import Allocation, TrackingAdaptor
from zerocopy.memory.governance import PoolEvent
from zerocopy.memory.hooks import hook, loaded
from zerocopy.memory.resource import MemoryResource, find, get_current_resource, layers

__all__ = ["FrameworkUsage", "MemoryReport", "PoolState", "report"]


@dataclass(frozen=True)
class PoolState:
    reserved: int
    used: int
    reserved_high: int
    used_high: int
    release_threshold: int


@dataclass(frozen=True)
class FrameworkUsage:
    framework: str
    mode: str
    per_allocation: bool
    current_bytes: int
    peak_bytes: int
    allocations: int
    live: int
    limit: int | None = None
    framework_stats: dict[str, int] | None = None


@dataclass(frozen=True)
class MemoryReport:
    time: float
    resource: str
    pool: PoolState | None
    total: Stats | None
    frameworks: list[FrameworkUsage] = field(default_factory=list)
    leaks: list[Allocation] = field(default_factory=list)
    events: list[PoolEvent] = field(default_factory=list)
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["leaks"] = [{"ptr": hex(a.ptr), "nbytes": a.nbytes, "framework": a.framework,
                          "thread": a.thread, "stack": a.format().splitlines()[1:]}
                         for a in self.leaks]
        return data

    def format(self) -> str:
        lines = [f"zerocopy memory report ({self.resource})"]
        if self.pool is not None:
            p = self.pool
            lines.append(f"pool: reserved {_b(p.reserved)} (peak {_b(p.reserved_high)}), used "
                         f"{_b(p.used)} (peak {_b(p.used_high)}), release threshold "
                         f"{'max' if p.release_threshold >= (1 << 63) else _b(p.release_threshold)}")
        if self.total is not None:
            t = self.total
            lines.append(f"through zerocopy: current {_b(t.current_bytes)}, peak "
                         f"{_b(t.peak_bytes)}, {t.total_count} allocations, {t.current_count} live"
                         + (f", global limit {_b(self.limit)}" if self.limit else ""))
        if self.frameworks:
            lines.append(f"{'framework':<11} {'mode':<18} {'hooks':<6} {'current':>10} "
                         f"{'peak':>10} {'allocs':>8} {'live':>6} {'limit':>10}")
            for f in self.frameworks:
                lines.append(f"{f.framework:<11} {f.mode:<18} {'yes' if f.per_allocation else 'pool':<6} "
                             f"{_b(f.current_bytes):>10} {_b(f.peak_bytes):>10} {f.allocations:>8} "
                             f"{f.live:>6} {_b(f.limit) if f.limit else '-':>10}")
        if self.events:
            lines.append(f"governance events ({len(self.events)}):")
            lines += [f"  {e.kind}: {e.detail}" for e in self.events[-10:]]
        if self.leaks:
            lines.append(f"outstanding allocations ({len(self.leaks)}):")
            lines += ["  " + a.format().replace("\n", "\n  ") for a in self.leaks[:20]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def _repr_html_(self) -> str:  # Jupyter
        return report_html(self)

    def __rich__(self) -> Any:  # rich.print(report), the CLI
        return report_rich(self)


def _pool_state(resource: MemoryResource | None) -> PoolState | None:
    if resource is None:
        return None
    base = list(layers(resource))[-1]
    if not all(hasattr(base, a) for a in ("reserved", "used", "reserved_high", "used_high")):
        return None
    return PoolState(base.reserved(), base.used(), base.reserved_high(),  # type: ignore[attr-defined]
                     base.used_high(), base.release_threshold)  # type: ignore[attr-defined]


def _framework_stats(name: str) -> dict[str, int] | None:
    if not loaded(name):  # its modules, or the package its hook drives (RMM for cuDF)
        return None
    try:
        return hook(name).framework_stats()
    except Exception:  # a report must not fail because one framework's counters did
        return None


def _usage(shared: Any, stats: StatisticsAdaptor | None,
           limiter: LimitingAdaptor | None) -> list[FrameworkUsage]:
    seen = stats.per_framework() if stats else {}
    installs = shared.installations if shared is not None else {}
    rows = []
    for name in dict.fromkeys([*installs, *seen]):
        caps = installs[name].capabilities if name in installs else None
        own = seen.get(name, Stats())
        fw = _framework_stats(name) if name in installs else None
        current, peak = own.current_bytes, own.peak_bytes
        if caps is not None and not caps.per_allocation and fw:
            current, peak = fw.get("current_bytes", 0), fw.get("peak_bytes", 0)
        rows.append(FrameworkUsage(
            name, caps.mode if caps else "direct", caps.per_allocation if caps else True,
            current, peak, own.total_count, own.current_count,
            limiter.limits.get(name) if limiter else None, fw))
    return rows


def report(shared: Any = None, *, resource: MemoryResource | None = None) -> MemoryReport:
    """Report on ``shared`` (default: the active ``share()``), or on a bare ``resource``."""
    if shared is None and resource is None:
        shared = active()
    if resource is None:
        resource = shared.resource if shared is not None else get_current_resource()
    stats = find(resource, StatisticsAdaptor)
    tracker = find(resource, TrackingAdaptor)
    limiter = find(resource, LimitingAdaptor)
    governor = getattr(shared, "governor", None)
    return MemoryReport(
        time=time.time(),
        resource=" -> ".join(type(layer).__name__ for layer in layers(resource))
        if resource is not None else "nothing shared",
        pool=_pool_state(resource),
        total=stats.statistics() if stats else None,
        frameworks=_usage(shared, stats, limiter),
        leaks=tracker.leaks() if tracker else [],
        events=list(governor.events) if governor else [],
        limit=limiter.limit if limiter else None)
