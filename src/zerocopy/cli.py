"""``zerocopy`` command line: doctor | matrix | explain | bench PART | memory.

Each command lives in its own module, named here as data and imported only when run, so
``zerocopy --help`` stays fast and imports no framework. A command module has
``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("zerocopy._cli_doctor", "frameworks, versions, devices and protocols found here"),
    "matrix": ("zerocopy._cli_matrix", "live support and conversion matrix (really converts probes)"),
    "explain": ("zerocopy._cli_explain", "show the conversion plan from SRC to DST for a probe array"),
    "bench": ("zerocopy.bench", "benchmarks against the frameworks' own one-liners"),
    "memory": ("zerocopy.memory._cli", "shared GPU pool report: reserved, used, per framework, leaks"),
    "demo": ("zerocopy.demo.cli", "the ECG pipeline both ways (naive vs zerocopy): ledger, memory, report"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zerocopy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        # Arguments are only known once the module is imported; import just the chosen one.
        if name in _wanted_command():
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _wanted_command() -> set[str]:
    return {arg for arg in sys.argv[1:] if arg in COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    args = _parser().parse_args(sys.argv[1:])
    return int(importlib.import_module(args._module).main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
