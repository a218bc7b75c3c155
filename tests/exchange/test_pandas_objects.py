"""pandas objects as they come (issue 8): nullable and Arrow-backed columns, nulls,
copy-on-write, sliced frames, frame cost, and the copy modes towards Arrow and Polars.

Sharing is proven by pointer equality and a write seen from the other side; copies by a
write that is not seen; values bit for bit against pandas' own ``to_numpy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

from tests.helpers.frameworks import pointer, same_bits, values  # noqa: E402

import zerocopy  # noqa: E402

TENSORS = ["numpy", "torch", "jax", "tensorflow"]


def _address(x: np.ndarray) -> int:
    return int(x.__array_interface__["data"][0])


# --------------------------------------------------------------- nulls

_NULL_COLUMNS = {
    "Int32": lambda: pd.array([1, None, 3], dtype="Int32"),
    "Float32": lambda: pd.array([1.5, None, 3.5], dtype="Float32"),
    "boolean": lambda: pd.array([True, None, False], dtype="boolean"),
    "int32[pyarrow]": lambda: pd.array([1, None, 3], dtype="int32[pyarrow]"),
}


@pytest.mark.parametrize("target", TENSORS)
@pytest.mark.parametrize("kind", sorted(_NULL_COLUMNS))
def test_frame_nulls_raise_naming_the_column_with_a_fill_hint(kind: str, target: str) -> None:
    df = pd.DataFrame({"ok": np.arange(3, dtype="f4"), "holes": _NULL_COLUMNS[kind]()})
    with pytest.raises(zerocopy.NullValuesError, match="'holes'") as caught:
        zerocopy.to(df, target)
    text = str(caught.value)
    assert "fillna" in text and "na_value" in text
    assert "'ok'" not in text


@pytest.mark.parametrize("target", TENSORS)
@pytest.mark.parametrize("kind", sorted(_NULL_COLUMNS))
def test_series_nulls_raise_never_an_object_array(kind: str, target: str) -> None:
    s = pd.Series(_NULL_COLUMNS[kind](), name="holes")
    with pytest.raises(zerocopy.NullValuesError, match="'holes'"):
        zerocopy.to(s, target)


@pytest.mark.parametrize("target", TENSORS)
def test_object_column_with_na_is_a_typed_error_with_a_hint(target: str) -> None:
    s = pd.Series([1, pd.NA, 3], dtype=object)
    for obj in (s, s.to_frame("o")):
        with pytest.raises(zerocopy.UnsupportedDtypeError, match="na_value"):
            zerocopy.to(obj, target)


@pytest.mark.parametrize("target", ["pyarrow", "polars"])
def test_nulls_survive_into_table_frameworks(target: str) -> None:
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int32")})
    out = zerocopy.to(df, target)
    table = out if target == "pyarrow" else out.to_arrow()
    assert table.column("a").to_pylist() == [1, None, 3]
    assert str(table.schema.field("a").type) == "int32"


# --------------------------------------------------------------- nullable / Arrow-backed, no nulls

@pytest.mark.parametrize("dtype", ["Int32", "Float32", "UInt8", "Int64"])
def test_masked_column_without_nulls_shares_its_values(dtype: str) -> None:
    s = pd.Series(pd.array([1, 2, 3, 4], dtype=dtype))
    out = zerocopy.to(s, "numpy", copy=False)
    data = s.array._data
    assert out.dtype == data.dtype  # Int32 stays int32, Float32 stays float32
    assert _address(out) == _address(data)
    data[0] = 9  # a write through pandas' own buffer is seen
    assert out[0] == 9


def test_arrow_backed_column_without_nulls_is_a_zero_copy_view() -> None:
    arrow = pa.array(np.arange(5, dtype="i4"))
    s = pd.Series(pd.arrays.ArrowExtensionArray(arrow))
    out = zerocopy.to(s, "numpy", copy=False)
    assert out.dtype == np.int32 and not out.flags.writeable
    assert _address(out) == arrow.buffers()[1].address
    assert out.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("target", TENSORS)
@pytest.mark.parametrize("dtype", ["Int32", "Float32", "int32[pyarrow]", "float[pyarrow]"])
def test_extension_frame_without_nulls_keeps_dtype_and_values(dtype: str, target: str) -> None:
    df = pd.DataFrame({"a": pd.array([1, 2, 3], dtype=dtype), "b": pd.array([4, 5, 6], dtype=dtype)})
    expected = np.array([[1, 4], [2, 5], [3, 6]], dtype=df["a"].to_numpy().dtype)
    out = values(zerocopy.to(df, target))
    assert out.dtype == expected.dtype
    assert same_bits(out, expected)


def test_chunked_arrow_backed_frame_copies_once_and_refuses_copy_false() -> None:
    chunked = pa.chunked_array([pa.array([1.0, 2.0], pa.float32()), pa.array([3.0], pa.float32())])
    df = pd.DataFrame({"a": pd.arrays.ArrowExtensionArray(chunked)})
    plan = zerocopy.explain(df, "numpy")
    assert plan.copies and any("chunks" in c for c in plan.caveats)
    assert same_bits(zerocopy.to(df, "numpy"), np.array([[1.0], [2.0], [3.0]], "f4"))
    with pytest.raises(zerocopy.NotZeroCopyError, match="chunks"):
        zerocopy.to(df, "numpy", copy=False)


# --------------------------------------------------------------- copy-on-write policy

def test_torch_gets_a_stated_copy_under_copy_none() -> None:
    df = pd.DataFrame(np.ones((4, 2), "f4"))
    lazy = df.copy(deep=False)
    plan = zerocopy.explain(df, "torch")
    assert plan.copies and any("copy-on-write" in c for c in plan.caveats)
    t = zerocopy.to(df, "torch")
    assert pointer(t) != pointer(df.to_numpy())
    t[0, 0] = 99
    assert df.iloc[0, 0] == 1 and lazy.iloc[0, 0] == 1


def test_torch_shares_only_when_copy_false_is_asked_and_says_so() -> None:
    df = pd.DataFrame(np.ones((4, 2), "f4"))
    plan = zerocopy.explain(df, "torch", copy=False)
    assert not plan.copies and any("writable" in c for c in plan.caveats)
    t = zerocopy.to(df, "torch", copy=False)  # torch's "not writable" warning does not escape
    assert pointer(t) == pointer(df.to_numpy())
    t[0, 0] = 5  # the caller asked for the frame's memory: the write lands there
    assert df.iloc[0, 0] == 5


@pytest.mark.parametrize("target", ["numpy", "jax", "tensorflow"])
def test_read_only_targets_share_under_copy_none(target: str) -> None:
    s = pd.Series(zerocopy.empty(64, np.float32), copy=False)
    s_view = s.to_numpy()
    out = zerocopy.to(s, target)
    assert pointer(out) == _address(s_view)
    if target == "numpy":
        assert not out.flags.writeable


# --------------------------------------------------------------- sliced frames

def _slices() -> dict[str, Any]:
    df = pd.DataFrame(np.arange(60, dtype="f4").reshape(10, 6), columns=list("abcdef"))
    return {"rows 2:7": df.iloc[2:7], "reordered": df[["b", "a"]], "step rows": df.iloc[::2],
            "step columns": df.iloc[:, ::2], "one row": df.iloc[3:4], "reversed": df.iloc[::-1]}


@pytest.mark.parametrize("target", [*TENSORS, "pyarrow", "polars"])
@pytest.mark.parametrize("name", sorted(_slices()))
def test_sliced_frames_keep_shape_and_values(name: str, target: str) -> None:
    frame = _slices()[name]
    for copy in (None, True):
        out = zerocopy.to(frame, target, copy=copy)
        if target == "pyarrow":
            got = np.stack([c.to_numpy() for c in out.columns], axis=1)
            assert out.column_names == [str(c) for c in frame.columns]
        elif target == "polars":
            got = out.to_numpy()
            assert out.columns == [str(c) for c in frame.columns]
        else:
            got = values(out)
        assert same_bits(got, frame.to_numpy()), (name, target, copy)


# --------------------------------------------------------------- cost and facts

def test_frame_facts_never_take_a_column_by_iloc(monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame(np.ones((100, 64), "f4"))
    zerocopy.to(df, "torch")

    def refuse(self: Any) -> Any:
        raise AssertionError("per-column iloc on the conversion path")

    monkeypatch.setattr(pd.DataFrame, "iloc", property(refuse))
    for target in ("numpy", "torch", "jax"):
        assert values(zerocopy.to(df, target)).shape == (100, 64)
    assert zerocopy.inspect(df).shape == (100, 64)


def test_frame_pointer_is_where_its_array_starts() -> None:
    block = zerocopy.empty((3, 822), np.float32)
    df = pd.DataFrame(block.T, copy=False)
    assert zerocopy.inspect(df).ptr == _address(df.to_numpy())
    sliced = df.iloc[1:]  # 4 bytes past the boundary: JAX must get a stated copy
    assert zerocopy.inspect(sliced).ptr == _address(sliced.to_numpy())
    plan = zerocopy.explain(sliced, "jax")
    assert plan.copies
    assert same_bits(values(zerocopy.to(sliced, "jax")), sliced.to_numpy())


# --------------------------------------------------------------- copy modes towards Arrow and Polars

def _sources() -> dict[str, Any]:
    block = zerocopy.empty((2, 8), np.float32)
    block[:] = np.arange(16).reshape(2, 8)
    numeric = pd.DataFrame(block.T, columns=["a", "b"], copy=False)
    masked = pd.DataFrame({"a": pd.array(np.arange(8, dtype="i4"), dtype="Int32")})
    arrow = pd.DataFrame({"a": pd.arrays.ArrowExtensionArray(pa.array(np.arange(8.0)))})
    return {"numeric frame": (numeric, block[0]), "numeric series": (numeric["a"], block[0]),
            "masked frame": (masked, masked["a"].array._data),
            "arrow frame": (arrow, None)}


def _first_column(result: Any) -> np.ndarray:
    if isinstance(result, pl.DataFrame):
        return result.to_series(0).to_numpy()
    if isinstance(result, pa.Table | pa.RecordBatch):
        return result.column(0).to_numpy()
    return result.to_numpy()


def _first_buffer(result: Any) -> int:
    table = result if isinstance(result, pa.Table | pa.Array | pa.ChunkedArray) else result.to_arrow()
    column = table.column(0) if hasattr(table, "column") else table
    chunk = column.chunk(0) if hasattr(column, "chunk") else column
    return chunk.buffers()[1].address


@pytest.mark.parametrize("target", ["pyarrow", "polars"])
@pytest.mark.parametrize("name", sorted(_sources()))
def test_copy_true_towards_arrow_and_polars_never_shares(name: str, target: str) -> None:
    source, memory = _sources()[name]
    result = zerocopy.to(source, target, copy=True)
    before = _first_buffer(zerocopy.to(source, "pyarrow"))
    assert _first_buffer(result) != before
    if memory is not None:
        expected = _first_column(result).copy()
        memory[0] = 42
        assert same_bits(_first_column(result), expected)


@pytest.mark.parametrize("target", ["pyarrow", "polars"])
@pytest.mark.parametrize("name", ["numeric frame", "numeric series", "masked frame"])
def test_copy_false_towards_arrow_and_polars_shares(name: str, target: str) -> None:
    source, memory = _sources()[name]
    result = zerocopy.to(source, target, copy=False)
    assert _first_buffer(result) == _address(memory)
    memory[0] = 42
    assert _first_column(result)[0] == 42


@pytest.mark.parametrize("target", ["pyarrow", "polars", "pandas"])
def test_string_columns_cross_to_tables_in_every_copy_mode(target: str) -> None:
    s = pd.Series(["x", "yy", None] * 3)
    for copy in (None, True, False):
        out = zerocopy.to(s, target, copy=copy)
        got = out.to_pylist() if hasattr(out, "to_pylist") else (
            out.to_list() if hasattr(out, "to_list") else out.tolist())
        assert [None if pd.isna(v) else v for v in got] == ["x", "yy", None] * 3


_CONVERTED = {"category": lambda: pd.Series(["a", "b", "a"], dtype="category"),
              "tz datetime": lambda: pd.Series(pd.date_range("2020", periods=3, tz="UTC")),
              "object strings": lambda: pd.Series(["a", "b", None], dtype=object)}


@pytest.mark.parametrize("target", ["pyarrow", "polars"])
@pytest.mark.parametrize("kind", sorted(_CONVERTED))
def test_columns_pyarrow_must_convert_are_a_stated_copy(kind: str, target: str) -> None:
    s = _CONVERTED[kind]()
    for obj in (s, s.to_frame("c")):
        plan = zerocopy.explain(obj, target)
        assert plan.copies and any("no Arrow buffer of its own" in c for c in plan.caveats)
        for copy in (None, True):
            out = zerocopy.to(obj, target, copy=copy)
            table = out if target == "pyarrow" else out.to_arrow()
            column = table.column(0) if hasattr(table, "column") else table
            assert column.to_pylist() == pa.array(s, from_pandas=True).to_pylist()
        with pytest.raises(zerocopy.NotZeroCopyError, match="no Arrow buffer"):
            zerocopy.to(obj, target, copy=False)


def test_mixed_object_column_to_arrow_is_a_typed_error() -> None:
    s = pd.Series([1, "a", None], dtype=object)
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="no Arrow form"):
        zerocopy.to(s, "pyarrow")


def test_layout_stack_reads_pandas_blocks_not_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame(np.arange(40, dtype="f4").reshape(10, 4))
    expected = df.to_numpy().copy()

    def refuse(self: Any) -> Any:
        raise AssertionError("per-column iloc in zerocopy.stack")

    monkeypatch.setattr(pd.DataFrame, "iloc", property(refuse))
    assert same_bits(zerocopy.stack(df), expected)
    assert same_bits(zerocopy.stack(df, order="F"), expected)
