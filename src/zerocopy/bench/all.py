"""``zerocopy bench all --out DIR``: every benchmark part, then report.md with PNG charts.

Each part runs in its own process (``zerocopy bench PART --json DIR/PART.json``), so one
part's caches, pools and threads do not colour the next; its printed tables go to
``DIR/PART.log``. The charts show ratios measured side by side in one run: exchange, our
call vs the framework's own one-liner; layout, ours and the one-liners vs memcpy; memory,
the cost per allocation of each adaptor chain. A part that fails is reported as failed
(with the end of its log) and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zerocopy.bench import PARTS
from zerocopy.errors import InvalidArgumentError, message

__all__ = ["add_arguments", "main"]

# part -> extra arguments for a quick run (CI) and for a full run
QUICK = {"exchange": ["--quick"], "layout": ["--mb", "8", "--repeat", "3"], "memory": ["--quick"],
         "dask": ["--mb", "16", "--repeat", "1"]}
FULL: dict[str, list[str]] = {"exchange": [], "layout": [], "memory": [], "dask": []}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="write report.md, PNGs, JSON and logs here")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (CI-sized)")
    parser.add_argument("--gpu", action="store_true", help="also the GPU cases of each part")
    parser.add_argument("--parts", default=None, help="comma-separated subset (default: every part)")


def _parts(args: argparse.Namespace) -> list[str]:
    every = [p for p in PARTS if p != "all"]
    asked = every if not args.parts else [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in asked if p not in every]
    if unknown:
        raise InvalidArgumentError(message(f"--parts: unknown part {', '.join(map(repr, unknown))}",
                                           expected="comma-separated names from " + ", ".join(every)))
    return asked


def _run(part: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    extra = (QUICK if args.quick else FULL).get(part, [])
    cmd = [sys.executable, "-m", "zerocopy", "bench", part, "--json", str(out / f"{part}.json"),
           *extra, *(["--gpu"] if args.gpu else [])]
    log = out / f"{part}.log"
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    data = None
    if code == 0 and (out / f"{part}.json").exists():
        data = json.loads((out / f"{part}.json").read_text())
    return {"part": part, "exit": code, "command": " ".join(["zerocopy", *cmd[3:]]), "data": data,
            "log": log.read_text()}


def main(args: argparse.Namespace) -> int:
    from zerocopy.cli.console import out as console_out
    from zerocopy.cli.console import progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = _parts(args)
    results = []
    with progress(len(parts), "bench all") as step:
        for part in parts:
            step(part, advance=0)
            results.append(_run(part, args, out))
            step(part)
    pictures = charts(results, out)
    report = write(results, pictures, out)
    console = console_out()
    for r in results:
        state = "ok" if r["exit"] == 0 else f"FAILED (exit {r['exit']}, see {r['part']}.log)"
        console.print(f"{r['part']:<9} {state}", markup=False)
    console.print(f"report: {report}", markup=False)
    return 0 if all(r["exit"] == 0 for r in results) else 1


# ---------------------------------------------------------------------------- charts

def _exchange(plt: Any, data: dict[str, Any]) -> Any:
    rows = data["rows"]
    size = max(r["bytes"] for r in rows)
    rows = sorted((r for r in rows if r["bytes"] == size), key=lambda r: r["native_s"] / r["ours_s"])
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(rows))))
    ratios = [r["native_s"] / r["ours_s"] for r in rows]
    colours = ["#1b9e77" if not r["ours_copies"] else "#f0a202" for r in rows]
    ax.barh(range(len(rows)), ratios, color=colours)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [r["pair"] for r in rows], fontsize=7)
    ax.set_xlabel("one-liner time / zerocopy.to time (> 1: zerocopy faster; orange: ours copies too)")
    ax.set_title(f"exchange at {size / 2**20:g} MiB: ratio to the framework's own one-liner")
    return fig


def _layout(plt: Any, data: dict[str, Any]) -> Any:
    rows = [r for r in data["rows"] if r["kind"] != "memcpy" and "vs_memcpy" in r.get("extra", {})]
    sections = list(dict.fromkeys(r["section"] for r in rows))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fig, ax = plt.subplots(figsize=(12, max(3, 0.45 * len(sections))))
    width = 0.8 / max(1, len(kinds))
    for i, kind in enumerate(kinds):
        best = [max((r["extra"]["vs_memcpy"] for r in rows if r["section"] == s and r["kind"] == kind),
                    default=0.0) for s in sections]
        ax.barh(np.arange(len(sections)) + i * width, best, width, label=kind)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(sections)) + 0.4 - width / 2, sections, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed as a fraction of memcpy (1 = memcpy speed), best per kind")
    ax.set_title("layout: records <-> columns, tables <-> tensors")
    ax.legend(fontsize=7)
    return fig


def _memory(plt: Any, data: dict[str, Any]) -> Any:
    rows = data["host"]["alloc_free_pair_us"]
    sizes = [k for k in rows[0] if k != "chain"]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.4 * len(rows))))
    width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        ax.barh(np.arange(len(rows)) + i * width, [r[size] for r in rows], width, label=size)
    ax.set_yticks(np.arange(len(rows)) + 0.4 - width / 2, [r["chain"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("microseconds per allocate + deallocate pair (host resource)")
    ax.set_title("memory: cost of each adaptor chain")
    ax.legend(fontsize=7)
    return fig


CHARTS = {"exchange": _exchange, "layout": _layout, "memory": _memory}


def charts(results: list[dict[str, Any]], out: Path) -> dict[str, str]:
    """part -> picture file, for the parts that ran and have a chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = {}
    for r in results:
        draw = CHARTS.get(r["part"])
        if draw is None or r["data"] is None:
            continue
        try:
            fig = draw(plt, r["data"])
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
            r["chart_error"] = f"{type(exc).__name__}: {exc}"   # a new row format: say so
            continue
        fig.tight_layout()
        fig.savefig(out / f"{r['part']}.png", dpi=90)
        plt.close(fig)
        made[r["part"]] = f"{r['part']}.png"
    return made


def write(results: list[dict[str, Any]], pictures: dict[str, str], out: Path) -> Path:
    lines = ["# zerocopy benchmarks", "",
             "Every part ran in its own process; ratios are measured side by side in one run.", ""]
    for r in results:
        lines += [f"## {r['part']}", "", f"`{r['command']}`", ""]
        if r["exit"] != 0:
            tail = "\n".join(r["log"].splitlines()[-15:])
            lines += [f"**failed** (exit {r['exit']}); the end of `{r['part']}.log`:", "",
                      "```", tail, "```", ""]
            continue
        if r["part"] in pictures:
            lines += [f"![{r['part']}]({pictures[r['part']]})", ""]
        if "chart_error" in r:
            lines += [f"(no chart: {r['chart_error']})", ""]
        lines += [f"Full output: `{r['part']}.log`, rows: `{r['part']}.json`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
