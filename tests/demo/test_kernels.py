"""The demo's GPU kernels agree with the CPU kernels (run in Numba's CUDA simulator here)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from zerocopy.demo.kernels import META, cut_beats_cpu, find_peaks_cpu, record_views

SCRIPT = textwrap.dedent("""
    import numpy as np
    from zerocopy.demo.kernels import _gpu_kernels, META
    rng = np.random.default_rng(1)
    y = rng.standard_normal((2, 256)).astype(np.float32)
    y[:, ::40] += 6.0
    thr = np.full(2, 2.0, np.float32)
    k = _gpu_kernels()
    mask = np.zeros(y.shape, np.uint8)
    k["peak_mask"][(2, 1), (128, 4)](y, thr, 10, 8, 24, mask)
    rows, cols = (a.astype(np.int32) for a in np.nonzero(mask))
    out = {n: np.zeros(len(rows), "i4" if n in ("record", "peak") else "f4") for n in META}
    out["window"] = np.zeros((len(rows), 32), np.float32)
    k["cut"][(1, (len(rows) + 7) // 8), (32, 8)](y, rows, cols, np.array([5, 6], np.int32), 8,
                                                 np.float32(250.0), *(out[n] for n in (*META, "window")))
    np.savez(__import__("sys").argv[1], rows=rows, cols=cols, **out)
""")


def _signal() -> np.ndarray:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((2, 256)).astype(np.float32)
    y[:, ::40] += 6.0
    return y


def test_gpu_kernels_match_cpu_kernels_in_the_simulator(tmp_path) -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "gpu.npz")], env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    gpu = np.load(tmp_path / "gpu.npz")
    y = _signal()
    rows, cols = find_peaks_cpu(y, np.full(2, 2.0, np.float32), 10, 8, 24)
    assert len(rows) > 6
    assert np.array_equal(gpu["rows"], rows) and np.array_equal(gpu["cols"], cols)
    records = record_views(np.zeros(len(rows) * (4 + 32) * 4, np.uint8), len(rows), 32)
    cut_beats_cpu(y, rows, cols, np.array([5, 6], np.int32), 8, 250.0, records)
    for name in (*META, "window"):
        assert np.array_equal(gpu[name], records[name], equal_nan=name == "rr"), name


def test_a_numba_cuda_that_cannot_compile_with_this_numpy_is_a_typed_error(monkeypatch) -> None:
    # numba-cuda 0.30.4 with NumPy 2.5.2 (GPU test machine): its first compilation imports
    # numba.cuda.np.arrayobj, which registers np.row_stack and fails with NumPy's
    # AttributeError. The demo says so before any way runs, with the fix.
    import importlib

    import pytest

    from zerocopy.demo import kernels
    from zerocopy.errors import FrameworkError

    real = importlib.import_module

    def importing(name: str, *args: object) -> object:
        if name == "numba.cuda.np.arrayobj":
            raise AttributeError("module 'numpy' has no attribute 'row_stack'")
        return real(name, *args)

    monkeypatch.setattr(kernels.importlib, "import_module", importing)
    with pytest.raises(FrameworkError, match=r"numpy<2\.5") as caught:
        kernels.check_numba_cuda_compiles()
    assert isinstance(caught.value.__cause__, AttributeError)


def test_a_numba_without_that_module_passes_the_check(monkeypatch) -> None:
    import importlib

    from zerocopy.demo import kernels

    def missing(name: str, *args: object) -> object:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib, "import_module", missing)
    kernels.check_numba_cuda_compiles()  # nothing to say: the first kernel will tell
