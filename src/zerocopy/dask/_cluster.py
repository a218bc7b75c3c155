"""``setup(client, ...)`` and ``report(client)``: zerocopy on every worker of a cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zerocopy._units import human_bytes as _b  # short: it fills table rows
from zerocopy.dask._partitions import client_of
from zerocopy.dask._plugins import (
    ENV_PLUGIN,
    EnvironmentPlugin,
    ZeroCopyWorkerPlugin,
    environment,
    installed_here,
)
from zerocopy.dask._serialize import register
from zerocopy.errors import InvalidArgumentError, message
from zerocopy.memory.hooks import HOOKS
from zerocopy.memory.report import report as memory_report

__all__ = ["ClusterReport", "report", "setup"]


def _check_frameworks(frameworks: Any) -> list[str] | None:
    if frameworks is None:
        return None
    names = [frameworks] if isinstance(frameworks, str) else list(frameworks)
    unknown = [name for name in names if name not in HOOKS]
    if unknown:
        raise InvalidArgumentError(message(
            f"unknown framework(s) for the shared pool: {', '.join(unknown)}",
            expected=" / ".join(HOOKS), hint="frameworks=None routes every installed one"))
    return names


def _has_nannies(client: Any) -> bool:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(info.get("nanny") for info in workers)


def setup(client: Any, *, frameworks: Any = None, limit: int | None = None,
          limits: dict[str, int] | None = None, modes: dict[str, str] | None = None,
          serializers: bool = True, environment_on: str = "gpu") -> dict[str, dict[str, Any]]:
    """Install zerocopy on every worker of ``client``'s cluster, and on workers that join
    later (both are Dask plugins kept by the scheduler).

    - The environment ``zerocopy.memory.share`` needs before the frameworks start goes to
      each nanny (``NannyPlugin``), which restarts its worker with it. ``environment_on``:
      ``"gpu"`` (default) only where the nanny sees a CUDA device, ``"all"`` everywhere,
      ``"none"`` never. Workers without a nanny cannot get it (export it yourself).
    - Every worker registers zerocopy's serializers (and so does this client) and, where it
      sees a CUDA device, routes ``frameworks`` to one shared pool with ``share(frameworks,
      limit=, limits=, modes=)``; a CPU-only worker skips the pool and says why.

    Returns worker address -> what it installed (environment, serializers, pool).
    """
    # The arguments first: a mistake in them is said before any cluster is looked for.
    names = _check_frameworks(frameworks)
    if environment_on not in ("gpu", "all", "none"):
        raise InvalidArgumentError(message("unknown environment_on", got=repr(environment_on),
                                           expected="'gpu', 'all' or 'none'"))
    client = client_of(client)
    env = environment(names, modes)
    if serializers:
        register()
    if env and environment_on != "none" and _has_nannies(client):
        client.register_plugin(EnvironmentPlugin(env, force=environment_on == "all"),
                               name=ENV_PLUGIN)
    plugin = ZeroCopyWorkerPlugin(frameworks=names, limit=limit, limits=dict(limits or {}) or None,
                                  modes=dict(modes or {}) or None, serializers=serializers,
                                  env_keys=sorted(env))
    client.register_plugin(plugin)
    return installed(client)


def installed(client: Any) -> dict[str, dict[str, Any]]:
    """Worker address -> what zerocopy's plugins installed there."""
    return dict(client.run(installed_here))


@dataclass
class ClusterReport:
    """Every worker's ``zerocopy.memory.report()``, one row each; ``format()`` is a table."""

    workers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for address, rep in sorted(self.workers.items()):
            pool = rep.get("pool") or {}
            total = rep.get("total") or {}
            frameworks = {f["framework"]: f for f in rep.get("frameworks", [])}
            rows.append({"worker": address, "resource": rep.get("resource", "-"),
                         "reserved": pool.get("reserved"), "used": pool.get("used"),
                         "reserved_high": pool.get("reserved_high"),
                         "used_high": pool.get("used_high"),
                         "through_zerocopy_peak": total.get("peak_bytes"),
                         "frameworks": {name: (f["current_bytes"], f["peak_bytes"])
                                        for name, f in frameworks.items()},
                         "events": len(rep.get("events", [])), "leaks": len(rep.get("leaks", []))})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "rows": self.rows()}

    def format(self) -> str:
        lines = [f"zerocopy memory report, {len(self.workers)} worker(s)",
                 f"{'worker':<24} {'pool reserved':>13} {'(peak)':>10} {'used':>10} {'(peak)':>10} "
                 f"{'events':>6} {'leaks':>5}  frameworks (current/peak)"]
        for row in self.rows():
            fw = ", ".join(f"{name} {_b(cur)}/{_b(peak)}" for name, (cur, peak) in row["frameworks"].items())
            lines.append(f"{row['worker'][-24:]:<24} {_b(row['reserved']):>13} "
                         f"{_b(row['reserved_high']):>10} {_b(row['used']):>10} {_b(row['used_high']):>10} "
                         f"{row['events']:>6} "
                         f"{row['leaks']:>5}  {fw or row['resource']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _report_here() -> dict[str, Any]:
    return memory_report().to_dict()


def report(client: Any) -> ClusterReport:
    """Gather every worker's ``zerocopy.memory.report()`` into one table."""
    return ClusterReport(dict(client_of(client).run(_report_here)))
