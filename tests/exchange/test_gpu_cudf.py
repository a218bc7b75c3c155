"""cuDF on the GPU, proven like the other GPU pairs: same device pointer, a write through
one side seen on the other, the source kept alive after ``del`` + gc, values bit for bit;
nulls refused with the target's name; frames to 2-D tensors (copy stated, shared through a
GPU column block); strings and mixed frames refused with hints; the layout engine's
table <-> tensor on cuDF.

Run by scripts/gpu-check where cuDF is importable (it is brought to the GPU test machine in
parts: ../shared/tools/device-chunks cudf); skipped (conftest) where no CUDA GPU exists.
"""

from __future__ import annotations

import gc
import importlib.util

import numpy as np
import pytest

import zerocopy
from zerocopy.registry import adapter

pytestmark = pytest.mark.gpu
cudf = pytest.importorskip("cudf") if importlib.util.find_spec("cudf") else None
if cudf is None:
    pytest.skip("cuDF is not installed (bring it with device-chunks cudf)", allow_module_level=True)

OTHERS = tuple(n for n, module in (("cupy", "cupy"), ("torch", "torch"), ("jax", "jax"),
                                   ("numba", "numba_cuda")) if importlib.util.find_spec(module))
CUDF_DTYPES = sorted(adapter("cudf").dtypes())


def _held(name: str) -> frozenset[str]:
    held = adapter(name).dtypes()
    if name == "jax":
        from zerocopy.adapters.jax import x64_enabled

        held = held if x64_enabled() else held - {"int64", "uint64", "float64"}
    return held


def _values(dtype: str, n: int = 257) -> np.ndarray:
    rng = np.random.default_rng(11)
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), n).astype(dtype)
    return rng.standard_normal(n).astype(dtype)


def _ptr(obj: object) -> int:
    return zerocopy.inspect(obj).ptr


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


def _cupy_view(obj: object):
    import cupy

    view = cupy.from_dlpack(obj) if hasattr(obj, "__dlpack__") and not hasattr(obj, "values") \
        else cupy.asarray(obj.values if hasattr(obj, "to_pandas") else obj)
    assert int(view.data.ptr) == _ptr(obj)
    return view


def _host(obj: object) -> np.ndarray:
    return np.asarray(adapter(zerocopy.inspect(obj).framework).to_host(obj))


def _sync() -> None:
    import cupy

    cupy.cuda.runtime.deviceSynchronize()


# ----------------------------------------------------------------- pairs, both ways

@pytest.mark.parametrize("target", OTHERS)
@pytest.mark.parametrize("dtype", CUDF_DTYPES)
def test_cudf_series_to_each_gpu_framework_shares(target: str, dtype: str) -> None:
    if dtype not in _held(target):
        pytest.skip(f"{target} does not hold {dtype}")
    values = _values(dtype)
    series = cudf.Series(values)
    result = zerocopy.to(series, target, copy=False)
    assert _ptr(result) == _ptr(series)
    assert _bits(_host(result)) == _bits(values)
    # A write through the cuDF column is seen by the target.
    series.values[3] = values[5]
    _sync()
    assert _host(result)[3] == values[5]
    del series
    gc.collect()
    assert _bits(_host(result)[4:]) == _bits(values[4:])  # kept alive by the result


@pytest.mark.parametrize("source", OTHERS)
@pytest.mark.parametrize("dtype", CUDF_DTYPES)
def test_each_gpu_framework_to_cudf(source: str, dtype: str) -> None:
    if dtype not in _held(source):
        pytest.skip(f"{source} does not hold {dtype}")
    values = _values(dtype)
    import cupy

    start = cupy.asarray(values)
    obj = start if source == "cupy" else zerocopy.to(start, source, copy=False)
    plan = zerocopy.explain(obj, "cudf")
    series = zerocopy.to(obj, "cudf")
    assert isinstance(series, cudf.Series)
    assert _bits(series.to_numpy()) == _bits(values)
    if plan.copies:  # stated, and then truly independent
        assert _ptr(series) != int(start.data.ptr)
        return
    assert _ptr(series) == int(start.data.ptr)
    start[7] = start[2]
    _sync()
    assert series.to_numpy()[7] == values[2]


def test_nan_stays_nan_and_shared_on_the_way_into_cudf() -> None:
    """cuDF turns NaN into null when it builds a column from an array, unless told not to:
    that changed values silently and made a new column where the plan said zero-copy (the
    demo's beats table on the H200). NaN must arrive as NaN, in the same memory."""
    import cupy

    values = cupy.asarray(np.array([np.nan, 1.0, np.nan, 4.0], dtype="f4"))
    series = zerocopy.to(values, "cudf", copy=False)
    assert int(series.null_count) == 0 and _ptr(series) == int(values.data.ptr)
    assert _bits(series.to_numpy()) == _bits(values.get())
    block = zerocopy.column_block(4, {"rr": "f4", "peak": "i4"}, device="cuda")
    block.columns["rr"][:] = values
    table = block.table("cudf")
    assert int(table["rr"].null_count) == 0
    assert _ptr(table["rr"]) == int(block.columns["rr"].data.ptr)


def test_cudf_nulls_are_refused_naming_the_target() -> None:
    series = cudf.Series([1.0, None, 3.0], dtype="float32")
    for target in OTHERS:
        with pytest.raises(zerocopy.NullValuesError) as caught:
            zerocopy.to(series, target)
        text = str(caught.value)
        assert "null" in text and "fillna" in text.replace("fill_null", "fillna")
        assert "CuPy has no null mask" not in text


# ----------------------------------------------------------------- frames

def test_one_dtype_frame_to_tensor_is_a_stated_copy() -> None:
    frame = cudf.DataFrame({"a": np.arange(5, dtype="f4"), "b": np.arange(5, dtype="f4") * 2})
    plan = zerocopy.explain(frame, "torch")
    assert plan.copies
    tensor = zerocopy.to(frame, "torch")
    assert tensor.is_cuda and tuple(tensor.shape) == (5, 2)
    assert np.array_equal(tensor.cpu().numpy(), np.stack([np.arange(5), np.arange(5) * 2], 1))
    with pytest.raises(zerocopy.NotZeroCopyError):
        zerocopy.to(frame, "torch", copy=False)


def test_frame_over_a_gpu_column_block_is_one_tensor_without_a_copy() -> None:
    block = zerocopy.column_block(1000, ["a", "b", "c"], dtype=np.float32, device="cuda")
    tensor_view = block.tensor()
    tensor_view[...] = 1.5
    frame = block.table("cudf")
    # cuDF must keep the block's memory (not copy it) for this to share.
    assert _ptr(frame["a"]) == int(block.buffer.data.ptr)
    tensor = zerocopy.to(frame, "torch", copy=False)
    assert tensor.data_ptr() == int(block.buffer.data.ptr)
    tensor[10, 2] = 42.0
    _sync()
    assert float(frame["c"].iloc[10]) == 42.0


def test_mixed_and_string_frames_are_refused_with_hints() -> None:
    mixed = cudf.DataFrame({"a": np.arange(3, dtype="i4"), "b": np.arange(3, dtype="f4")})
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="select"):
        zerocopy.to(mixed, "torch")
    strings = cudf.Series(["a", "b"])
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="stay in cuDF"):
        zerocopy.to(strings, "cupy")


# ----------------------------------------------------------------- layout on cuDF

def test_layout_table_to_tensor_and_back_on_cudf() -> None:
    import cupy

    frame = cudf.DataFrame({"x": np.arange(64, dtype="f4"), "y": -np.arange(64, dtype="f4")})
    rows = zerocopy.stack(frame, order="C")
    assert isinstance(rows, cupy.ndarray) and rows.flags.c_contiguous
    assert np.array_equal(cupy.asnumpy(rows), np.stack([np.arange(64), -np.arange(64)], 1))
    columns = zerocopy.stack(frame, order="F")
    assert np.array_equal(cupy.asnumpy(columns), cupy.asnumpy(rows))
    back = zerocopy.unstack(columns, ["x", "y"], to="cudf")
    assert isinstance(back, cudf.DataFrame)
    assert np.array_equal(back["y"].to_numpy(), -np.arange(64, dtype="f4"))
