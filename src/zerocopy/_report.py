"""``zerocopy.frameworks()`` and ``zerocopy doctor``: what is here, really asked."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any

from zerocopy.registry import FRAMEWORKS, adapter, installed

__all__ = ["framework_report", "framework_row"]


def framework_report() -> list[dict[str, Any]]:
    return [framework_row(name) for name in FRAMEWORKS]


def framework_row(name: str) -> dict[str, Any]:
    """One framework: installed?, version, devices, protocols, and what is wrong if anything."""
    module = adapter(name)
    row: dict[str, Any] = {"name": name, "installed": installed(name), "version": None,
                           "devices": [], "exports": list(module.PROTOCOLS["exports"]),
                           "imports": list(module.PROTOCOLS["imports"]), "error": None}
    if row["installed"]:
        try:
            row["version"] = module.version()
            row["devices"] = module.devices()
        except Exception as exc:  # a broken install is a finding, not a crash
            row["error"] = f"{type(exc).__name__}: {exc}"
    else:
        row["error"] = _missing(name, module.IMPORT_NAME, module.PIP)
    return row


def _missing(name: str, import_name: str, pip: str) -> str:
    """Name the package that is missing: for Numba that is numba-cuda (its CUDA target),
    even when Numba itself (CPU) is installed."""
    if import_name != name and importlib.util.find_spec(name) is not None:
        try:
            have = f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            have = name
        return (f"{pip} not installed ({have} is, but zerocopy's {name} support is its CUDA "
                f"side: pip install {pip})")
    return f"not installed (pip install {pip})"
