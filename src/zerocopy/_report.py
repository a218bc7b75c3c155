"""``zerocopy.frameworks()`` and ``zerocopy doctor``: what is here, really asked."""

from __future__ import annotations

from typing import Any

from zerocopy.adapters import FRAMEWORKS, adapter, installed

__all__ = ["framework_report"]


def framework_report() -> list[dict[str, Any]]:
    rows = []
    for name in FRAMEWORKS:
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
            row["error"] = f"not installed (pip install {module.PIP})"
        rows.append(row)
    return rows
