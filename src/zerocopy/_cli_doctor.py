"""``zerocopy doctor``: frameworks, versions, devices and protocols found here."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from zerocopy._report import framework_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    rows = framework_report()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"zerocopy doctor  (Python {sys.version.split()[0]}, {platform.machine()}, {platform.node()})")
    for row in rows:
        state = row["version"] if row["installed"] and not row["error"] else (row["error"] or "?")
        print(f"\n{row['name']:<11} {state}")
        if row["devices"]:
            print(f"  devices: {', '.join(row['devices'])}")
        print(f"  exports: {'; '.join(row['exports'])}")
        print(f"  imports: {'; '.join(row['imports'])}")
    return 0
