"""``zerocopy matrix``: the live conversion matrix, every ordered pair really converted.

Each cell is proven by ``zerocopy.testing.probe_pair`` (same pointer AND a write seen for
"Z"); nothing is hard-coded: the cells come from running the conversions here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from zerocopy import _cuda
from zerocopy._dtypes import SHARED_DTYPES
from zerocopy._report import framework_report
from zerocopy.cli import args as cli_args
from zerocopy.cli.matrix_png import draw
from zerocopy.errors import DeviceError, FrameworkNotInstalledError, InvalidArgumentError, message
from zerocopy.registry import FRAMEWORKS, adapter, installed, names
from zerocopy.testing import Cell, probe_pair

# The frameworks of the main environment whose objects can live in host memory, and those
# the GPU matrix can build device arrays of (the registry's main_env and device_probe).
DEFAULT = list(names(memory=("host", "both"), main_env=True))
GPU_DEFAULT = list(names(device_probe=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--frameworks", default=",".join(DEFAULT),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--dtypes", default="float32",
                        help="comma-separated dtypes, or 'all' (default: %(default)s)")
    parser.add_argument("--gpu", action="store_true",
                        help="device arrays on cuda:0 between the GPU frameworks "
                             "(added by default where a GPU exists)")
    parser.add_argument("--png", metavar="FILE",
                        help="also draw the protocol grid and the conversion grids into FILE")


def _has_gpu() -> bool:
    """A CUDA device is visible, and CuPy (the GPU matrix's device probes) is installed."""
    if not installed("cupy"):
        return False
    try:
        return _cuda.device_count() > 0
    except Exception:  # no binding, no driver or no device
        return False


def _checked(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The frameworks and dtypes asked for, validated (one-line errors, exit 2)."""
    frameworks = cli_args.frameworks(args.frameworks, FRAMEWORKS)
    dtypes = list(SHARED_DTYPES) if args.dtypes == "all" else [
        d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in SHARED_DTYPES]
    if unknown or not dtypes:
        raise InvalidArgumentError(message(
            f"--dtypes: unknown dtype {', '.join(map(repr, unknown))}" if unknown
            else "--dtypes names no dtype", expected="'all' or comma-separated names from "
            + ", ".join(SHARED_DTYPES)))
    return frameworks, dtypes


def _measure(frameworks: list[str], dtypes: list[str], gpu: bool) -> list[Cell]:
    from zerocopy.cli.console import progress

    todo = pairs(frameworks, dtypes)
    with progress(len(todo), "GPU matrix" if gpu else "matrix") as step:
        return matrix(frameworks, dtypes, gpu=gpu, step=step)


def main(args: argparse.Namespace) -> int:
    frameworks, dtypes = _checked(args)
    missing = [f for f in frameworks if not installed(f)]
    gpu_frameworks = [f for f in GPU_DEFAULT if installed(f)]
    with_gpu = args.gpu or (args.frameworks == ",".join(DEFAULT) and _has_gpu())
    if args.gpu and not _has_gpu():
        raise DeviceError(message("--gpu needs a CUDA GPU and CuPy; none found here",
                                  hint="run the CPU matrix without --gpu"))
    if not args.gpu and len(frameworks) - len(missing) < 2:
        raise FrameworkNotInstalledError(message(
            "The matrix needs two installed frameworks",
            got=f"{', '.join(f for f in frameworks if f not in missing) or 'none'} installed; "
                f"not installed here: {_install_hints(missing)}",
            hint="`zerocopy doctor` shows what is installed"))
    cells = [] if args.gpu else _measure(frameworks, dtypes, gpu=False)
    gpu_cells = _measure(gpu_frameworks, dtypes, gpu=True) if with_gpu else []
    if args.format == "json":
        print(json.dumps({"machine": platform.node(), "versions": versions(frameworks + gpu_frameworks),
                          "cells": as_json(cells), "gpu_cells": as_json(gpu_cells)}, indent=1))
    elif args.format == "markdown":
        if cells:
            print(render(cells, frameworks, dtypes, markdown=True))
        if gpu_cells:
            print("\n## GPU (device arrays on cuda:0)\n")
            print(render(gpu_cells, gpu_frameworks, dtypes, markdown=True))
    else:
        _show(cells, frameworks, dtypes, "")
        _show(gpu_cells, gpu_frameworks, dtypes, "GPU (device arrays on cuda:0): ")
    if missing:
        from zerocopy.cli.console import err

        err().print(f"skipped, not installed here: {_install_hints(missing)}", style="yellow",
                    markup=False)
    if args.png:
        draw(args.png, cells, gpu_cells, dtypes, framework_report())
    bugs = [c for c in cells + gpu_cells if c.reason.startswith("BUG")]
    return 1 if bugs else 0


def pairs(frameworks: list[str], dtypes: list[str]) -> list[tuple[str, str, str]]:
    """(source, target, dtype) of every cell over the installed ``frameworks``."""
    names = [n for n in frameworks if installed(n)]
    return [(source, target, dtype) for dtype in dtypes
            for source, target in itertools.product(names, names) if source != target]


def matrix(frameworks: list[str], dtypes: list[str], gpu: bool = False,
           step: Callable[[str], None] | None = None) -> list[Cell]:
    """Every cell; ``step(label)`` is called after each one (the CLI's progress bar)."""
    cells = []
    for source, target, dtype in pairs(frameworks, dtypes):
        cells.append(probe_pair(source, target, dtype, gpu=gpu))
        if step is not None:
            step(f"{source}->{target} {dtype}")
    return cells


def as_json(cells: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(c) for c in cells]


def versions(frameworks: list[str]) -> dict[str, str]:
    return {n: adapter(n).version() for n in frameworks if installed(n)}


def _install_hints(missing: list[str]) -> str:
    return ", ".join(f"{n} (pip install {adapter(n).PIP})" for n in missing)


def summary(cells: list[Cell]) -> str:
    counts = Counter(c.status for c in cells)
    pairs_ = len({(c.source, c.target) for c in cells})
    dtypes = len({c.dtype for c in cells})
    return (f"{len(cells)} cells ({pairs_} ordered pairs x {dtypes} dtype{'s' if dtypes > 1 else ''}): "
            f"{counts['Z']} zero-copy (pointer + write proven), {counts['C']} copy, "
            f"{counts['E']} typed error, {counts['n/a']} n/a")


def _show(cells: list[Cell], frameworks: list[str], dtypes: list[str], title: str) -> None:
    """Summary first, then one coloured grid per dtype, then the reasons for non-Z cells."""
    if not cells:
        return
    from zerocopy.cli.console import out, status_style, table

    console = out()
    console.print(f"[bold]{title}{summary(cells)}[/]")
    names = [f for f in frameworks if any(c.source == f for c in cells)]
    for dtype in dtypes:
        grid = {(c.source, c.target): c.status for c in cells if c.dtype == dtype}
        rows = [(s, *("-" if s == t else grid[(s, t)] for t in names)) for s in names]
        styles = dict.fromkeys(range(1, len(names) + 1), status_style)
        console.print()
        console.print(table((f"{dtype}: src \\ dst", *names), rows, styles=styles))
    console.print("\nZ zero-copy (same pointer and a write seen), C copy, E typed error, "
                  "n/a the source cannot hold the dtype", style="dim")
    notes = [c for c in cells if c.status != "Z"]
    if notes:
        console.print()
        console.print(table(("pair", "dtype", "status", "route", "reason"),
                            [(f"{c.source}->{c.target}", c.dtype, c.status, c.route, c.reason)
                             for c in notes], styles={2: status_style}))


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
