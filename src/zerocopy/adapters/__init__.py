"""One module per framework, all of the same shape; ``zerocopy.registry`` lists them.

Each module has NAME, IMPORT_NAME, PIP, PROTOCOLS, EDGES and the functions ``inspect``,
``dtypes``, ``version``, ``devices``, ``make`` (a probe from NumPy values, for tests and the
matrix) and ``to_host`` (values back as NumPy, for comparisons). Only the module imports
its framework, and only inside those functions (tests/test_registry.py checks the shape).

The names below are the registry's, re-exported so that existing imports keep working;
new code imports them from ``zerocopy.registry``.
"""

from __future__ import annotations

from zerocopy.registry import (
    ALIASES,
    CPU_FRAMEWORKS,
    DEVICE_ONLY,
    FRAMEWORKS,
    GPU_FRAMEWORKS,
    HOST_ONLY,
    adapter,
    edges,
    installed,
    resolve,
)

__all__ = ["ALIASES", "CPU_FRAMEWORKS", "DEVICE_ONLY", "FRAMEWORKS", "GPU_FRAMEWORKS", "HOST_ONLY",
           "adapter", "edges", "installed", "resolve"]
