"""Bad input gets a typed error with a hint, never wrong data."""

from __future__ import annotations

import numpy as np
import pytest

import zerocopy
from zerocopy.errors import (
    LayoutError,
    NotZeroCopyError,
    NullValuesError,
    UnsupportedConversionError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    ZeroCopyError,
)
from zerocopy.layout import stack, to_columns, to_records, unstack


@pytest.mark.parametrize(("dtype", "error"), [
    ([("a", "f4"), ("s", "U4")], UnsupportedDtypeError),
    ([("a", "f4"), ("s", "S4")], UnsupportedDtypeError),
    ([("a", "f4"), ("o", "O")], UnsupportedObjectError),
    ([("a", ">f4"), ("b", "i2")], UnsupportedDtypeError),
    ([("a", "f4"), ("v", "V3")], UnsupportedDtypeError),
])
def test_bad_fields_refused(dtype, error):
    with pytest.raises(error, match="Hint:") as info:
        to_columns(np.zeros(3, dtype))
    assert isinstance(info.value, ZeroCopyError)


def test_object_matrix_refused():
    with pytest.raises(UnsupportedObjectError):
        to_columns(np.empty((2, 2), object))


def test_overlapping_records_refused():
    aos = np.zeros(10, [("a", "i8"), ("b", "i8")])
    overlapped = np.lib.stride_tricks.as_strided(aos, shape=(5,), strides=(8,))
    with pytest.raises(LayoutError, match="overlap"):
        to_columns(overlapped)


def test_overlapping_fields_refused_when_writing():
    union = np.dtype({"names": ["a", "b"], "formats": ["i4", "i2"], "offsets": [0, 2],
                      "itemsize": 4})
    cols = to_columns(np.zeros(3, union))  # reading a union is well defined
    with pytest.raises(LayoutError, match="overlapping"):
        to_records(cols, dtype=union)


def test_partial_record_bytes_refused():
    with pytest.raises(LayoutError, match="whole number"):
        to_columns(b"\x00" * 25, dtype=[("a", "i8"), ("b", "i4")])


def test_unstructured_1d_refused():
    with pytest.raises(LayoutError, match="dtype="):
        to_columns(np.zeros(8))


def test_copy_false_refused_for_interleaved():
    with pytest.raises(NotZeroCopyError):
        to_columns(np.zeros(4, [("a", "f4"), ("b", "f4")]), copy=False)
    with pytest.raises(NotZeroCopyError):
        unstack(np.zeros((4, 2)), copy=False)


def test_length_mismatch_refused():
    with pytest.raises(LayoutError, match="length"):
        to_records({"a": np.zeros(3), "b": np.zeros(4)})


def test_missing_field_refused():
    with pytest.raises(LayoutError, match="'c'"):
        to_records({"a": np.zeros(3)}, dtype=[("a", "f8"), ("c", "f8")])


def test_arrow_nulls_and_strings_refused():
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(NullValuesError, match="fill"):
        stack(pa.table({"a": [1.0, None], "b": [1.0, 2.0]}))
    with pytest.raises(UnsupportedDtypeError):
        stack(pa.table({"a": [1.0, 2.0], "s": ["x", "y"]}))
    with pytest.raises(UnsupportedDtypeError):
        stack(pa.table({"a": pa.array([[1], [2, 3]])}))


def test_pandas_nulls_strings_objects_refused():
    pd = pytest.importorskip("pandas")
    with pytest.raises(NullValuesError):
        stack(pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}))
    with pytest.raises(UnsupportedDtypeError):
        stack(pd.DataFrame({"s": ["x", "y"]}))
    with pytest.raises(UnsupportedObjectError):
        stack(pd.DataFrame({"o": pd.Series([object(), object()], dtype=object)}))


def test_polars_nulls_and_strings_refused():
    pl = pytest.importorskip("polars")
    with pytest.raises(NullValuesError):
        stack(pl.DataFrame({"a": [1.0, None]}))
    with pytest.raises(UnsupportedDtypeError):
        stack(pl.DataFrame({"s": ["x", "y"]}))


def test_complex_to_arrow_refused():
    pytest.importorskip("pyarrow")
    with pytest.raises(UnsupportedDtypeError, match="complex"):
        to_columns(np.zeros(2, [("z", "c8")]), to="pyarrow")


def test_sub_array_to_pandas_refused():
    pytest.importorskip("pandas")
    with pytest.raises(LayoutError, match="pyarrow"):
        to_columns(np.zeros(2, [("v", "f4", (3,))]), to="pandas")


def test_bad_order_and_target():
    with pytest.raises(LayoutError):
        stack({"a": np.zeros(2)}, order="K")
    # Layout takes exactly the targets zerocopy.to takes, and refuses others as it does.
    with pytest.raises(UnsupportedConversionError) as refused:
        to_columns(np.zeros((2, 2)), to="excel")
    with pytest.raises(UnsupportedConversionError) as refused_by_to:
        zerocopy.to(np.zeros(2), "excel")
    assert str(refused.value) == str(refused_by_to.value)


def test_aliases_and_modules_are_targets_as_in_zerocopy_to():
    cols = to_columns(np.zeros((3, 2)), to="np")
    assert type(cols["0"]) is np.ndarray
    assert type(to_columns(np.zeros((3, 2)), to=np)["1"]) is np.ndarray


_RECORDS = np.zeros(3, [("a", "f4"), ("b", "i4")])


@pytest.mark.parametrize("copy", ["yes", 1, 0, "no", 1.0])
@pytest.mark.parametrize("call", [
    lambda copy: stack({"a": np.zeros(3), "b": np.zeros(3)}, copy=copy),
    lambda copy: stack({"a": np.zeros(3), "b": np.zeros(3)}, order="F", copy=copy),
    lambda copy: stack(zerocopy.column_block(3, ["a", "b"], dtype="f8"), copy=copy),
    lambda copy: unstack(np.zeros((3, 2)), copy=copy),
    lambda copy: to_columns(_RECORDS, copy=copy),
], ids=["stack", "stack-F", "stack-block", "unstack", "to_columns"])
def test_copy_is_checked_as_zerocopy_to_checks_it(call, copy):
    """A truthy string or 1 decides whether memory may be shared: refused, not guessed."""
    with pytest.raises(zerocopy.InvalidArgumentError) as refused:
        call(copy)
    with pytest.raises(zerocopy.InvalidArgumentError) as refused_by_to:
        zerocopy.to(np.zeros(2), "numpy", copy=copy)
    assert str(refused.value) == str(refused_by_to.value)


def test_stack_copy_false_says_what_stacks_for_free():
    pd = pytest.importorskip("pandas")
    x = np.arange(8.0).reshape(4, 2)
    separate = {"a": np.arange(4.0), "b": np.arange(4.0)}
    with pytest.raises(NotZeroCopyError, match="separate buffers") as refused_f:
        stack(separate, order="F", copy=False)
    with pytest.raises(NotZeroCopyError, match="laid out in C order") as refused_c_block:
        stack(pd.DataFrame(x, copy=False), order="F", copy=False)
    for refused in (refused_f, refused_c_block):
        hint = str(refused.value).split("Hint:")[1]
        assert "copy=None" in hint and "column_block" in hint and "asfortranarray" in hint
    # ... and what the hint names does stack for free, sharing memory with the table.
    frame = pd.DataFrame(np.asfortranarray(x), copy=False)
    assert zerocopy.shares_memory(stack(frame, order="F", copy=False), frame.to_numpy())
    block = zerocopy.column_block(4, ["a", "b"], dtype="f8")
    stacked = stack(block, order="F", copy=False)
    stacked[0, 0] = 42.0
    assert block.views()[0][0] == 42.0
    assert stack(separate, order="F").shape == (4, 2)  # copy=None copies


@pytest.mark.parametrize("make", ["pandas", "pyarrow", "names=", "fields", "block"])
def test_repeated_column_names_are_a_layout_error_not_a_lost_column(make):
    """Columns are found by name: stack() of a frame with 'a' twice returned one column."""
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    x = np.arange(6.0).reshape(3, 2)
    calls = {
        "pandas": lambda: stack(pd.DataFrame(x, columns=["a", "a"])),
        "pyarrow": lambda: to_records(pa.table([pa.array(x[:, 0]), pa.array(x[:, 1])], names=["a", "a"])),
        "names=": lambda: unstack(x, ["a", "a"]),
        "fields": lambda: to_columns(np.zeros(3, [("a", "f4"), ("b", "i4")]), names=["a", "a"]),
        "block": lambda: zerocopy.column_block(3, ["a", "a"]),
    }
    with pytest.raises(LayoutError, match=r"repeats a column name.*Got 'a' repeated.*Hint: "):
        calls[make]()
