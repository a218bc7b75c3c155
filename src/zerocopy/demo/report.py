"""What the user sees: the summary and tables (rich), and ``--out``: report.md with PNG charts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from zerocopy._units import human_bytes as _b  # short: it fills table rows

__all__ = ["print_report", "write_report"]

MODES = ("naive", "zerocopy")
COLORS = {"naive": "#d95f02", "zerocopy": "#1b9e77"}


def _x(r: float | None) -> str:
    return f"{r:.2f}x" if r else "-"


def summary_lines(s: dict[str, Any], match: dict[str, Any], device: str) -> list[str]:
    n, z = s["naive"], s["zerocopy"]
    lines = [
        f"zerocopy demo on {device}: {z['beats']} beats, mean heart rate {z['heart_rate']:.1f} bpm",
        *_cluster_lines(z.get("cluster")),
        f"  pipeline time     naive {n['seconds']:7.2f} s   zerocopy {z['seconds']:7.2f} s   "
        f"speed-up {_x(s['speedup'])}   (CPU time {n['cpu_seconds']:.1f} s vs {z['cpu_seconds']:.1f} s)",
        f"  data movement     naive {n['handoff_seconds']:7.3f} s   zerocopy {z['handoff_seconds']:7.3f} s   "
        f"speed-up {_x(s['handoff_speedup'])}   (all hand-offs between frameworks)",
        f"  peak host memory  naive {_b(n['peak_host_bytes']):>9}   zerocopy {_b(z['peak_host_bytes']):>9}   "
        f"ratio {_x(s['host_memory_ratio'])}",
    ]
    if s.get("device_memory_ratio"):
        lines.append(f"  peak GPU memory   naive {_b(n['peak_device_bytes']):>9}   zerocopy "
                     f"{_b(z['peak_device_bytes']):>9}   ratio {_x(s['device_memory_ratio'])}")
    lines.append(f"  bytes copied      naive {_b(n['bytes_copied']):>9}   zerocopy {_b(z['bytes_copied']):>9}"
                 f"   (of {_b(n['bytes_handed'])} handed over)")
    lines.append(f"  results match: {'yes' if match['ok'] else 'NO'} ({match['tolerance']})")
    return lines


def _cluster_lines(cluster: dict[str, Any] | None) -> list[str]:
    if not cluster:
        return []
    workers = cluster.get("workers", [])
    return [f"  on Dask           {cluster['kind']}: load, filter, peaks, beats in "
            f"{cluster.get('partitions', '?')} record partitions on {len(workers)} worker(s); "
            "train onward here"]


def cluster_section(runs: dict[str, dict[str, Any]]) -> list[str]:
    """report.md: where each way ran its record stages, per worker, and the workers'
    memory reports (zerocopy.dask.report)."""
    if not any(runs[m].get("cluster") for m in MODES):
        return ["## Where it ran", "", "One process per way (no cluster).", ""]
    lines = ["## Where it ran", ""]
    for m in MODES:
        c = runs[m]["cluster"]
        lines += [f"**{m}**: {c['mode']} - {c['kind']} (scheduler `{c['address']}`), "
                  f"{c.get('partitions')} record partitions; stages load..beats took "
                  f"{c.get('records_seconds', 0):.2f} s wall on the workers.", "",
                  "| worker | pid | partitions | records | task seconds | peak resident |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| `{w['address']}` | {w['pid']} | {w['partitions']} | {w['records']} | "
                  f"{w['seconds']:.2f} | {_b(w['peak_host_bytes'])} |" for w in c.get("workers", [])]
        lines += ["", "Memory report per worker (`zerocopy.dask.report`):", "",
                  "| worker | resource | pool reserved | pool peak | leaks |", "|---|---|---:|---:|---:|"]
        lines += [f"| `{r['worker']}` | {r['resource']} | {_b(r['reserved'])} | "
                  f"{_b(r['reserved_high'])} | {r['leaks']} |" for r in c.get("report", [])]
        for worker, setup in sorted(c.get("setup", {}).items()):
            pool = setup["pool"]
            state = "installed" if pool.get("installed") else f"not installed: {pool.get('reason', '')}"
            names = ", ".join(setup["serializers"])
            lines.append(f"- `{worker}`: serializers for {names}; shared pool {state}")
        lines.append("")
    return lines


def print_report(runs: dict[str, dict[str, Any]], s: dict[str, Any], match: dict[str, Any],
                 device: str, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print("\n".join(summary_lines(s, match, device)), highlight=False)
    stages = Table(title="stages (seconds, bytes copied, peak host memory)")
    for col in ("stage", "naive s", "zerocopy s", "speed-up", "naive copied", "zerocopy copied",
                "naive peak", "zerocopy peak"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    by = {m: {r["stage"]: r for r in runs[m]["stages"]} for m in MODES}
    for name in by["naive"]:
        a, b = by["naive"][name], by["zerocopy"].get(name)
        if b is None:
            continue
        stages.add_row(name, f"{a['seconds']:.3f}", f"{b['seconds']:.3f}",
                       _x(a["seconds"] / b["seconds"] if b["seconds"] else None),
                       _b(a["bytes_copied"]), _b(b["bytes_copied"]), _b(a["peak_bytes"]), _b(b["peak_bytes"]))
    console.print(stages)
    ledger = Table(title="copy ledger (every hand-off between frameworks)")
    for col in ("way", "stage", "src -> dst", "bytes", "copied", "ms", "call / why it copied"):
        ledger.add_column(col, justify="right" if col in {"bytes", "copied", "ms"} else "left")
    for m in MODES:
        for h in runs[m]["handoffs"]:
            why = h["call"] + (f"  [{h['reason']}]" if h["reason"] and h["copied_bytes"] else "")
            why += f"  (x{h['partitions']} partitions)" if h.get("partitions") else ""
            ledger.add_row(m, h["stage"], f"{h['src']} -> {h['dst']}", _b(h["nbytes"]), _b(h["copied_bytes"]),
                           f"{h['seconds'] * 1e3:.2f}", escape(why))
    console.print(ledger)


def _charts(runs: dict[str, dict[str, Any]], work: Path, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    for draw in (_stage_chart, _ledger_chart, _memory_chart, _timeline_chart, _beats_chart):
        drawn = draw(plt, runs, work)
        if drawn is None:
            continue
        fig, name = drawn
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names


def _stage_chart(plt: Any, runs: dict[str, Any], work: Path) -> tuple[Any, str]:
    stages = [r["stage"] for r in runs["naive"]["stages"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    y = np.arange(len(stages))
    for i, m in enumerate(MODES):
        secs = {r["stage"]: r["seconds"] for r in runs[m]["stages"]}
        ax.barh(y + (i - 0.5) * 0.4, [secs.get(s, 0) for s in stages], 0.4, label=m, color=COLORS[m])
    ax.set_yticks(y, stages)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("stage times, both ways")
    ax.legend()
    return fig, "stage_times.png"


def _ledger_chart(plt: Any, runs: dict[str, Any], work: Path) -> tuple[Any, str]:
    # Each way has its own hand-offs (on a GPU the zerocopy way hands a column block to two
    # frameworks where the naive way copies once), so each gets its own rows.
    rows = max(len(runs[m]["handoffs"]) for m in MODES)
    fig, axes = plt.subplots(2, 2, figsize=(11, 2.2 + 0.45 * rows), sharex="col")
    for row, m in zip(axes, MODES, strict=True):
        handoffs = runs[m]["handoffs"]
        labels = [f"{h['stage']}: {'results' if '+' in h['src'] else h['src']} -> {h['dst']}"
                  for h in handoffs]
        y = np.arange(len(handoffs))
        for ax, key, scale, title in ((row[0], "seconds", 1e3, "hand-off time (ms)"),
                                      (row[1], "copied_bytes", 1 / 2**20, "bytes copied (MiB)")):
            ax.barh(y, [h[key] * scale for h in handoffs], 0.6, color=COLORS[m])
            ax.set_yticks(y, labels if ax is row[0] else [""] * len(y), fontsize=7)
            ax.invert_yaxis()
            ax.set_title(f"{m}: {title}", fontsize=9)
    fig.tight_layout()
    return fig, "ledger.png"


def _memory_chart(plt: Any, runs: dict[str, Any], work: Path) -> tuple[Any, str]:
    stages = [r["stage"] for r in runs["naive"]["stages"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    for m in MODES:
        peaks = [r["peak_bytes"] / 2**20 for r in runs[m]["stages"]]
        ax.plot(stages, peaks, "o-", label=f"{m} host", color=COLORS[m])
        dev = [r.get("peak_device_bytes") for r in runs[m]["stages"]]
        if any(d is not None for d in dev):
            ax.plot(stages, [(d or 0) / 2**20 for d in dev], "s--", label=f"{m} GPU", color=COLORS[m])
    ax.set_ylabel("peak MiB in the stage")
    ax.set_title("memory per stage (host: resident set; GPU: device memory in use)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    return fig, "memory.png"


def _timeline_chart(plt: Any, runs: dict[str, Any], work: Path) -> tuple[Any, str] | None:
    stages = [r["stage"] for r in runs["naive"]["stages"]]
    frameworks = sorted({f for m in MODES for r in runs[m]["stages"] for f in r.get("memory", {})})
    if not frameworks:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, m in zip(axes, MODES, strict=True):
        for f in frameworks:
            held = [r.get("memory", {}).get(f, 0) / 2**20 for r in runs[m]["stages"]]
            ax.plot(stages, held, "o-", label=f)
        ax.set_title(f"{m}: GPU memory per framework (end of stage)")
        ax.tick_params(axis="x", rotation=30)
    axes[0].set_ylabel("MiB")
    axes[0].legend()
    return fig, "memory_timeline.png"


def _beats_chart(plt: Any, runs: dict[str, Any], work: Path) -> tuple[Any, str]:
    data = np.load(work / "zerocopy.npz")
    fs = runs["zerocopy"]["fs"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6))
    sig = data["filtered"][0]
    top.plot(np.arange(sig.size) / fs, sig, lw=0.8, color="black")
    peaks = data["peak_cols"][(data["peak_rows"] == 0) & (data["peak_cols"] < sig.size)]
    top.plot(peaks / fs, sig[peaks], "v", color=COLORS["naive"], label="R-peaks")
    top.set_xlabel("seconds")
    top.set_ylabel("mV (band-passed)")
    top.set_title("record 0: filtered signal and detected R-peaks")
    top.legend()
    examples = data["examples"]
    w = examples.shape[2]
    for i in range(examples.shape[1]):
        x = np.arange(w) + i * (w + 10)
        bottom.plot(x, examples[0, i], color="black", lw=0.9, label="beat" if i == 0 else None)
        bottom.plot(x, examples[1, i], color=COLORS["zerocopy"], lw=1.2,
                    label="autoencoder reconstruction" if i == 0 else None)
    bottom.set_xticks([])
    bottom.set_title("example beats and their reconstructions")
    bottom.legend()
    return fig, "beats.png"


def write_report(runs: dict[str, dict[str, Any]], s: dict[str, Any], match: dict[str, Any],
                 device: str, work: Path, out: Path, config: dict[str, Any]) -> Path:
    """``out/report.md`` with the PNG charts beside it and the result tables (Parquet)."""
    out.mkdir(parents=True, exist_ok=True)
    pictures = _charts(runs, work, out)
    for m in MODES:
        shutil.copyfile(runs[m]["result"], out / f"beats-{m}.parquet")
    lines = ["# zerocopy demo report", "", "```", *summary_lines(s, match, device), "```", "",
             f"Configuration: `{config}`", "", "## Stages", "",
             "| stage | naive s | zerocopy s | naive copied | zerocopy copied | naive peak | zerocopy peak |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    by = {m: {r["stage"]: r for r in runs[m]["stages"]} for m in MODES}
    for name, a in by["naive"].items():
        b = by["zerocopy"][name]
        lines.append(f"| {name} | {a['seconds']:.3f} | {b['seconds']:.3f} | {_b(a['bytes_copied'])} | "
                     f"{_b(b['bytes_copied'])} | {_b(a['peak_bytes'])} | {_b(b['peak_bytes'])} |")
    lines += ["", "## Copy ledger", "",
              "| way | stage | src -> dst | bytes | copied | ms | call | why it copied |",
              "|---|---|---|---:|---:|---:|---|---|"]
    for m in MODES:
        for h in runs[m]["handoffs"]:
            where = f" (x{h['partitions']} partitions)" if h.get("partitions") else ""
            lines.append(f"| {m} | {h['stage']} | {h['src']} -> {h['dst']} | {_b(h['nbytes'])} | "
                         f"{_b(h['copied_bytes'])} | {h['seconds'] * 1e3:.2f} | `{h['call']}`{where} | "
                         f"{h['reason'] if h['copied_bytes'] else ''} |")
    lines += ["", *cluster_section(runs)]
    lines += ["## Pictures", ""]
    lines += [f"![{p}]({p})" for p in pictures]
    lines += ["", "Results: " + ", ".join(f"`beats-{m}.parquet`" for m in MODES), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
