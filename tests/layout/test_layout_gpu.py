"""Records <-> columns and tables <-> tensors on a CUDA GPU, against the NumPy reference.

Run on the GPU test machine (``scripts/gpu-check``); skipped elsewhere by the suite's
conftest. Every test compares bytes with the plain NumPy reference computed on the host.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layout_support import field_bytes, random_records, record_dtypes, reference_records

from zerocopy.errors import LayoutError
from zerocopy.layout import column_block, stack, to_columns, to_records, unstack

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _no_leak():
    """Every test frees what it allocated (CuPy pool back to its level after the test)."""
    cupy = pytest.importorskip("cupy")
    pool = cupy.get_default_memory_pool()
    before = pool.used_bytes()
    yield
    cupy.cuda.Device().synchronize()
    import gc

    gc.collect()
    assert pool.used_bytes() <= before + (1 << 20)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=record_dtypes(), n=st.sampled_from([0, 1, 31, 256, 257, 5000]),
       seed=st.integers(0, 2**16))
def test_gpu_round_trip_any_layout(dtype, n, seed):
    import cupy

    aos = random_records(dtype, n, seed)
    dev = cupy.asarray(aos.view(np.uint8).reshape(-1))
    cols = to_columns(dev, dtype=dtype)
    for name in dtype.names:
        assert isinstance(cols[name], cupy.ndarray)
        assert cols[name].get().tobytes() == field_bytes(aos, name), name
    rec = to_records(cols, dtype=dtype)  # (n, itemsize) uint8, or (n, k) if uniform
    assert rec.nbytes == n * dtype.itemsize and rec.flags.c_contiguous
    assert rec.get().tobytes() == reference_records(aos, dtype)


@pytest.mark.parametrize("k", [2, 3, 4, 8, 16, 32])
@pytest.mark.parametrize("n", [0, 1, 1000, 100_003])
def test_gpu_float32_matrix(k, n):
    import cupy

    host = np.random.default_rng(k).standard_normal((n, k)).astype(np.float32)
    m = cupy.asarray(host)
    cols = to_columns(m)
    for j in range(k):
        assert np.array_equal(cols[str(j)].get(), host[:, j])
    back = to_records(cols)
    assert back.flags.c_contiguous and np.array_equal(back.get(), host)


@pytest.mark.parametrize("aligned", [False, True])
def test_gpu_mixed_record(aligned):
    import cupy

    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")],
                  align=aligned)
    aos = random_records(dt, 1_000_001, seed=7)
    cols = to_columns(cupy.asarray(aos.view(np.uint8)), dtype=dt)
    for name in dt.names:
        assert cols[name].get().tobytes() == field_bytes(aos, name)
    assert to_records(cols, aligned=aligned).get().tobytes() == reference_records(aos, dt)


@pytest.mark.parametrize("shift", [1, 2, 4, 8])
def test_gpu_unaligned_buffers(shift):
    import cupy

    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "u2")])
    aos = random_records(dt, 3000, seed=shift)
    raw = cupy.zeros(aos.nbytes + 16, cupy.uint8)
    view = raw[shift:shift + aos.nbytes]
    view.set(aos.view(np.uint8))
    cols = to_columns(view, dtype=dt)
    assert all(cols[n].get().tobytes() == field_bytes(aos, n) for n in dt.names)
    out = cupy.zeros(aos.nbytes + 16, cupy.uint8)[shift:shift + aos.nbytes]
    to_records(cols, dtype=dt, out=out)
    assert out.get().tobytes() == aos.tobytes()


def test_gpu_torch_columns_and_views():
    torch = pytest.importorskip("torch")
    m = torch.arange(40, dtype=torch.float32, device="cuda").reshape(10, 4)
    cols = to_columns(m, names=list("wxyz"))
    assert all(c.is_cuda for c in cols.values())
    assert torch.equal(cols["y"], m[:, 2])
    assert torch.equal(to_records(cols), m)
    f = m.t().contiguous().t()  # column-major
    views = to_columns(f, copy=False)
    assert views["2"].data_ptr() == f[:, 2].data_ptr()
    f[3, 2] = -1.0
    torch.cuda.synchronize()
    assert views["2"][3].item() == -1.0


def test_gpu_block_tensor_and_columns_share_memory():
    torch = pytest.importorskip("torch")
    import cupy

    block = column_block(1000, ["a", "b", "c"], dtype="f4", device="cuda")
    t = block.tensor(like="torch")
    assert t.is_cuda and t.shape == (1000, 3) and t.stride() == (1, 1000)
    assert t.data_ptr() == block.buffer.data.ptr
    t.fill_(0)
    t[10, 2] = 5.0
    torch.cuda.synchronize()
    assert float(block.columns["c"][10]) == 5.0
    m = cupy.arange(3000, dtype=cupy.float32).reshape(1000, 3)
    to_columns(m, names=["a", "b", "c"], out=block)
    assert torch.equal(t, torch.from_dlpack(m))


def test_gpu_stack_and_unstack():
    import cupy

    cols = {n: cupy.arange(100, dtype=cupy.float64) * i for i, n in enumerate("abcd")}
    c = stack(cols, order="C")
    assert isinstance(c, cupy.ndarray) and c.flags.c_contiguous
    assert np.array_equal(c.get(), np.stack([v.get() for v in cols.values()], axis=1))
    f = stack(cols, order="F")
    assert f.flags.f_contiguous and np.array_equal(f.get(), c.get())
    back = unstack(c, list("abcd"), to="cupy")
    assert all(np.array_equal(back[n].get(), cols[n].get()) for n in "abcd")
    block_cols = unstack(f, list("abcd"), to="cupy", copy=False)
    assert block_cols["b"].data.ptr == f[:, 1].data.ptr
    again = stack(block_cols, order="F", copy=False)
    assert again.data.ptr == f.data.ptr


@pytest.mark.parametrize("mixed", [False, True])
def test_gpu_repeated_calls_with_a_block(mixed):
    # The plan kept on a CUDA block (checked columns, compiled kernel, launch parameters)
    # gives the same bytes call after call, for raw bytes and an (N, k) matrix, and
    # to_records / stack from the block.
    import cupy

    dt = (np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")],
                   align=True) if mixed else np.dtype([(f"f{i}", "f4") for i in range(8)]))
    n = 4099
    block = column_block(n, {f: dt.fields[f][0] for f in dt.names}, device="cuda")
    out = cupy.zeros(n * dt.itemsize, cupy.uint8)
    for seed in range(3):
        aos = random_records(dt, n, seed)
        dev = cupy.asarray(aos.view(np.uint8))
        cols = to_columns(dev, dtype=dt, out=block)
        for name in dt.names:
            assert cols[name].get().tobytes() == field_bytes(aos, name), name
        rec = to_records(block, dtype=dt, out=out)
        assert rec.get().tobytes() == reference_records(aos, dt)
        if not mixed:
            mat = dev.view(cupy.float32).reshape(n, len(dt.names))
            to_columns(mat, names=list(dt.names), out=block)
            t = cupy.zeros((n, len(dt.names)), cupy.float32)
            assert stack(block, out=t) is not None
            assert t.get().tobytes() == aos.tobytes()
    with pytest.raises(LayoutError):  # another row count: the general path's check
        to_columns(cupy.zeros((n + 1) * dt.itemsize, cupy.uint8), dtype=dt, out=block)
