"""Tables <-> tensors and column blocks: values, zero-copy proofs (pointer + mutation)."""

from __future__ import annotations

import numpy as np
import pytest

from zerocopy.errors import LayoutError
from zerocopy.layout import column_block, stack, to_columns, to_records, unstack


def _arrow_ptr(col) -> int:
    chunk = col.chunk(0) if hasattr(col, "chunk") else col
    return chunk.buffers()[1].address


def _tables():
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    data = {"a": np.arange(6, dtype=np.float32), "b": np.arange(6, 12, dtype=np.float32),
            "c": np.arange(12, 18, dtype=np.float32)}
    return data, [pa.table(data), pa.record_batch(data), pd.DataFrame(data),
                  pl.DataFrame(data), data]


@pytest.mark.parametrize("order", ["C", "F"])
def test_stack_every_table_kind(order):
    data, tables = _tables()
    want = np.stack(list(data.values()), axis=1)
    for table in tables:
        got = stack(table, order=order)
        assert np.array_equal(got, want)
        assert got.flags.c_contiguous if order == "C" else got.flags.f_contiguous


def test_stack_casts_and_promotes():
    t = {"i": np.arange(3, dtype=np.int32), "f": np.ones(3, np.float32)}
    assert stack(t).dtype == np.float64
    assert stack(t, dtype="f4").dtype == np.float32
    assert np.array_equal(stack(t, dtype="i8"), [[0, 1], [1, 1], [2, 1]])


def test_stack_into_out():
    t = {"a": np.arange(4.0), "b": np.arange(4.0) * 2}
    out = np.empty((4, 2))
    res = stack(t, out=out)
    assert res.ctypes.data == out.ctypes.data
    assert out[3].tolist() == [3.0, 6.0]


def test_unstack_f_order_is_zero_copy_in_every_table():
    pytest.importorskip("pyarrow")
    pytest.importorskip("polars")
    m = np.asfortranarray(np.arange(20, dtype=np.float64).reshape(5, 4))
    rb = unstack(m, ["a", "b", "c", "d"], copy=False)
    assert _arrow_ptr(rb.column(2)) == m[:, 2].ctypes.data
    pdf = unstack(m, list("abcd"), to="pandas", copy=False)
    assert pdf["c"].to_numpy().ctypes.data == m[:, 2].ctypes.data
    pldf = unstack(m, list("abcd"), to="polars", copy=False)
    assert pldf["c"].to_numpy().ctypes.data == m[:, 2].ctypes.data
    m[1, 2] = -1.0  # the write through the tensor shows in every table
    assert rb.column(2)[1].as_py() == -1.0
    assert pdf["c"].iloc[1] == -1.0
    assert pldf["c"][1] == -1.0


def test_unstack_c_order_copies_into_a_block():
    pytest.importorskip("pyarrow")
    m = np.arange(12, dtype=np.int32).reshape(4, 3)
    rb = unstack(m, ["x", "y", "z"])
    assert rb.column(1).to_pylist() == m[:, 1].tolist()
    # the table's columns are one F-order block, so stacking back in F order is free
    f = stack(rb, order="F", copy=False)
    assert f.ctypes.data == _arrow_ptr(rb.column(0))
    assert np.array_equal(f, m)


def test_block_is_table_and_tensor_at_once():
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    block = column_block(8, ["x", "y", "z"], dtype="f4")
    tensor = block.tensor()
    tensor[:] = np.arange(24, dtype=np.float32).reshape(3, 8).T
    tables = {"pyarrow": block.table("pyarrow"), "pandas": block.table("pandas"),
              "polars": block.table("polars")}
    assert _arrow_ptr(tables["pyarrow"].column(1)) == tensor[:, 1].ctypes.data
    assert tables["pandas"]["y"].to_numpy().ctypes.data == tensor[:, 1].ctypes.data
    assert tables["polars"]["y"].to_numpy().ctypes.data == tensor[:, 1].ctypes.data
    tensor[5, 1] = 99.0  # one write, seen by all three tables
    assert tables["pyarrow"].column(1)[5].as_py() == 99.0
    assert tables["pandas"]["y"].iloc[5] == 99.0
    assert tables["polars"]["y"][5] == 99.0
    # and stacking the block's table in F order gives the same memory back
    assert stack(tables["pyarrow"], order="F", copy=False).ctypes.data == tensor.ctypes.data
    assert isinstance(tables["pyarrow"], pa.RecordBatch)
    assert isinstance(tables["pandas"], pd.DataFrame)
    assert isinstance(tables["polars"], pl.DataFrame)


def test_block_tensor_shared_with_torch():
    torch = pytest.importorskip("torch")
    block = column_block(4, ["a", "b"], dtype="f8")
    t = block.tensor(like="torch")
    assert isinstance(t, torch.Tensor) and t.shape == (4, 2)
    t[2, 1] = 7.0
    assert block.columns["b"][2] == 7.0
    assert t.data_ptr() == block.buffer.ctypes.data


def test_mixed_block_has_no_tensor_but_fills_in_place():
    block = column_block(5, {"id": "i8", "v": ("f4", (2,)), "ok": "?"})
    assert block.uniform_dtype is None
    with pytest.raises(LayoutError, match="one dtype"):
        block.tensor()
    aos = np.zeros(5, [("id", "i8"), ("v", "f4", (2,)), ("ok", "?")])
    aos["id"] = np.arange(5)
    aos["v"][:, 1] = 2.5
    res = to_columns(aos, out=block, to="block")
    assert res is block
    assert block.columns["id"].tolist() == list(range(5))
    assert block.columns["v"][:, 1].tolist() == [2.5] * 5
    assert block.columns["id"].ctypes.data % 64 == 0
    assert "tensor(): unavailable" in block.explain()


def test_records_to_and_from_tables():
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")])
    aos = np.zeros(7, dt)
    for i, name in enumerate(dt.names):
        aos[name] = np.arange(7) % (2 if name == "e" else 100) + i
    rb = to_columns(aos, to="pyarrow")
    assert rb.schema.names == list(dt.names)
    assert to_records(rb).tobytes() == aos.tobytes()
    df = to_columns(aos, to="polars")
    assert to_records(df, aligned=True).dtype.itemsize == 24
    assert to_records(pa.Table.from_batches([rb])).tobytes() == aos.tobytes()
    assert isinstance(df, pl.DataFrame)


def test_sub_array_columns_to_arrow_and_back():
    pa = pytest.importorskip("pyarrow")
    dt = np.dtype([("id", "u4"), ("xyz", "f8", (3,))])
    aos = np.zeros(4, dt)
    aos["xyz"] = np.arange(12.0).reshape(4, 3)
    rb = to_columns(aos, to="pyarrow")
    assert pa.types.is_fixed_size_list(rb.schema.field("xyz").type)
    assert to_records(rb, dtype=dt).tobytes() == aos.tobytes()
