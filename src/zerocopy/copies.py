"""Making copies visible: what ``zerocopy.to(..., copy=None)`` does when it has to copy.

By default a copy under ``copy=None`` is silent (``explain()`` says why). Users who want to
be told choose a policy, process-wide or for a block of code:

>>> import warnings, numpy as np, zerocopy
>>> with zerocopy.on_copy("warn"), warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     t = zerocopy.to(np.arange(6.0)[::2], "tensorflow")   # TF takes no step slices
>>> seen[0].category.__name__
'CopyWarning'

``"raise"`` turns every such copy into :class:`~zerocopy.NotZeroCopyError` (a strict
mode: the same as passing ``copy=False`` everywhere), ``"log"`` writes a record on the
``zerocopy`` logger, ``"allow"`` is the default. The environment variable
``ZEROCOPY_ON_COPY`` sets the process-wide policy at import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from zerocopy.errors import InvalidArgumentError, NotZeroCopyError, message

__all__ = ["POLICIES", "CopyWarning", "copy_policy", "on_copy", "set_copy_policy"]

POLICIES = ("allow", "warn", "log", "raise")
LOG = logging.getLogger("zerocopy")


class CopyWarning(UserWarning):
    """``zerocopy.to`` copied (``copy=None``); the message says what and why."""


_state = threading.local()
_process_policy = "allow"
# Read on every conversion: True once any policy other than "allow" was ever chosen, so the
# default costs one global read.
WATCHING = False


def _checked(policy: str) -> str:
    if policy not in POLICIES:
        raise InvalidArgumentError(message("Unknown copy policy", got=repr(policy),
                                           expected=", ".join(map(repr, POLICIES))))
    return policy


def set_copy_policy(policy: str) -> str:
    """Set the process-wide policy; returns the previous one.

    ``policy``: ``"allow"`` (default: copy silently), ``"warn"`` (:class:`CopyWarning`),
    ``"log"`` (an INFO record on the ``zerocopy`` logger) or ``"raise"``
    (:class:`~zerocopy.NotZeroCopyError`). Threads inside an :func:`on_copy` block keep
    theirs. Raises :class:`~zerocopy.InvalidArgumentError` for any other value.
    """
    global _process_policy, WATCHING  # noqa: PLW0603 (module flags the hot path reads)
    previous, _process_policy = _process_policy, _checked(policy)
    WATCHING = WATCHING or policy != "allow"
    return previous


def copy_policy() -> str:
    """The policy in force in this thread: its :func:`on_copy` block's, else the process's."""
    return getattr(_state, "policy", None) or _process_policy


@contextlib.contextmanager
def on_copy(policy: str) -> Iterator[None]:
    """Apply ``policy`` to copies made inside the ``with`` block (this thread only).

    ``policy`` as in :func:`set_copy_policy`; only conversions under ``copy=None`` that
    copy are concerned (``copy=True`` asked for a copy; ``copy=False`` never copies).
    Raises :class:`~zerocopy.InvalidArgumentError` for an unknown policy.
    """
    global WATCHING  # noqa: PLW0603 (a module flag the hot path reads)
    previous = getattr(_state, "policy", None)
    _state.policy = _checked(policy)
    WATCHING = WATCHING or policy != "allow"
    try:
        yield
    finally:
        _state.policy = previous


def copied(source: Any, target: str, nbytes: int, reason: str) -> None:
    """Called by ``to`` when a ``copy=None`` conversion copied."""
    policy = copy_policy()
    if policy == "allow":
        return
    text = f"zerocopy.to copied {nbytes} bytes ({source} -> {target}): {reason}"
    if policy == "raise":
        raise NotZeroCopyError(message(text, hint="zerocopy.explain() shows the plan; "
                                                  "on_copy('allow') lets it copy"))
    if policy == "warn":
        warnings.warn(text, CopyWarning, stacklevel=4)
    else:
        LOG.info(text)


if os.environ.get("ZEROCOPY_ON_COPY"):
    set_copy_policy(os.environ["ZEROCOPY_ON_COPY"].strip().lower())
