"""Records <-> columns on CPU: bit-exact against NumPy's own field access."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layout_support import field_bytes, random_records, record_dtypes, reference_records

from zerocopy.layout import _cpu, record_layout, to_columns, to_records


@settings(max_examples=80, deadline=None)
@given(dtype=record_dtypes(), n=st.sampled_from([0, 1, 2, 3, 17, 300]),
       seed=st.integers(0, 2**16))
def test_round_trip_any_layout(dtype, n, seed):
    aos = random_records(dtype, n, seed)
    cols = to_columns(aos)
    assert list(cols) == list(dtype.names)
    for name in dtype.names:
        assert cols[name].shape == aos[name].shape
        assert cols[name].dtype == aos[name].dtype
        assert cols[name].tobytes() == field_bytes(aos, name)
    back = to_records(cols, dtype=dtype)
    assert back.dtype == dtype
    assert back.tobytes() == reference_records(aos, dtype)


@settings(max_examples=40, deadline=None)
@given(dtype=record_dtypes(subarrays=False), aligned=st.booleans(), n=st.integers(0, 40))
def test_packed_or_aligned_choice(dtype, aligned, n):
    aos = random_records(dtype, n)
    rec = to_records(to_columns(aos), aligned=aligned)
    expect = np.dtype({"names": list(dtype.names),
                       "formats": [dtype.fields[f][0] for f in dtype.names]}, align=aligned)
    assert rec.dtype == expect
    assert rec.tobytes() == reference_records(aos, expect)


def test_mixed_record_large_runs_parallel_kernel():
    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")])
    aos = random_records(dt, 200_000, seed=3)  # 3.6 MB: above the threading threshold
    cols = to_columns(aos)
    for name in dt.names:
        assert cols[name].tobytes() == field_bytes(aos, name)
    assert to_records(cols).tobytes() == aos.tobytes()
    aligned = to_records(cols, aligned=True)
    assert aligned.dtype.itemsize == 24
    assert aligned.tobytes() == reference_records(aos, aligned.dtype)


@pytest.mark.parametrize("step", [2, -1, -3])
def test_strided_and_reversed_records(step):
    dt = np.dtype([("x", "f8"), ("y", "u2")])
    aos = random_records(dt, 101)[::step]
    cols = to_columns(aos)
    for name in dt.names:
        assert cols[name].tobytes() == field_bytes(aos, name)


def test_nested_struct_flattens_and_comes_back():
    inner = np.dtype([("lo", "i2"), ("hi", "f4")])
    dt = np.dtype([("id", "u8"), ("pt", inner), ("v", "f4", (3,))])
    aos = random_records(dt, 9)
    cols = to_columns(aos)
    assert list(cols) == ["id", "pt.lo", "pt.hi", "v"]
    assert cols["pt.hi"].tobytes() == field_bytes(aos["pt"], "hi")
    assert cols["v"].shape == (9, 3)
    assert to_records(cols, dtype=dt).tobytes() == reference_records(aos, dt)


def test_raw_bytes_with_description():
    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "i1")])  # 13-byte packed records
    aos = random_records(dt, 7)
    cols = to_columns(aos.tobytes(), dtype=dt)
    assert cols["a"].tobytes() == field_bytes(aos, "a")
    cols2 = to_columns(memoryview(bytearray(aos.tobytes())), dtype=[("a", "i8"), ("b", "f4"),
                                                                     ("c", "i1")])
    assert cols2["c"].tobytes() == field_bytes(aos, "c")


def test_names_select_fields():
    dt = np.dtype([("a", "i4"), ("b", "f8"), ("c", "u1")])
    aos = random_records(dt, 5)
    cols = to_columns(aos, names=["c", "a"])
    assert list(cols) == ["c", "a"]
    assert cols["c"].tobytes() == field_bytes(aos, "c")


def test_out_columns_filled_in_place():
    dt = np.dtype([("a", "i4"), ("b", "f8")])
    aos = random_records(dt, 50)
    out = {"a": np.zeros(50, "i4"), "b": np.zeros(50, "f8")}
    res = to_columns(aos, out=out)
    assert res["a"].ctypes.data == out["a"].ctypes.data
    assert out["b"].tobytes() == field_bytes(aos, "b")


def test_out_records_filled_in_place():
    cols = {"a": np.arange(4, dtype="i4"), "b": np.arange(4, dtype="f8")}
    buf = np.ones(4, [("a", "i4"), ("b", "f8")])
    res = to_records(cols, out=buf)
    assert res.ctypes.data == buf.ctypes.data
    assert buf["b"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_homogeneous_matrix_columns():
    m = np.arange(24, dtype=np.float32).reshape(8, 3)
    cols = to_columns(m, names=["x", "y", "z"])
    assert cols["y"].tolist() == m[:, 1].tolist()
    assert cols["y"].flags.c_contiguous
    back = to_records(cols, structured=False)
    assert back.shape == (8, 3) and back.flags.c_contiguous
    assert np.array_equal(back, m)


def test_f_order_matrix_gives_views():
    m = np.asfortranarray(np.arange(12, dtype=np.int64).reshape(4, 3))
    cols = to_columns(m, copy=False)
    assert cols["1"].ctypes.data == m[:, 1].ctypes.data
    m[2, 1] = -5  # a write to the matrix is seen in the column: shared memory
    assert cols["1"][2] == -5


def test_to_block_is_one_buffer():
    dt = np.dtype([("a", "f4"), ("b", "f4")])
    aos = random_records(dt, 10)
    block = to_columns(aos, to="block")
    tensor = block.tensor()
    assert tensor.shape == (10, 2) and tensor.flags.f_contiguous
    assert tensor[:, 1].tobytes() == field_bytes(aos, "b")


def test_numpy_fallback_kernel_matches(monkeypatch):
    monkeypatch.setattr(_cpu, "_kernel", [None])
    dt = np.dtype([("a", "i8"), ("b", "c8", (2,)), ("c", "?")])
    aos = random_records(dt, 33)
    cols = to_columns(aos)
    assert cols["b"].tobytes() == field_bytes(aos, "b")
    assert to_records(cols, dtype=dt).tobytes() == reference_records(aos, dt)


def test_layout_explain_shows_padding():
    text = record_layout([("a", "i1"), ("b", "i8")], aligned=True).explain()
    assert "padding" in text and "[1, 8)" in text
