"""Argument types for the command line: each accepts what a person types or raises
``InvalidArgumentError`` with a one-line message and a hint (the CLI prints it, exit 2)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from zerocopy.errors import InvalidArgumentError, did_you_mean, message
from zerocopy.registry import ALIASES

__all__ = ["frameworks", "nbytes", "shape", "sizes"]

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def shape(text: str) -> tuple[int, ...]:
    """``1024``, ``64,32``, ``3x4`` or ``(3, 4)``: non-negative integers."""
    parts = [p for p in re.split(r"[x,*\s]+", text.strip().strip("()[]").lower()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise InvalidArgumentError(message(
            "--shape takes dimensions as integers", got=repr(text),
            hint="write it as 1024, 64,32 or 3x4"))
    return tuple(int(p) for p in parts)


def nbytes(text: str) -> int:
    """``1024``, ``64KiB``, ``1MB``, ``256MiB``, ``1.5GB``: a positive number of bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _UNITS:
        raise InvalidArgumentError(message(
            "A size is a number of bytes, optionally with a unit", got=repr(text),
            hint="write it as 1024, 64KiB, 1MB, 256MiB or 1GiB"))
    value = int(float(found.group(1)) * _UNITS[unit])
    if value <= 0:
        raise InvalidArgumentError(message("A size must be positive", got=repr(text)))
    return value


def sizes(text: str) -> list[int]:
    """Comma-separated sizes (see ``nbytes``)."""
    return [nbytes(part) for part in text.split(",") if part.strip()] or [nbytes(text)]


def frameworks(text: str, valid: Iterable[str], *, option: str = "--frameworks",
               one: bool = False) -> list[str]:
    """Comma-separated framework names (aliases such as ``pt`` or ``tf`` accepted), each
    known; a misspelt one is named together with the valid names."""
    valid = list(valid)
    names = [ALIASES.get(p.strip().lower(), p.strip().lower()) for p in text.split(",") if p.strip()]
    if one and len(names) > 1:
        raise InvalidArgumentError(message(f"{option} takes one framework", got=repr(text)))
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        guesses = [did_you_mean(n, valid) for n in unknown]
        raise InvalidArgumentError(message(
            f"{option}: unknown framework {', '.join(map(repr, unknown))}" if unknown
            else f"{option} names no framework",
            expected=("one of " if one else "comma-separated names from ") + ", ".join(valid),
            hint=" ".join([*(g for g in guesses if g), "`zerocopy doctor` shows which are installed here"])))
    return list(dict.fromkeys(names))
