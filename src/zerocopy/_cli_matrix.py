"""``zerocopy matrix``: the live support and conversion matrix."""

from __future__ import annotations

import argparse
import json
import platform
from collections import Counter

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy._matrix import Cell, as_json, matrix, versions
from zerocopy.adapters import CPU_FRAMEWORKS, GPU_FRAMEWORKS, installed

DEFAULT = [n for n in CPU_FRAMEWORKS if n != "mxnet"]
GPU_DEFAULT = [n for n in GPU_FRAMEWORKS if n != "cudf"]  # cuDF: no device probe (not on the GPU machine)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--frameworks", default=",".join(DEFAULT),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--dtypes", default="float32",
                        help="comma-separated dtypes, or 'all' (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true",
                        help="device arrays on cuda:0 between the GPU frameworks "
                             "(added by default where a GPU exists)")


def _has_gpu() -> bool:
    if not installed("cupy"):
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver
        return False


def main(args: argparse.Namespace) -> int:
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    dtypes = list(SHARED_DTYPES) if args.dtypes == "all" else args.dtypes.split(",")
    gpu_frameworks = [f for f in GPU_DEFAULT if installed(f)]
    with_gpu = args.gpu or (args.frameworks == ",".join(DEFAULT) and _has_gpu())
    cells = [] if args.gpu else matrix(frameworks, dtypes)
    gpu_cells = matrix(gpu_frameworks, dtypes, gpu=True) if with_gpu else []
    if args.format == "json":
        print(json.dumps({"machine": platform.node(), "versions": versions(frameworks + gpu_frameworks),
                          "cells": as_json(cells), "gpu_cells": as_json(gpu_cells)}, indent=1))
    else:
        markdown = args.format == "markdown"
        if cells:
            print(render(cells, frameworks, dtypes, markdown=markdown))
        if gpu_cells:
            print(("\n## " if markdown else "\n") + "GPU (device arrays on cuda:0)\n")
            print(render(gpu_cells, gpu_frameworks, dtypes, markdown=markdown))
    bugs = [c for c in cells + gpu_cells if c.reason.startswith("BUG")]
    return 1 if bugs else 0


def render(cells: list[Cell], frameworks: list[str], dtypes: list[str], *, markdown: bool) -> str:
    names = [f for f in frameworks if any(c.source == f for c in cells)]
    lines: list[str] = []
    for dtype in dtypes:
        grid = {(c.source, c.target): c for c in cells if c.dtype == dtype}
        lines += [f"### {dtype}: rows = source, columns = target "
                  "(Z zero-copy proven by pointer + write, C copy, E typed error)", ""]
        lines.append("| src \\ dst | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for s in names:
            row = ["—" if s == t else grid[(s, t)].status for t in names]
            lines.append(f"| {s} | " + " | ".join(row) + " |")
        counts = Counter(c.status for c in grid.values())
        lines += ["", f"{counts['Z']} zero-copy, {counts['C']} copy, {counts['E']} typed error, "
                  f"{counts['n/a']} n/a (the source cannot hold the dtype)", ""]
    notes = [c for c in cells if c.status != "Z"]
    if notes:
        lines += ["| pair | dtype | status | route | reason |", "|---|---|---|---|---|"]
        lines += [f"| {c.source}->{c.target} | {c.dtype} | {c.status} | {c.route} | {c.reason} |"
                  for c in notes]
    text = "\n".join(lines)
    return text if markdown else _plain(text)


def _plain(markdown: str) -> str:
    """Markdown tables as aligned plain text, for terminals."""
    out: list[str] = []
    block: list[list[str]] = []

    def flush() -> None:
        if block:
            widths = [max(len(r[i]) for r in block if i < len(r)) for i in range(len(block[0]))]
            out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
                       for r in block)
            block.clear()

    for line in markdown.splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip("|").split("|")])
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)
