"""One module per framework with a GPU pool, all of the same shape (``zerocopy.registry``
names them: a record's ``hook_module``).

Each hook module has:

- ``NAME``, ``PACKAGE`` (installed means: importable), ``INSTALL_HINT``, ``MODES``
- ``capabilities(mode=None) -> Capabilities``: what zerocopy can do for it, as data
- ``check(mode=None)``: raise ``FrameworkStartedError`` if it is too late to route it
- ``install(resource, *, limit=None, mode=None) -> Installation`` (undoable where possible);
  imports the framework inside the call, raises ``FrameworkNotInstalledError`` with the hint
- ``framework_stats() -> dict | None``: the framework's own view of its memory, if any
- ``release_cache() -> bool``: empty the framework's cache (only on the OOM path)
- ``oom_type() -> type | None``: the framework's out-of-memory exception class

Importing this package or a hook module imports no framework.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType

from zerocopy import registry
from zerocopy.errors import InvalidArgumentError, message

__all__ = ["HOOKS", "Capabilities", "Installation", "capability_table", "hook", "loaded"]

# framework -> hook module, in the registry's order (the order share() routes them).
HOOKS: dict[str, str] = registry.HOOKS


@dataclass(frozen=True)
class Capabilities:
    """What routing a framework to the shared pool gives, and what it costs to set up."""

    framework: str
    mode: str
    route: str                   # how it joins the shared pool
    per_allocation: bool         # our adaptors see every allocation (stats, log, leaks)
    limits: str                  # who enforces a per-framework limit, and what it raises
    accounting: str              # where its numbers in report() come from
    before_runtime: bool         # must be set up before the framework's runtime starts
    undoable: str                # what undo() can restore
    notes: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Installation:
    """What ``install`` did, and how to take it back."""

    framework: str
    capabilities: Capabilities
    details: dict[str, object] = field(default_factory=dict)
    _undo: Callable[[], None] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def undo(self) -> None:
        """Restore the framework's previous allocator settings; safe to call twice."""
        with self._lock:
            undo, self._undo = self._undo, None
        if undo is not None:
            undo()

    @property
    def active(self) -> bool:
        return self._undo is not None


def hook(framework: str) -> ModuleType:
    """The hook module of ``framework`` (InvalidArgumentError names the ones that exist)."""
    try:
        return importlib.import_module(HOOKS[framework])
    except KeyError:
        raise InvalidArgumentError(message(f"No memory hook for {framework!r}",
                                           expected=", ".join(HOOKS))) from None


def loaded(framework: str) -> bool:
    """Whether ``framework`` runs in this process: one of its modules, or the package its
    hook drives (RMM for cuDF), is imported. Nothing is imported to find out."""
    return registry.record(framework).loaded(sys.modules) or hook(framework).PACKAGE in sys.modules


def capability_table() -> list[Capabilities]:
    """Every framework's capabilities in every mode it offers (for docs, CLI and report)."""
    rows: list[Capabilities] = []
    for name in HOOKS:
        module = hook(name)
        for mode in module.MODES:
            rows.append(module.capabilities(mode))
    return rows
