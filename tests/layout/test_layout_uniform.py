"""The uniform-record kernels ((N, k) <-> k columns): every tile shape, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from zerocopy.layout import _cpu, stack, to_columns, to_records

pytest.importorskip("numba")

WIDTHS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _matrix(n: int, k: int, w: int, shift: int = 0) -> np.ndarray:
    """An (n, k) matrix of random bits whose data starts ``shift`` bytes past 64."""
    raw = np.random.default_rng(n * 31 + k * 7 + w).integers(
        0, 256, n * k * w + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + shift
    return raw[start:start + n * k * w].view(WIDTHS[w]).reshape(n, k)


@pytest.mark.parametrize("w", [1, 2, 4, 8])
@pytest.mark.parametrize("k", [2, 3, 4, 8])
@pytest.mark.parametrize("n", [0, 1, 31, 64, 65, 1000, 300_001])
def test_uniform_round_trip(n: int, k: int, w: int) -> None:
    a = _matrix(n, k, w)
    assert _plan_for(a).uniform is not None
    cols = to_columns(a, copy=True)
    for j in range(k):
        assert np.array_equal(cols[str(j)], a[:, j])
    back = to_records(cols, dtype=a.dtype)
    assert back.shape == (n, k)
    assert np.array_equal(back, a)


@pytest.mark.parametrize("shift", [1, 4, 8, 24])
@pytest.mark.parametrize("w", [2, 4, 8])
def test_uniform_unaligned_buffers(shift: int, w: int) -> None:
    n, k = 20_011, 3
    a = _matrix(n, k, w, shift)  # records not 64-byte aligned (no streaming stores)
    cols = {str(j): _matrix(n, 1, w, shift + 8 * j).reshape(-1) for j in range(k)}
    to_columns(a, out=cols)
    for j in range(k):
        assert np.array_equal(cols[str(j)], a[:, j])
    flat = np.zeros(n * k * w + 64 + shift, np.uint8)
    target = flat[shift:shift + n * k * w].view(a.dtype).reshape(n, k)
    to_records(cols, dtype=a.dtype, out=target)
    assert np.array_equal(target, a)


def test_uniform_permuted_fields_and_stack() -> None:
    n = 70_001
    a = _matrix(n, 4, 4).view(np.float32)
    dt = np.dtype({"names": ["z", "x", "y", "w"], "formats": ["f4"] * 4,
                   "offsets": [8, 0, 4, 12], "itemsize": 16})
    recs = a.reshape(-1).view(dt)
    cols = to_columns(recs)
    for name, off in zip(dt.names, [8, 0, 4, 12], strict=True):
        assert cols[name].view(np.uint32).tobytes() == a[:, off // 4].view(np.uint32).tobytes()
    t = stack({"c0": a[:, 0].copy(), "c1": a[:, 1].copy()}, order="C")
    assert t.view(np.uint32).tobytes() == np.ascontiguousarray(a[:, :2]).view(
        np.uint32).tobytes()


def test_not_uniform_goes_generic() -> None:
    dt = np.dtype([("a", "f4"), ("b", "f8")])
    plan = _cpu.Moves((dt.fields[name][1], dt.itemsize, 0, 8, dt[name].itemsize)
                      for name in dt.names)
    assert plan.uniform is None


def test_small_copies_run_on_the_calling_thread() -> None:
    # Under 1 MiB: the serial kernels (no thread pool to wake), same bytes as the large path.
    for k, w in [(3, 4), (5, 8)]:
        a = _matrix(1000, k, w)
        cols = to_columns(a, copy=True)
        assert all(np.array_equal(cols[str(j)], a[:, j]) for j in range(k))
        assert np.array_equal(to_records(cols, dtype=a.dtype), a)


def _plan_for(a: np.ndarray) -> _cpu.Moves:
    k = a.shape[1]
    w = a.dtype.itemsize
    return _cpu.Moves((j * w, k * w, 1 << 40 + j, w, w) for j in range(k))
