"""The one shared pool of this process: set by ``share()``, read by ``report()``.

It lives below both: ``share.py`` builds pools and asks ``report.py`` to describe them, so
``report.py`` must not import ``share.py`` back to find the active one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zerocopy.memory.share import SharedPool

__all__ = ["LOCK", "active", "set_active"]

# Held across a whole share() setup and undo(), so two of them never interleave.
LOCK = threading.Lock()
_pool: SharedPool | None = None


def active() -> SharedPool | None:
    """The shared pool ``share()`` set up, or None."""
    return _pool


def set_active(pool: SharedPool | None) -> None:
    """Record ``pool`` as this process's shared pool (None: no pool). Callers hold ``LOCK``."""
    global _pool  # noqa: PLW0603 (one shared pool per process, by design)
    _pool = pool
