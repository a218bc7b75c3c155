"""Importing zerocopy imports no framework (proved in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "jax", "jaxlib", "tensorflow", "pyarrow", "pandas", "polars", "cupy",
         "numba", "mxnet", "cudf", "rmm", "rich", "dask", "distributed")


def test_import_and_numpy_round_trip_import_no_framework() -> None:
    code = (
        "import sys, numpy as np, zerocopy, zerocopy.layout, zerocopy.memory\n"
        "x = zerocopy.to(np.arange(4.0), 'numpy')\n"
        "print(zerocopy.explain(np.arange(4.0), 'numpy'))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
