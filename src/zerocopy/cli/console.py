"""Terminal output for the command line: rich consoles, tables, progress, one-line errors.

Only the CLI imports this module (``import zerocopy`` never imports rich). Rich detects
on its own whether stdout is a terminal: in a pipe or a CI log it prints plain text with
no colour codes, and progress bars (drawn on stderr, transient) print nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["err", "error_line", "escape", "out", "progress", "status_style", "table"]

# What the status letters of the matrix and the benches mean, and their colours.
STATUS_STYLE = {"Z": "bold green", "C": "yellow", "E": "red", "n/a": "dim"}


@cache
def _console(stderr: bool) -> Console:
    # highlight=False: numbers and paths in our text are data, not something to colour.
    # A pipe or a CI log has no width: lay tables out at 200 columns there, not 80.
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    width = None if terminal or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=not terminal, width=width)


def out() -> Console:
    """The console on stdout (results)."""
    return _console(False)


def err() -> Console:
    """The console on stderr (progress, errors, notes)."""
    return _console(True)


def reset() -> None:
    """Forget the consoles (tests swap sys.stdout for capture)."""
    _console.cache_clear()


def status_style(status: str) -> str:
    return STATUS_STYLE.get(status, "")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
          styles: Mapping[int, Callable[[str], str]] | None = None) -> Table:
    """A table that folds long cells to fit the terminal; ``styles[i](cell)`` colours column i."""
    view = Table(title=title, title_justify="left", header_style="bold", expand=False,
                 show_edge=False, pad_edge=False)
    for name in columns:
        view.add_column(name, overflow="fold")
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = escape(str(cell))
            style = styles.get(i) if styles else None
            cells.append(f"[{style(str(cell))}]{text}[/]" if style and style(str(cell)) else text)
        view.add_row(*cells)
    return view


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[..., None]]:
    """A transient progress bar on stderr; yields ``step(label, advance=1)`` to call after
    each item (``advance=0`` only changes the label, e.g. while frameworks import).

    Drawn only on a terminal (``ZEROCOPY_PROGRESS=0`` turns it off there too)."""
    console = err()
    if not console.is_terminal or os.environ.get("ZEROCOPY_PROGRESS") == "0":
        yield lambda label, advance=1: None
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[label]}", style="dim"),
                   console=console, transient=True)
    with bar:
        task = bar.add_task(description, total=total, label="")

        def step(label: str, advance: int = 1) -> None:
            bar.update(task, advance=advance, label=label)

        yield step


def error_line(exc: BaseException) -> str:
    """One line for an error: its message (which ends with a hint), never a traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text
