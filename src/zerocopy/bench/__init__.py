"""``zerocopy bench PART``: one module per part (exchange, layout, memory, gpu).

Every part module has ``add_arguments(parser)`` and ``main(args)``. Results are printed as
a table and, with ``--json PATH``, written for the notes. Ratios are always measured side
by side in one run: ours vs the framework's own one-liner vs memcpy.
"""

from __future__ import annotations

import argparse
import importlib

PARTS: dict[str, str] = {
    "exchange": "zerocopy.bench.exchange",
    "layout": "zerocopy.bench.layout",
    "memory": "zerocopy.bench.memory",
    "dask": "zerocopy.bench.dask",
    "all": "zerocopy.bench.all",   # every part above, then report.md with PNG charts
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parts = parser.add_subparsers(dest="part", metavar="PART", required=True)
    for name, module_name in PARTS.items():
        sub = parts.add_parser(name, help=f"{name} benchmark")
        sub.set_defaults(_part=module_name)
        # Part modules import no framework at module level: cheap to import all of them.
        importlib.import_module(module_name).add_arguments(sub)


def main(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._part).main(args) or 0)
