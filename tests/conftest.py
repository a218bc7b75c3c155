"""Suite-wide rules: GPU tests skip where no CUDA GPU is found (CI), and say why."""

from __future__ import annotations

import functools
import importlib.util
import os

import pytest


@functools.cache
def cuda_device_count() -> int:
    """CUDA devices visible to CuPy; 0 where CuPy or a driver is missing (CPU machines, CI)."""
    if importlib.util.find_spec("cupy") is None:
        return 0
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no device: this is a CPU machine
        return 0


def pytest_configure(config: pytest.Config) -> None:
    # JAX grabs 75% of the card at its first operation unless told otherwise.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    devices = None
    for item in items:
        needs = 2 if "multigpu" in item.keywords else 1 if "gpu" in item.keywords else 0
        if not needs:
            continue
        if devices is None:
            devices = cuda_device_count()
        if devices < needs:
            item.add_marker(pytest.mark.skip(
                reason=f"needs {needs} CUDA GPU(s), found {devices}; run scripts/gpu-check on the GPU machine"))
