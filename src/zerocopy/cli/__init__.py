"""zerocopy command line: doctor | matrix | explain | bench PART | memory | demo.

Each command lives in its own module, named here as data and imported only when run, so
``zerocopy --help`` stays fast and imports no framework. A command module has
``add_arguments(parser)`` and ``main(args) -> int``.

This is the boundary: no exception leaves ``main``. A mistake (an unknown option, a bad
``--shape``, a framework that is not installed, a typed zerocopy error) is one line on
stderr with a hint and exit status 2; anything else is one line and status 1. ``--debug``
(or ``ZEROCOPY_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from zerocopy import __version__
from zerocopy.errors import ZeroCopyError

__all__ = ["main"]

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("zerocopy.cli.doctor", "frameworks, versions, devices and protocols found here"),
    "matrix": ("zerocopy.cli.matrix", "live support and conversion matrix (really converts probes)"),
    "explain": ("zerocopy.cli.explain", "show the conversion plan from SRC to DST for a probe array"),
    "bench": ("zerocopy.bench", "benchmarks against the frameworks' own one-liners"),
    "memory": ("zerocopy.cli.memory", "shared GPU pool report: reserved, used, per framework, leaks"),
    "demo": ("zerocopy.demo.cli", "the ECG pipeline both ways (naive vs zerocopy): ledger, memory, report"),
}


DISTRIBUTION = "zerocopy-ml"  # the name on the package index; the import name is zerocopy


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line with a hint (exit 2), not a usage dump."""

    def error(self, text: str) -> NoReturn:
        _print_error(f"{self.prog}: {text}. Hint: `{self.prog} --help` lists the options.")
        raise SystemExit(2)


def _version() -> str:
    return f"zerocopy {__version__} ({DISTRIBUTION}, Python {sys.version.split()[0]})"


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="zerocopy", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks instead of one-line errors (also ZEROCOPY_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        # Arguments are only known once the module is imported; import just the chosen one.
        if name in argv:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _print_error(text: str) -> None:
    from zerocopy.cli.console import err, escape

    err().print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ZEROCOPY_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        args = _parser(argv).parse_args(argv)
        return int(importlib.import_module(args._module).main(args) or 0)
    except BrokenPipeError:  # `zerocopy doctor | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stays open until exit)
        return 1
    except (SystemExit, KeyboardInterrupt) as exc:
        if isinstance(exc, KeyboardInterrupt):
            _print_error("interrupted")
            return 130
        raise
    except Exception as exc:
        if debug:
            raise
        return _report(exc)


def _report(exc: Exception) -> int:
    from zerocopy.cli.console import error_line
    if isinstance(exc, ZeroCopyError):
        _print_error(error_line(exc))
        return 2
    _print_error(f"{type(exc).__name__}: {error_line(exc)} (unexpected: `zerocopy --debug ...` "
                 "shows the traceback; please report it)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
