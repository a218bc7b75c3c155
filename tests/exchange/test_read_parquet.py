"""zerocopy.read_parquet: chunked Parquet columns become one shared buffer, read once."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import zerocopy

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def parquet_file(tmp_path):
    rng = np.random.default_rng(7)
    table = pa.table({"a": rng.standard_normal(1000).astype("f4"),
                      "b": rng.standard_normal(1000).astype("f4")})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=128)  # 8 row groups: 8 chunks per column
    return path, table


def test_plain_read_is_chunked_so_tensors_copy(parquet_file):
    path, _ = parquet_file
    table = pq.read_table(path)
    assert table.column("a").num_chunks == 8
    with pytest.raises(zerocopy.NotZeroCopyError, match=r"chunks|own buffer"):
        zerocopy.to(table.column("a"), "numpy", copy=False)
    plan = zerocopy.explain(table, "torch")
    assert plan.copies


@pytest.mark.parametrize("to", ["pyarrow", "pandas", "polars"])
def test_read_parquet_gives_one_block_that_tensors_share(parquet_file, to):
    if to == "polars":
        pytest.importorskip("polars")
    pytest.importorskip("torch")
    path, expected = parquet_file
    table = zerocopy.read_parquet(path, to=to)
    gc.collect()  # the block must outlive the call that made it
    tensor = zerocopy.to(table, "torch", copy=False)
    want = np.stack([expected.column(n).to_numpy() for n in ("a", "b")], axis=1)
    assert tensor.shape == (1000, 2)
    assert np.array_equal(tensor.numpy().view(np.uint32), want.view(np.uint32))  # bit for bit
    # Shared: the tensor's pointer is the first column's, and a write shows in the table.
    column = zerocopy.to(table["a"] if to != "pyarrow" else table.column("a"), "numpy", copy=False)
    assert tensor.data_ptr() == column.__array_interface__["data"][0]
    assert zerocopy.shares_memory(column, tensor) is True
    tensor[3, 1] = 12345.0
    back = zerocopy.to(table, "numpy", copy=False)
    assert back[3, 1] == 12345.0


def test_read_parquet_keeps_nulls_and_strings_as_arrow(tmp_path):
    table = pa.table({"x": np.arange(6, dtype="i4"), "s": [str(i) for i in range(6)],
                      "n": pa.array([1.0, None, 3.0, 4.0, 5.0, 6.0])})
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=2)
    got = zerocopy.read_parquet(tmp_path / "m.parquet")
    assert got.equals(table)
    assert all(c.num_chunks == 1 for c in got.columns)
    x = zerocopy.to(got.column("x"), "numpy", copy=False)
    assert x.tolist() == list(range(6)) and x.dtype == np.int32
    with pytest.raises(zerocopy.NullValuesError, match="fill"):
        zerocopy.to(got.column("n"), "numpy")
    with pytest.raises(zerocopy.InvalidArgumentError, match="numeric"):
        zerocopy.read_parquet(tmp_path / "m.parquet", to="block")


def test_read_parquet_errors_are_typed(tmp_path):
    bad = tmp_path / "not.parquet"
    bad.write_text("hello")
    with pytest.raises(zerocopy.UnsupportedObjectError, match="Parquet") as refused:
        zerocopy.read_parquet(bad)
    assert "Got ArrowInvalid: " in str(refused.value) and "Hint: " in str(refused.value)
    with pytest.raises(zerocopy.InvalidArgumentError):
        zerocopy.read_parquet(bad, to="excel")


@pytest.mark.parametrize("where", ["missing.parquet", "no_folder/missing.parquet"])
def test_a_missing_file_is_typed_and_still_a_file_not_found_error(tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)  # a relative path, as a new user types it
    with pytest.raises(zerocopy.PathNotFoundError) as missing:
        zerocopy.read_parquet(where)  # was pyarrow's bare FileNotFoundError
    error = missing.value
    assert isinstance(error, zerocopy.ZeroCopyError) and isinstance(error, FileNotFoundError)
    assert error.filename == where and error.errno == 2
    text = str(error)
    assert text.startswith("No Parquet file at this path.") and f"Got {where!r}" in text
    assert ("does not exist either" in text) == ("/" in where)
    with pytest.raises(FileNotFoundError):  # existing except clauses keep working
        zerocopy.read_parquet(tmp_path / where)


def test_a_folder_without_parquet_files_is_typed_not_an_empty_table(tmp_path, parquet_file):
    # helper-19: pyarrow reads such a folder as a table of no columns, without a word.
    path, _ = parquet_file
    assert zerocopy.read_parquet(path.parent).num_rows == 1000  # a folder of files still reads
    empty = tmp_path / "folders" / "nothing"
    empty.mkdir(parents=True)
    with pytest.raises(zerocopy.PathNotFoundError, match="an empty folder") as error:
        zerocopy.read_parquet(empty)
    assert isinstance(error.value, FileNotFoundError) and error.value.filename == str(empty)
    hidden = tmp_path / "folders" / "hidden"
    hidden.mkdir()
    (hidden / "_SUCCESS").write_text("")
    with pytest.raises(zerocopy.PathNotFoundError, match=r"1 entry, none read as Parquet.*_SUCCESS"):
        zerocopy.read_parquet(hidden)


def test_unknown_columns_are_named_with_the_ones_there(parquet_file):
    path, _ = parquet_file
    with pytest.raises(zerocopy.InvalidArgumentError, match=r"'zz'.*Expected names from 'a', 'b'"):
        zerocopy.read_parquet(path, ["a", "zz"])
    assert zerocopy.read_parquet(path, ["b"]).column_names == ["b"]


def test_shares_memory_answers_for_any_two_objects():
    torch = pytest.importorskip("torch")
    x = np.arange(10.0)
    t = zerocopy.to(x, "torch")
    assert zerocopy.shares_memory(x, t) is True
    assert zerocopy.shares_memory(x[:5], zerocopy.to(x[5:], "torch")) is False
    assert zerocopy.shares_memory(x, torch.ones(3)) is False
