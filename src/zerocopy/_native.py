"""Whether the C extension ``zerocopy._speedups`` is used, decided once for every module.

The exchange (DLPack capsules) and the memory statistics (the Ledger) both have a C and a
pure-Python implementation of the same thing; ``ZEROCOPY_PURE_PYTHON=1`` picks the Python
one everywhere, and ``zerocopy doctor`` prints :func:`reason`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

__all__ = ["cxx_part", "load", "reason", "speedups"]


def load() -> tuple[ModuleType | None, str]:
    """(the extension or None, why): ``"C extension"`` or ``"pure-Python path (why)"``."""
    # Looked up, not imported, first: ``from zerocopy import _speedups`` while zerocopy is
    # still importing turned a missing extension into "partially initialized module
    # (most likely due to a circular import)", which `zerocopy doctor` then printed.
    built = importlib.util.find_spec("zerocopy._speedups") is not None
    if os.environ.get("ZEROCOPY_PURE_PYTHON", "") not in ("", "0"):
        return None, ("pure-Python path (ZEROCOPY_PURE_PYTHON is set; the C extension is "
                      + ("built but not used)" if built else "not built either)"))
    if not built:  # a source tree never built, or installed where no C compiler was
        return None, ("pure-Python path (C extension not built: no zerocopy._speedups next to "
                      "the package; pip install builds it where a C compiler is)")
    try:
        return importlib.import_module("zerocopy._speedups"), "C extension"
    except ImportError as exc:  # built for another Python, or a library it needs is gone
        return None, f"pure-Python path (C extension not usable: {exc})"


_module, _reason = load()


def speedups() -> ModuleType | None:
    """The C extension, or None where the pure-Python path runs."""
    return _module


def reason() -> str:
    return _reason


def cxx_part() -> str:
    """Whether zerocopy._raise (C++: how torch's 'cached' memory mode fails an allocation)
    was built, for ``zerocopy doctor``."""
    built = importlib.util.find_spec("zerocopy._raise") is not None
    return ("built" if built else
            "not built (no C++ compiler at install): torch's 'cached' memory mode is unavailable")
