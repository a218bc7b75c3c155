"""Every ```python block of README.md and docs/*.md runs, and the docstring examples pass.

Blocks of one page run in order in one namespace (a later block may use an earlier one's
names), each as its own test named ``page:line``. A block preceded by a line
``<!-- skip: REASON -->`` is skipped with that reason (GPU-only code). A block followed,
after blank lines only, by an unlabelled fence (or one labelled ``text``) is compared with
what the Python block printed (doctest rules: ``...`` matches anything, whitespace runs
compare equal).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*skip:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    skip: str | None
    expected: str | None


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    fences: list[tuple[str, int, int]] = []  # (language, first line of body, end line)
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if opened:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            fences.append((opened.group(1), i + 1, end))
            i = end
        i += 1
    for n, (language, start, end) in enumerate(fences):
        if language != "python":
            continue
        above = next((lines[j] for j in range(start - 2, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(above)
        expected = None
        if n + 1 < len(fences):
            language_next, start_next, end_next = fences[n + 1]
            between = lines[end + 1:start_next - 1]
            if language_next in ("", "text") and not any(b.strip() for b in between):
                expected = "\n".join(lines[start_next:end_next]) + "\n"
        found.append(Block(path.name, start, "\n".join(lines[start:end]) + "\n",
                           skip.group(1) if skip else None, expected))
    return found


ALL = [b for page in PAGES for b in blocks(page)]
_NAMESPACES: dict[str, dict[str, Any]] = {}


def test_the_pages_have_snippets() -> None:
    assert {b.page for b in ALL} >= {"README.md", "quickstart.md", "copies.md", "layout.md"}
    assert sum(b.expected is not None for b in ALL) >= 3  # outputs are compared, not only run


@pytest.mark.parametrize("block", ALL, ids=[f"{b.page}:{b.line}" for b in ALL])
def test_snippet_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.skip:
        pytest.skip(block.skip)
    namespace = _NAMESPACES.setdefault(block.page, {"__name__": f"docs:{block.page}"})
    monkeypatch.chdir(tmp_path)  # snippets that write files write them here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        # Snippets show the default behaviour; the CopyWarning example records its own.
        warnings.simplefilter("default")
        exec(compile(block.code, f"{block.page}:{block.line}", "exec"), namespace)
    if block.expected is not None:
        checker = doctest.OutputChecker()
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        assert checker.check_output(block.expected, printed.getvalue(), flags), (
            f"{block.page}:{block.line} printed:\n{printed.getvalue()}\nexpected:\n{block.expected}")


@pytest.mark.parametrize("module", ["zerocopy", "zerocopy.copies"])
def test_docstring_examples(module: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def _commands() -> list[tuple[str, str]]:
    """Every `zerocopy ...` line of a console block in README.md and docs/*.md."""
    found = []
    for page in PAGES:
        inside = False
        for line in page.read_text(encoding="utf-8").splitlines():
            fence = _FENCE.match(line)
            if fence:
                inside = not inside and fence.group(1) == "console"
                continue
            command = line.removeprefix("$ ").split("#")[0].strip()
            if inside and command.startswith("zerocopy "):
                found.append((page.name, command))
    return found


@pytest.mark.parametrize(("page", "command"), _commands())
def test_documented_commands_parse(page: str, command: str) -> None:
    import shlex

    from zerocopy.cli import _parser

    argv = shlex.split(command)[1:]
    if argv == ["--version"]:
        return
    args = _parser(argv).parse_args(argv)  # a wrong option would exit 2 with a one-line error
    assert args.command in argv
