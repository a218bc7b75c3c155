"""Repeated calls with a ColumnBlock: the plan kept on the block gives the same bytes as
the general path, and anything the plan does not cover still meets the general checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layout_support import random_records, record_dtypes

from zerocopy.errors import LayoutError, NotZeroCopyError
from zerocopy.layout import column_block, record_layout, stack, to_columns, to_records
from zerocopy.layout._layout import RecordLayout


def _block_for(dt: np.dtype, n: int):
    layout = record_layout(dt)
    return column_block(n, {f.name: f.column_dtype for f in layout.fields})


@settings(max_examples=40, deadline=None)
@given(dt=record_dtypes(), n=st.sampled_from([2, 3, 64, 1001]))
def test_block_round_trip_repeated(dt: np.dtype, n: int) -> None:
    block = _block_for(dt, n)
    out = np.full(n * dt.itemsize, 0xAB, np.uint8)
    for seed in range(3):  # the first call plans, the next ones reuse the plan
        aos = random_records(dt, n, seed)
        cols = to_columns(aos, out=block)
        want = to_columns(aos, copy=True)
        assert list(cols) == list(want)
        for name in want:
            assert cols[name].tobytes() == want[name].tobytes()
        recs = to_records(block, dtype=dt, out=out)
        assert recs.tobytes() == to_records(want, dtype=dt).tobytes()
        assert recs.dtype == record_layout(dt).to_dtype()


def test_raw_bytes_names_and_to_block() -> None:
    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "i1")], align=True)
    n = 100
    aos = random_records(dt, n)
    block = column_block(n, {"a": "i8", "c": "i1"})
    for _ in range(2):
        got = to_columns(aos.view(np.uint8), dtype=dt, names=["a", "c"], out=block, to="block")
        assert got is block
        assert block.columns["a"].tobytes() == np.ascontiguousarray(aos["a"]).tobytes()
        assert block.columns["c"].tobytes() == np.ascontiguousarray(aos["c"]).tobytes()


def test_strided_and_reversed_records_into_block() -> None:
    dt = np.dtype([("x", "f4"), ("y", "f4"), ("z", "i2")])
    base = random_records(dt, 400)
    for aos in (base[::2], base[::-1], base[1::3]):
        block = _block_for(dt, len(aos))
        for _ in range(2):
            cols = to_columns(aos, out=block)
            for name in dt.names:
                assert cols[name].tobytes() == np.ascontiguousarray(aos[name]).tobytes()


def test_padding_is_zeroed_on_every_call() -> None:
    dt = np.dtype([("a", "i1"), ("b", "i8"), ("c", "i2")], align=True)
    n = 50
    block = _block_for(dt, n)
    to_columns(random_records(dt, n), out=block)
    out = np.full(n, 0xFF, np.uint8).repeat(dt.itemsize)
    for _ in range(2):
        out.fill(0xFF)
        recs = to_records(block, dtype=dt, out=out)
        raw = recs.view(np.uint8).reshape(n, dt.itemsize)
        assert not raw[:, 1:8].any() and not raw[:, 18:].any()


def test_matrix_and_stack_with_block() -> None:
    n, k = 300, 5
    a = np.random.default_rng(3).standard_normal((n, k)).astype(np.float32)
    block = column_block(n, [str(j) for j in range(k)], dtype="f4")
    out = np.zeros((n, k), np.float32)
    for _ in range(2):
        to_columns(a, out=block)
        assert np.array_equal(block.tensor(), a)
        assert stack(block, out=out) is not None and np.array_equal(out, a)
        assert np.array_equal(stack(block), a)
    with pytest.raises(NotZeroCopyError):
        stack(block, copy=False)


def test_changes_between_calls_take_the_general_checks() -> None:
    dt = np.dtype([("x", "f4"), ("y", "i8")])
    block = _block_for(dt, 10)
    to_columns(np.zeros(10, dt), out=block)
    with pytest.raises(LayoutError):
        to_columns(np.zeros(11, dt), out=block)  # another row count
    with pytest.raises(LayoutError):
        to_records(block, dtype=dt, out=np.zeros(9, dt))
    ro = np.zeros(10, dt)
    ro.flags.writeable = False
    with pytest.raises(LayoutError):
        to_records(block, dtype=dt, out=ro)
    with pytest.raises(NotZeroCopyError):
        to_columns(np.zeros(10, dt), out=block, copy=False)


def test_layouts_are_made_once_per_dtype() -> None:
    dt = np.dtype([("x", "f4"), ("y", "i8")], align=True)
    assert record_layout(dt) is record_layout(np.dtype(dt))
    built = RecordLayout.build(["x", "y"], ["f4", "i8"], aligned=True)
    assert built is RecordLayout.build(("x", "y"), [np.dtype("f4"), np.dtype("i8")],
                                       aligned=True)
    assert built.gaps() == [(4, 8)] and built.gaps() is not built.gaps()


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("shift", [0, 8, 20])
def test_large_mixed_records_streamed_columns(aligned: bool, shift: int) -> None:
    # Over 1 MiB: the streamed records -> columns kernel, aligned and unaligned columns,
    # a partial last tile.
    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?"),
                   ("f", "c16"), ("g", "u2", (3,))], align=aligned)
    n = 70_001
    aos = random_records(dt, n, seed=shift)
    cols = {}
    for j, name in enumerate(dt.names):
        sub = dt.fields[name][0]
        raw = np.zeros(n * sub.itemsize + 64 + shift + j, np.uint8)
        start = (-raw.ctypes.data) % 64 + shift + j  # column starts off any cache line
        cols[name] = raw[start:start + n * sub.itemsize].view(sub.base).reshape(
            n, *sub.shape)
    got = to_columns(aos, out=cols)
    for name in dt.names:
        assert got[name].tobytes() == np.ascontiguousarray(aos[name]).tobytes()
    block = _block_for(dt, n)
    to_columns(aos, out=block)
    for name in dt.names:
        assert block.columns[name].tobytes() == np.ascontiguousarray(aos[name]).tobytes()


def test_numpy_fallback_with_padding_and_empty_fields(monkeypatch) -> None:
    from zerocopy.layout import _cpu

    monkeypatch.setattr(_cpu, "_kernel", [None])
    dt = np.dtype({"names": ["a", "z", "b"], "formats": ["i1", ("f4", (0,)), "i8"],
                   "offsets": [0, 1, 8], "itemsize": 24})
    aos = random_records(dt, 9)
    cols = to_columns(aos)
    assert cols["b"].tobytes() == np.ascontiguousarray(aos["b"]).tobytes()
    recs = to_records(cols, dtype=dt).view(np.uint8).reshape(9, 24)
    assert not recs[:, 1:8].any() and not recs[:, 16:].any()
    assert recs[:, 8:16].tobytes() == np.ascontiguousarray(aos["b"]).tobytes()


@pytest.mark.parametrize("shift", [0, 16, 40])
def test_large_padded_records_streamed(shift: int) -> None:
    # Over 1 MiB, records with padding: built in a zeroed scratch tile and streamed out,
    # into buffers on and off cache lines, with a partial last tile; padding always zero.
    dt = np.dtype([("a", "i1"), ("b", "i8"), ("c", "f4"), ("d", "u2", (3,)), ("e", "?")],
                  align=True)
    n = 90_017
    aos = random_records(dt, n, seed=shift)
    cols = to_columns(aos, copy=True)
    raw = np.full(n * dt.itemsize + 64 + shift, 0xEE, np.uint8)
    start = (-raw.ctypes.data) % 64 + shift
    out = raw[start:start + n * dt.itemsize]
    got = to_records(cols, dtype=dt, out=out)
    assert got.tobytes() == to_records(cols, dtype=dt).tobytes()
    layout = record_layout(dt)
    rows = got.view(np.uint8).reshape(n, dt.itemsize)
    for a, b in layout.gaps():
        assert not rows[:, a:b].any()
    for name in dt.names:
        assert np.ascontiguousarray(got[name]).tobytes() == cols[name].tobytes()
    assert (raw[:start] == 0xEE).all()  # nothing written outside the buffer
    assert (raw[start + n * dt.itemsize:] == 0xEE).all()


@pytest.mark.parametrize("aligned", [False, True])
def test_large_mixed_records_from_strided_columns_bit_for_bit(aligned: bool) -> None:
    # Over 1 MiB, columns -> records: the kernel made for this record layout (unrolled
    # loads and stores per field, widths 1, 2, 4, 8 and others), columns read with strides
    # that are not their widths, a partial last tile; every byte checked against NumPy.
    from zerocopy.layout import _cpu_numba

    dt = np.dtype([("a", "i8"), ("b", "f4"), ("c", "u1", (3,)), ("d", "i1"), ("e", "?"),
                   ("f", "c16"), ("g", "u2")], align=aligned)
    n = 65_537
    aos = random_records(dt, n, seed=7)
    cols = {}
    for name in dt.names:  # every other element of a twice-as-long column: a stride
        wide = np.empty(2 * n, dt.fields[name][0])
        wide[::2] = aos[name]
        cols[name] = wide[::2]
    before = len(_cpu_numba._record_scatters)
    got = to_records(cols, dtype=dt)
    want = np.zeros(n, dt)
    for name in dt.names:
        want[name] = aos[name]
    assert got.tobytes() == want.tobytes()  # fields and zero padding, bit for bit
    assert len(_cpu_numba._record_scatters) >= max(before, 1)
