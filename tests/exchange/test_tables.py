"""Tables: pandas / Polars / Arrow to each other through Arrow, and to 2-D tensors."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

from tests.helpers.frameworks import pointer  # noqa: E402

import zerocopy  # noqa: E402  (after the skips: the GPU machine has no Polars)


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    block = zerocopy.empty((3, 100), np.float64)  # columns contiguous: an F-order table
    block[:] = np.arange(300).reshape(3, 100)
    return pd.DataFrame(block.T, columns=["a", "b", "c"], copy=False), block


def test_one_block_frame_becomes_a_tensor_without_copy() -> None:
    df, block = _frame()
    t = zerocopy.to(df, "torch", copy=False)
    assert tuple(t.shape) == (100, 3)
    assert pointer(t) == pointer(block)
    assert np.array_equal(t.numpy(), block.T)


def test_mixed_frame_copies_and_copy_false_raises() -> None:
    df = pd.DataFrame({"a": np.arange(4.0), "b": np.arange(4, dtype=np.int32)})
    with pytest.raises(zerocopy.UnsupportedDtypeError):
        zerocopy.to(df, "torch")
    # Two blocks in two allocations (two views of one block would be one block: shared).
    df = pd.concat([pd.DataFrame({"a": np.arange(4.0)}), pd.DataFrame({"b": np.arange(4.0)})], axis=1)
    if len(df._mgr.blocks) > 1:
        with pytest.raises(zerocopy.NotZeroCopyError, match="consolidated"):
            zerocopy.to(df, "torch", copy=False)
    assert np.array_equal(zerocopy.to(df, "torch").numpy(), df.to_numpy())


@pytest.mark.parametrize("target", ["pyarrow", "polars"])
def test_pandas_columns_cross_to_arrow_and_polars_without_copy(target: str) -> None:
    df, block = _frame()
    out = zerocopy.to(df, target, copy=False)
    arrow = out if target == "pyarrow" else out.to_arrow()
    for i, name in enumerate(["a", "b", "c"]):
        column = arrow.column(name).chunk(0)
        assert column.buffers()[1].address == pointer(block[i])


def test_nan_stays_nan_not_null() -> None:
    s = pd.Series(np.array([1.0, np.nan, 3.0]))
    arrow = zerocopy.to(pd.DataFrame({"x": s}), "pyarrow")
    assert arrow.column("x").null_count == 0 and np.isnan(arrow.column("x").to_numpy()[1])


def test_arrow_to_pandas_keeps_nulls_and_shares_numeric_columns() -> None:
    values = np.arange(5, dtype=np.int64)
    table = pa.table({"v": pa.Array.from_buffers(pa.int64(), 5, [None, pa.py_buffer(values)]),
                      "n": pa.array([1.0, None, 2.0, None, 3.0])})
    df = zerocopy.to(table, "pandas", copy=False)
    assert pointer(df["v"]) == pointer(values)
    assert df["n"].isna().sum() == 2


def test_polars_to_pandas_and_back_round_trips() -> None:
    frame = pl.DataFrame({"x": [1.5, 2.5], "y": [3, 4], "s": ["a", "b"]})
    back = zerocopy.to(zerocopy.to(frame, "pandas"), "polars")
    assert back.equals(frame)


def test_polars_frame_to_tensor_copies_with_reason() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    with pytest.raises(zerocopy.NotZeroCopyError, match="own buffer"):
        zerocopy.to(frame, "torch", copy=False)
    assert zerocopy.to(frame, "torch").tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_registered_column_block_stacks_without_copy() -> None:
    from zerocopy.exchange.blocks import register

    block = register(zerocopy.empty((2, 50), np.float32))  # row i = column i
    block[:] = np.arange(100).reshape(2, 50)
    table = pa.table({n: pa.Array.from_buffers(pa.float32(), 50, [None, pa.py_buffer(block[i])])
                      for i, n in enumerate("xy")})
    t = zerocopy.to(table, "torch", copy=False)
    assert pointer(t) == pointer(block)
    assert np.array_equal(t.numpy(), block.T)


def test_adjacent_but_unregistered_columns_are_not_stacked() -> None:
    table = pa.table({"x": pa.array(np.arange(3.0)), "y": pa.array(np.arange(3.0))})
    with pytest.raises(zerocopy.NotZeroCopyError):
        zerocopy.to(table, "numpy", copy=False)


@pytest.mark.parametrize("kind", ["pyarrow", "polars", "pandas"])
def test_column_block_is_a_table_and_a_tensor(kind: str) -> None:
    block = zerocopy.column_block(500, ["x", "y", "z"], dtype=np.float32)
    table = block.table(kind)
    for i, column in enumerate(block.column_arrays()):
        column[:] = np.arange(500) + 1000 * i
    t = zerocopy.to(table, "torch", copy=False)
    assert pointer(t) == pointer(block.buffer)
    assert t.shape == (500, 3) and t[7, 2].item() == 2007.0
    block.column_arrays()[1][7] = -1.0  # written through the block, seen in the tensor
    assert t[7, 1].item() == -1.0
