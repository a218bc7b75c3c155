"""``zerocopy doctor``: frameworks, versions, devices and protocols found here."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from zerocopy import __version__, _native
from zerocopy._report import framework_row
from zerocopy.exchange import dlpack
from zerocopy.registry import FRAMEWORKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--protocols", action="store_true",
                        help="also the protocols each framework exports and imports "
                             "(shown anyway on a terminal 150 columns wide)")


def _rows() -> list[dict[str, Any]]:
    from zerocopy.cli.console import progress

    rows = []
    with progress(len(FRAMEWORKS), "asking each framework") as step:
        for name in FRAMEWORKS:
            rows.append(framework_row(name))
            step(name)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    ready = [r["name"] for r in rows if r["installed"] and not r["error"]]
    gpus = sorted({d for r in rows for d in r["devices"] if d.startswith(("cuda", "gpu"))})
    return (f"zerocopy {__version__} on Python {sys.version.split()[0]} ({platform.machine()}, "
            f"{platform.node()}): {len(ready)} of {len(rows)} frameworks ready; "
            f"GPU: {', '.join(gpus) if gpus else 'none found (CPU only; GPU frameworks skip)'}")


def main(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from zerocopy.cli.console import out, table

    console = out()
    console.print(f"[bold]{summary(rows)}[/]")
    console.print(f"DLPack capsules: {dlpack.backend()}", style="dim", markup=False)
    console.print(f"C++ part (zerocopy._raise): {_native.cxx_part()}", style="dim", markup=False)

    def state(row: dict[str, Any]) -> str:
        if row["installed"] and not row["error"]:
            return "ready"
        return "broken" if row["installed"] else "missing"

    styles = {1: lambda s: {"ready": "green", "broken": "bold red", "missing": "yellow"}.get(s, "")}
    wide = console.width >= 150 or args.protocols  # protocols need room: fold them only if asked
    columns = ("framework", "state", "version", "devices") + (("exports", "imports") if wide else ())
    body = [(r["name"], state(r), r["version"] or "-", ", ".join(r["devices"]) or "-")
            + (("; ".join(r["exports"]), "; ".join(r["imports"])) if wide else ()) for r in rows]
    console.print(table(columns, body, styles=styles))
    if not wide:
        console.print("protocols each one exports and imports: zerocopy doctor --protocols (or --json)",
                      style="dim", markup=False)
    notes = [f"{r['name']}: {r['error']}" for r in rows if r["error"]]
    if notes:
        console.print("\n[bold]missing or broken[/]")
        for note in notes:
            console.print(f"  {note}", style="yellow", markup=False)
    return 0
