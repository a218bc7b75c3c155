"""The semantics users rely on: copy=None/False/True, strides, flags, dtypes, caveats."""

from __future__ import annotations

import gc
import warnings

import ml_dtypes
import numpy as np
import pytest
from tests.helpers.frameworks import pointer, same_bits

import zerocopy


def test_copy_false_names_the_reason_and_the_fix() -> None:
    x = zerocopy.empty(33, np.float32)[1:]  # 4 bytes past a 64-byte boundary
    with pytest.raises(zerocopy.NotZeroCopyError) as err:
        zerocopy.to(x, "jax", copy=False)
    assert isinstance(err.value, BufferError)
    text = str(err.value)
    assert "64-byte aligned" in text and "zerocopy.empty" in text


def test_copy_none_copies_when_alignment_forbids_sharing_and_says_so() -> None:
    x = zerocopy.empty(33, np.float32)[1:]
    x[:] = np.arange(32)
    plan = zerocopy.explain(x, "jax")
    assert plan.copies and plan.copied_bytes == x.nbytes
    assert any("64-byte" in c for c in plan.caveats)
    result = zerocopy.to(x, "jax")
    assert pointer(result) != pointer(x)
    assert same_bits(np.asarray(result), x)


def test_aligned_allocation_is_shared_by_jax() -> None:
    x = zerocopy.empty((8, 8), np.float32)
    x[:] = 1.0
    assert pointer(x) % 64 == 0
    result = zerocopy.to(x, "jax", copy=False)
    assert pointer(result) == pointer(x)


@pytest.mark.parametrize("target", ["torch", "jax", "tensorflow"])
def test_negative_strides_never_crash(target: str) -> None:
    x = zerocopy.aligned(np.arange(16, dtype=np.float32))[::-1]
    with pytest.raises(zerocopy.NotZeroCopyError, match="negative"):
        zerocopy.to(x, target, copy=False)
    result = zerocopy.to(x, target)
    assert zerocopy.explain(x, target).copies
    assert same_bits(np.asarray(zerocopy.to(result, "numpy")), x)


def test_step_slices_share_with_torch_but_not_with_jax_or_tensorflow() -> None:
    x = zerocopy.empty(32, np.float32)
    x[:] = np.arange(32)
    view = x[::2]
    t = zerocopy.to(view, "torch", copy=False)
    assert pointer(t) == pointer(view) and t.stride() == (2,)
    for target in ("jax", "tensorflow"):
        with pytest.raises(zerocopy.NotZeroCopyError):
            zerocopy.to(view, target, copy=False)
        assert same_bits(np.asarray(zerocopy.to(zerocopy.to(view, target), "numpy")), view)


def test_transposes_share_with_jax_not_tensorflow() -> None:
    x = zerocopy.empty((4, 16), np.float32)
    x[:] = np.arange(64).reshape(4, 16)
    j = zerocopy.to(x.T, "jax", copy=False)
    assert pointer(j) == pointer(x)
    assert same_bits(np.asarray(j), x.T)
    with pytest.raises(zerocopy.NotZeroCopyError, match="C-contiguous"):
        zerocopy.to(x.T, "tensorflow", copy=False)


def test_read_only_source_to_torch_is_a_stated_copy_and_shared_only_when_asked() -> None:
    """torch tensors cannot be read-only: under copy=None a read-only source is copied (a
    write through the tensor must not change memory its owner considers immutable, as for
    pandas under copy-on-write); copy=False shares, says so, and torch does not warn."""
    x = np.arange(8, dtype=np.float32)
    x.flags.writeable = False
    plan = zerocopy.explain(x, "torch")
    assert plan.copies and any("read-only" in c for c in plan.caveats)
    t = zerocopy.to(x, "torch")
    assert pointer(t) != pointer(x)
    t[0] = 42.0
    assert x[0] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared = zerocopy.to(x, "torch", copy=False)
    assert pointer(shared) == pointer(x)
    assert any("read-only" in c for c in zerocopy.explain(x, "torch", copy=False).caveats)


def test_memory_mapped_arrow_file_to_torch_is_copied_unless_sharing_is_asked(tmp_path) -> None:
    """An Arrow IPC file read through pa.memory_map is a read-only mapping: a write through a
    shared torch tensor would crash the process. copy=None copies (the file stays as it was
    after a write through the tensor); copy=False shares the mapping, as asked."""
    import pyarrow as pa

    path = tmp_path / "x.arrow"
    values = np.arange(1024, dtype=np.float32)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, pa.schema([("x", pa.float32())])) as w:
        w.write_table(pa.table({"x": values}))
    with pa.memory_map(str(path), "r") as source:
        column = pa.ipc.open_file(source).read_all().column("x").chunk(0)
        plan = zerocopy.explain(column, "torch")
        assert plan.copies and any("read-only file" in c for c in plan.caveats)
        t = zerocopy.to(column, "torch")
        assert pointer(t) != pointer(column)
        t[0] = -1.0
        assert column[0].as_py() == 0.0 and same_bits(column.to_numpy(), values)
        shared = zerocopy.to(column, "torch", copy=False)
        assert pointer(shared) == pointer(column)
        assert any("immutable" in c for c in zerocopy.explain(column, "torch", copy=False).caveats)
        del t, shared, column
    with pa.memory_map(str(path), "r") as again:  # the file itself is untouched
        assert same_bits(pa.ipc.open_file(again).read_all().column("x").to_numpy(), values)


def test_polars_series_to_torch_is_a_stated_copy_and_shared_with_copy_false() -> None:
    import polars as pl

    s = pl.Series("x", np.arange(16, dtype=np.float32))
    t = zerocopy.to(s, "torch")
    assert pointer(t) != pointer(s)
    t[0] = 99.0
    assert s[0] == 0.0
    shared = zerocopy.to(s, "torch", copy=False)
    assert pointer(shared) == pointer(s)
    assert same_bits(shared.numpy(), s.to_numpy())


def test_jax_arrays_reach_torch_shared_with_a_caveat() -> None:
    """JAX arrays are immutable by API only (XLA owns writable memory): shared, as
    torch.from_dlpack shares them, and the caveat says a write changes the JAX array."""
    import jax.numpy as jnp

    x = jnp.arange(16, dtype=jnp.float32)
    plan = zerocopy.explain(x, "torch")
    assert not plan.copies and any("read-only" in c for c in plan.caveats)
    t = zerocopy.to(x, "torch")
    assert pointer(t) == pointer(x)
    t[0] = 7.0
    assert float(x[0]) == 7.0


@pytest.mark.parametrize("target", ["jax", "tensorflow"])
def test_read_only_views_reach_legacy_dlpack_importers_without_copy(target: str) -> None:
    # NumPy's own exporter refuses read-only arrays; pandas 3 and Polars hand out only those.
    import pandas as pd

    base = zerocopy.empty(64, np.float32)
    base[:] = 3.0
    s = pd.Series(base, copy=False)
    result = zerocopy.to(s, target, copy=False)
    assert pointer(result) == pointer(base)


def test_requires_grad_is_detached_and_said() -> None:
    import torch

    t = torch.ones(8, requires_grad=True)
    plan = zerocopy.explain(t, "numpy")
    assert any("gradient" in c for c in plan.caveats)
    a = zerocopy.to(t, "numpy", copy=False)
    assert pointer(a) == t.data_ptr()
    j = zerocopy.to(t, "jax", copy=False)
    assert pointer(j) == t.data_ptr()


def test_conjugate_view_is_resolved_by_a_copy_not_shared_wrongly() -> None:
    import torch

    t = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj()
    with pytest.raises(zerocopy.NotZeroCopyError, match="conjugate"):
        zerocopy.to(t, "numpy", copy=False)
    assert np.array_equal(zerocopy.to(t, "numpy"), np.array([1 - 2j, 3 + 4j], dtype=np.complex64))


def test_jax_never_narrows_64_bit_types() -> None:
    for dtype in (np.int64, np.uint64, np.float64, np.complex128):
        with pytest.raises(zerocopy.UnsupportedDtypeError, match="jax_enable_x64"):
            zerocopy.to(np.zeros(4, dtype), "jax")


def test_bfloat16_crosses_numpy_torch_jax_tensorflow_without_copy() -> None:
    x = zerocopy.empty(16, ml_dtypes.bfloat16)
    x[:] = np.arange(16)
    for target in ("torch", "jax", "tensorflow"):
        y = zerocopy.to(x, target, copy=False)
        assert pointer(y) == pointer(x)
        back = zerocopy.to(y, "numpy", copy=False)
        assert back.dtype == x.dtype and same_bits(back, x)


@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 0, 2), (2, 3, 4, 5)])
def test_shapes_round_trip(shape: tuple[int, ...]) -> None:
    x = zerocopy.empty(shape, np.float32)
    x[...] = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    for target in ("torch", "jax", "tensorflow"):
        y = zerocopy.to(x, target)
        assert same_bits(np.asarray(zerocopy.to(y, "numpy")), x)


def test_large_array_is_shared_at_the_same_cost_as_a_small_one() -> None:
    big = zerocopy.empty(64 * 1024 * 1024 // 4, np.float32)  # 64 MiB
    t = zerocopy.to(big, "torch", copy=False)
    assert pointer(t) == pointer(big)


def test_result_keeps_the_exporter_alive() -> None:
    import torch

    t = torch.arange(1 << 16, dtype=torch.float32)
    expected = t.numpy().copy()
    j = zerocopy.to(t, "jax", copy=False)
    del t
    gc.collect()
    _churn = [torch.full((1 << 16,), 5.0) for _ in range(16)]
    assert same_bits(np.asarray(j), expected)


def test_unaligned_records_are_not_shared() -> None:
    raw = np.zeros(41, np.uint8)
    x = raw[1:].view(np.float32)[::1]  # misaligned start: 1 byte past an element boundary
    result = zerocopy.to(x, "torch")
    assert same_bits(zerocopy.to(result, "numpy"), x)


def test_series_over_a_step_slice_keeps_its_stride_in_the_plan() -> None:
    import pandas as pd

    base = zerocopy.empty(20, np.float32)
    base[:] = np.arange(20)
    s = pd.Series(base[::2], copy=False)
    assert zerocopy.inspect(s).layout == "strided"
    with pytest.raises(zerocopy.NotZeroCopyError, match="contiguous"):
        zerocopy.to(s, "pyarrow", copy=False)
    assert zerocopy.to(s, "pyarrow").to_numpy().tolist() == base[::2].tolist()
    t = zerocopy.to(s, "torch", copy=False)  # torch takes strides: shared
    assert pointer(t) == pointer(base) and t.stride() == (2,)


def test_fast_lane_keys_on_every_fact_a_route_depends_on() -> None:
    # A writable array's route (NumPy's own DLPack exporter) is cached in the fast lane;
    # a read-only array of the same dtype and shape must not reuse it (NumPy would refuse).
    writable = zerocopy.empty(8, np.float32)
    for _ in range(2):
        assert pointer(zerocopy.to(writable, "tensorflow")) == pointer(writable)
    readonly = zerocopy.empty(8, np.float32)
    readonly.flags.writeable = False
    assert pointer(zerocopy.to(readonly, "tensorflow", copy=False)) == pointer(readonly)


def test_jax_array_over_a_column_major_buffer_keeps_its_layout_into_tensorflow() -> None:
    # Found by the demo: JAX keeps an imported F-order layout; TensorFlow takes only row-major.
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    source = zerocopy.empty((5, 3), np.float32, order="F")
    source[...] = np.arange(15, dtype=np.float32).reshape(5, 3)
    array = zerocopy.to(source, "jax", copy=False)
    assert zerocopy.inspect(array).layout == "F"
    plan = zerocopy.explain(array, "tensorflow")
    assert plan.copies
    tensor = zerocopy.to(array, "tensorflow")
    assert np.array_equal(tensor.numpy(), source)
    with pytest.raises(zerocopy.NotZeroCopyError, match="C-contiguous"):
        zerocopy.to(array, "tensorflow", copy=False)


def test_a_route_cached_with_jax_x64_on_never_narrows_after_it_is_turned_off() -> None:
    # Found by the clean-clone CI run: a route planned while x64 was on stayed cached.
    jax = pytest.importorskip("jax")
    source = zerocopy.empty((3, 2), np.int64)
    source[...] = 2**40
    was = jax.config.read("jax_enable_x64")
    try:
        jax.config.update("jax_enable_x64", True)
        assert zerocopy.to(source, "jax").dtype == np.int64
        jax.config.update("jax_enable_x64", False)
        with pytest.raises(zerocopy.UnsupportedDtypeError, match="64-bit mode"):
            zerocopy.to(source, "jax")
    finally:
        jax.config.update("jax_enable_x64", was)
