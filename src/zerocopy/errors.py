"""The exception tree.

Every error zerocopy raises derives from :class:`ZeroCopyError` and from the builtin that
users of the frameworks already catch (``BufferError``, ``TypeError``, ...), so existing
``except`` clauses keep working. Messages say what was expected, what came, and end with
a hint.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable, Mapping

__all__ = [
    "DeviceError",
    "FrameworkError",
    "FrameworkNotInstalledError",
    "FrameworkStartedError",
    "InvalidArgumentError",
    "LayoutError",
    "NotZeroCopyError",
    "NullValuesError",
    "OutOfMemoryError",
    "PathNotFoundError",
    "UnsupportedConversionError",
    "UnsupportedDtypeError",
    "UnsupportedObjectError",
    "ZeroCopyError",
    "did_you_mean",
    "message",
]


def message(what: str, *, expected: str | None = None, got: str | None = None,
            hint: str | None = None) -> str:
    """Build the house message: what happened, expected vs got, then a hint."""
    parts = [what.rstrip(".") + "."]
    if expected is not None:
        parts.append(f"Expected {expected}.")
    if got is not None:
        parts.append(f"Got {got}.")
    if hint is not None:
        parts.append(f"Hint: {hint.rstrip('.')}.")
    return " ".join(parts)


def did_you_mean(word: str, choices: Iterable[str] | Mapping[str, str]) -> str | None:
    """"did you mean 'torch'?" for a misspelt ``word`` among ``choices``, or None where
    nothing is close (a hint then says what is valid instead). ``choices`` may map each
    spelling to what it names: one spelling per thing is offered, the closest."""
    close = difflib.get_close_matches(word.lower(), list(dict.fromkeys(choices)), n=6, cutoff=0.6)
    if isinstance(choices, Mapping):
        close = list({choices[c]: c for c in reversed(close)}.values())[::-1]
    return f"did you mean {' or '.join(map(repr, close[:3]))}?" if close else None


class ZeroCopyError(Exception):
    """Root of every error raised by zerocopy."""


class NotZeroCopyError(ZeroCopyError, BufferError):
    """``copy=False`` was asked for, but sharing memory is impossible; the message says why."""


class InvalidArgumentError(ZeroCopyError, TypeError, ValueError):
    """An argument of a zerocopy call has the wrong type or value (``copy="yes"``, an
    unknown device); nothing was converted."""


class UnsupportedConversionError(ZeroCopyError, TypeError):
    """No conversion path exists between the two frameworks for this object."""


class UnsupportedDtypeError(ZeroCopyError, TypeError):
    """The target cannot hold the source dtype without changing it."""


class UnsupportedObjectError(ZeroCopyError, TypeError):
    """The object is of no supported framework, or holds data no tensor can (objects, strings)."""


class FrameworkNotInstalledError(ZeroCopyError, ModuleNotFoundError):
    """The target or a needed framework is not installed."""


class NullValuesError(ZeroCopyError, ValueError):
    """The data has nulls, and the target has no way to represent them."""


class DeviceError(ZeroCopyError, ValueError):
    """Source and target live on devices that the conversion cannot bridge as asked."""


class LayoutError(ZeroCopyError, ValueError):
    """A record or table layout cannot be converted as asked."""


class OutOfMemoryError(ZeroCopyError, MemoryError):
    """A memory resource or limit refused an allocation."""


class PathNotFoundError(ZeroCopyError, FileNotFoundError):
    """A file zerocopy was asked to read (``read_parquet``) does not exist; ``filename``
    names it, and ``except FileNotFoundError`` catches it as before."""

    def __init__(self, text: str, filename: str | None = None) -> None:
        super().__init__(text)
        self.errno, self.filename = errno.ENOENT, filename

    def __str__(self) -> str:  # the house message, not OSError's "[Errno 2] ..." form
        return str(self.args[0]) if self.args else ""


class FrameworkError(ZeroCopyError, RuntimeError):
    """A framework failed a step that zerocopy planned; its own exception is the cause."""


class FrameworkStartedError(ZeroCopyError, RuntimeError):
    """A framework's runtime already started, so a setting that must precede it cannot apply."""
