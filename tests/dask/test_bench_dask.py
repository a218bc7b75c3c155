"""``zerocopy bench dask``: the GPU flag's guard and the "cannot send" probe (CPU); the GPU run
itself is in tests/dask/test_dask_gpu.py."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

pytest.importorskip("distributed", reason="zerocopy.dask needs dask and distributed (pip install zerocopy[dask])")

from zerocopy.bench.dask import cannot_send, require_gpu
from zerocopy.dask import visible_gpus
from zerocopy.errors import DeviceError


@pytest.mark.skipif(bool(visible_gpus()), reason="this machine has a GPU")
def test_gpu_flag_without_a_gpu_is_one_typed_line() -> None:
    with pytest.raises(DeviceError, match="needs a CUDA GPU"):
        require_gpu()
    proc = subprocess.run([sys.executable, "-m", "zerocopy", "bench", "dask", "--gpu", "--mb", "256"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "needs a CUDA GPU" in proc.stderr and "Hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cannot_send_names_the_serializers_error_and_raises_nothing() -> None:
    assert cannot_send(list(range(3))) == ""
    reason = cannot_send(threading.Lock())
    assert reason.startswith("TypeError:") and "lock" in reason
