"""``zerocopy.stack`` and ``zerocopy.to`` give the same zero-copy answer for the same table.

Both ask one rule (``zerocopy.exchange.blocks.one_block``): the columns lie in one
allocation at a constant distance, with one dtype. For every table below, either both
share (the same pointer, strides and shape, and a write through the table's source is
seen by both results) or both raise ``NotZeroCopyError``. ``stack`` also promises an
order, so it shares in the order the block has (F: columns contiguous, C: rows
contiguous) and refuses the other.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import zerocopy
from zerocopy.errors import NotZeroCopyError, UnsupportedDtypeError
from zerocopy.exchange.blocks import is_ordered, one_block
from zerocopy.layout import _interop

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

ROWS, NAMES = 12, ("x", "y", "z", "w")


@dataclass
class Case:
    """A table and a way to write into the memory it was made from (row, column, value)."""

    table: Any
    write: Callable[[int, int, float], None]


def _values(dtype: str = "f8") -> np.ndarray:
    return np.arange(ROWS * len(NAMES), dtype=dtype).reshape(ROWS, len(NAMES))


def _writer(matrix: np.ndarray, rows: slice = slice(None), columns: list[int] | None = None) -> Any:
    def write(i: int, j: int, value: float) -> None:
        matrix[rows][i, columns[j] if columns is not None else j] = value

    return write


def _block(dtype: str = "f8") -> zerocopy.layout.ColumnBlock:
    block = zerocopy.column_block(ROWS, list(NAMES), dtype=dtype)
    block.tensor()[:] = _values(dtype)
    return block


def _block_writer(block: Any, rows: slice = slice(None), columns: list[int] | None = None) -> Any:
    def write(i: int, j: int, value: float) -> None:
        block.column_arrays()[(columns or list(range(len(NAMES))))[j]][rows][i] = value

    return write


def _parquet_block(tmp_path: Path) -> Any:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({n: _values()[:, j] for j, n in enumerate(NAMES)}), path, row_group_size=5)
    return zerocopy.read_parquet(path, to="block")


def _cases(tmp_path: Path) -> dict[str, Case]:
    c_matrix, f_matrix = _values(), np.asfortranarray(_values())
    block, parquet = _block(), _parquet_block(tmp_path)
    mixed = zerocopy.column_block(ROWS, {"x": "f8", "y": "f8", "n": "i8"})
    separate = {n: _values()[:, j].copy() for j, n in enumerate(NAMES)}
    return {
        "pandas over a C-order array": Case(pd.DataFrame(c_matrix, copy=False), _writer(c_matrix)),
        "pandas over an F-order array": Case(pd.DataFrame(f_matrix, copy=False), _writer(f_matrix)),
        "pandas rows sliced": Case(pd.DataFrame(f_matrix, copy=False).iloc[2:9],
                                   _writer(f_matrix, slice(2, 9))),
        "pandas, two columns apart (F)": Case(pd.DataFrame(f_matrix, copy=False)[[0, 2]],
                                             _writer(f_matrix, columns=[0, 2])),
        "pandas over a column block": Case(block.table("pandas"), _block_writer(block)),
        "pandas, columns of two dtypes": Case(pd.DataFrame({"a": np.arange(3.0), "b": np.arange(3)}),
                                             _writer(np.zeros((3, 2)))),
        "arrow batch over a column block": Case(block.table("pyarrow"), _block_writer(block)),
        "arrow table from read_parquet(to='pyarrow')": _arrow_case(
            zerocopy.read_parquet(tmp_path / "t.parquet")),
        "arrow batch over read_parquet(to='block')": Case(parquet.table("pyarrow"),
                                                         _block_writer(parquet)),
        "arrow batch sliced": Case(block.table("pyarrow").slice(3, 6),
                                   _block_writer(block, slice(3, 9))),
        "arrow batch, columns x and z": Case(block.table("pyarrow").select(["x", "z"]),
                                             _block_writer(block, columns=[0, 2])),
        "arrow batch, columns of two dtypes": Case(mixed.table("pyarrow"), _no_write),
        "arrow table of separate arrays": Case(pa.table(separate), _no_write),
        "polars over a column block": Case(block.table("polars"), _block_writer(block)),
        "polars sliced": Case(block.table("polars").slice(1, 10), _block_writer(block, slice(1, 11))),
        "polars of separate arrays": Case(pl.DataFrame(separate), _no_write),
    }


def _arrow_case(table: Any) -> Case:
    """A table whose source (the block read_parquet filled) is reached through the
    address of its Arrow buffers."""
    def write(i: int, j: int, value: float) -> None:
        chunk = table.column(j).chunk(0)
        ctypes.c_double.from_address(chunk.buffers()[1].address + (chunk.offset + i) * 8).value = value

    return Case(table, write)


def _no_write(i: int, j: int, value: float) -> None:
    raise AssertionError("a table that shares should say how to write into its source")


def _attempt(convert: Callable[[], Any]) -> Any:
    """The result, or None where it refused to share (NotZeroCopyError; for columns of
    several dtypes ``to`` may say first that no tensor holds them without a cast)."""
    try:
        return convert()
    except (NotZeroCopyError, UnsupportedDtypeError):
        return None


def _answers(table: Any) -> tuple[Any, dict[str, Any]]:
    shared = _attempt(lambda: zerocopy.to(table, "numpy", copy=False))
    stacked = {order: _attempt(lambda o=order: zerocopy.stack(table, order=o, copy=False))
               for order in "CF"}
    return shared, stacked


# Labels of _cases(), known at collection time (the tables are built in each test).
LABELS = ["pandas over a C-order array", "pandas over an F-order array", "pandas rows sliced",
          "pandas, two columns apart (F)", "pandas over a column block",
          "pandas, columns of two dtypes", "arrow batch over a column block",
          "arrow table from read_parquet(to='pyarrow')",
          "arrow batch over read_parquet(to='block')", "arrow batch sliced",
          "arrow batch, columns x and z", "arrow batch, columns of two dtypes",
          "arrow table of separate arrays", "polars over a column block", "polars sliced",
          "polars of separate arrays"]


@pytest.mark.parametrize("label", LABELS)
def test_stack_and_to_agree(label: str, tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    assert list(cases) == LABELS
    case = cases[label]
    shared, stacked = _answers(case.table)
    if shared is None:
        assert stacked == {"C": None, "F": None}, "to() refused to share, stack() shared"
        return
    orders = [order for order in "CF" if is_ordered(shared, order)]
    assert orders, "every view these tables give is column- or row-major"
    for order in "CF":
        got = stacked[order]
        if order not in orders:
            assert got is None, f"stack(order={order!r}) shared a block laid out otherwise"
            continue
        assert got is not None, f"to() shared, stack(order={order!r}) refused"
        assert got.ctypes.data == shared.ctypes.data
        assert got.strides == shared.strides and got.shape == shared.shape
        assert np.array_equal(got, shared)
    case.write(1, 1, -7.0)  # written through the table's source, seen by both results
    assert shared[1, 1] == -7.0
    assert all(stacked[o][1, 1] == -7.0 for o in orders)


def test_a_block_strided_both_ways_is_one_block_without_an_order(tmp_path: Path) -> None:
    """Columns 0 and 2 of a frame over a C-order array: one block (to() shares it), but
    neither its rows nor its columns are contiguous, so stack() keeps its order promise
    and refuses; the rule itself gives to()'s very view."""
    matrix = _values()
    frame = pd.DataFrame(matrix, copy=False)[[0, 2]]
    shared = zerocopy.to(frame, "numpy", copy=False)
    _, columns = _interop.table_columns(frame)
    view = one_block(columns)
    assert view is not None and view.ctypes.data == shared.ctypes.data
    assert view.strides == shared.strides
    assert not is_ordered(view, "C") and not is_ordered(view, "F")
    for order in "CF":
        with pytest.raises(NotZeroCopyError, match="contiguous"):
            zerocopy.stack(frame, order=order, copy=False)
        assert np.array_equal(zerocopy.stack(frame, order=order), matrix[:, [0, 2]])


def test_adjacent_columns_of_separate_allocations_are_no_block() -> None:
    """Columns that happen to lie back to back (slices of one buffer, each wrapped on its
    own by Arrow) are no block for either: sharing must not depend on the allocator."""
    buffer = np.arange(2 * ROWS, dtype="f8")
    table = pa.table({"a": pa.array(buffer[:ROWS]), "b": pa.array(buffer[ROWS:])})
    _, columns = _interop.table_columns(table)
    assert columns[1].ctypes.data == columns[0].ctypes.data + ROWS * 8  # adjacent indeed
    with pytest.raises(NotZeroCopyError):
        zerocopy.to(table, "numpy", copy=False)
    with pytest.raises(NotZeroCopyError):
        zerocopy.stack(table, order="F", copy=False)


def test_a_route_planned_for_a_block_does_not_fail_another_table() -> None:
    """Routes are cached by a table's facts (names, dtypes), which do not say where its
    columns lie: a table of the same names outside any block is copied (copy=None) or
    refused (copy=False), never a framework failure."""
    block = _block()
    assert zerocopy.shares_memory(zerocopy.to(block.table("pyarrow"), "numpy"), block.buffer)
    plain = pa.record_batch({n: _values()[:, j].copy() for j, n in enumerate(NAMES)})
    assert np.array_equal(zerocopy.to(plain, "numpy"), _values())
    with pytest.raises(NotZeroCopyError):
        zerocopy.to(plain, "numpy", copy=False)


def test_the_view_of_a_one_column_frame_starts_where_its_column_does() -> None:
    """A one-column masked frame is one block (its column); pandas reports no pointer for
    such frames, so the block edge reads the column's: JAX's 64-byte alignment check then
    refuses an unaligned one instead of planning a share that JAX would not keep."""
    pytest.importorskip("jax")
    values = np.zeros(ROWS + 8, np.uint16)[3:3 + ROWS]  # 6 bytes past an aligned start
    frame = pd.DataFrame({"c": pd.arrays.IntegerArray(values, np.zeros(ROWS, bool))}, copy=False)
    _, (column,) = _interop.table_columns(frame)
    assert column.ctypes.data == values.ctypes.data and column.ctypes.data % 64
    with pytest.raises(NotZeroCopyError, match="aligned"):
        zerocopy.to(frame, "jax", copy=False)
    assert np.array_equal(np.asarray(zerocopy.to(frame, "jax")), values[:, None])
