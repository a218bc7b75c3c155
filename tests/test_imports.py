"""Importing zerocopy imports no framework (proved in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

from zerocopy import registry
from zerocopy.memory.hooks import hook

# Every module of every framework but NumPy (zerocopy's one dependency that is a
# framework), the packages the memory hooks drive (RMM for cuDF), and the libraries
# that only the command line and zerocopy.dask load.
HEAVY = tuple(sorted(
    {module for record in registry.RECORDS if record.name != "numpy" for module in record.modules}
    | {hook(name).PACKAGE for name in registry.HOOKS}
    | {"rich", "dask", "distributed"}))


def test_the_heavy_list_comes_from_the_registry() -> None:
    assert {"torch", "jax", "jaxlib", "tensorflow", "cupy", "cudf", "rmm", "mxnet"} <= set(HEAVY)
    assert "numpy" not in HEAVY


def test_import_and_numpy_round_trip_import_no_framework() -> None:
    code = (
        "import sys, numpy as np, zerocopy, zerocopy.layout, zerocopy.memory, zerocopy.registry\n"
        "x = zerocopy.to(np.arange(4.0), 'numpy')\n"
        "print(zerocopy.explain(np.arange(4.0), 'numpy'))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
