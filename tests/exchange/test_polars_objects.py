"""Polars objects as they come (issue 8): slices, several chunks, non-numeric columns,
nulls, JAX's alignment, explain vs matrix, and zero-column layouts towards Polars."""

from __future__ import annotations

import numpy as np
import pytest

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from tests.helpers.frameworks import pointer, same_bits, values  # noqa: E402

import zerocopy  # noqa: E402
from zerocopy.cli.explain import probe  # noqa: E402
from zerocopy.testing import probe_pair  # noqa: E402

TENSORS = ["numpy", "torch", "jax", "tensorflow"]


def _base() -> pl.Series:
    return pl.Series("a", zerocopy.aligned(np.arange(16, dtype="f4")))


def _chunked() -> pl.Series:
    return pl.concat([_base(), _base()], rechunk=False)


# --------------------------------------------------------------- slices and chunks

def test_sliced_series_shares_from_its_offset() -> None:
    base = _base()
    sliced = base.slice(3, 5)
    out = zerocopy.to(sliced, "numpy", copy=False)
    assert pointer(out) == pointer(base.to_numpy()) + 3 * 4
    assert out.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]


@pytest.mark.parametrize("target", [*TENSORS, "pandas"])
def test_sliced_series_values_in_every_target(target: str) -> None:
    sliced = _base().slice(3, 5)
    for copy in (None, True):
        assert same_bits(values(zerocopy.to(sliced, target, copy=copy)), sliced.to_numpy())


@pytest.mark.parametrize("target", TENSORS)
def test_chunked_series_one_stated_copy_or_refusal(target: str) -> None:
    s = _chunked()
    plan = zerocopy.explain(s, target)
    assert plan.copies and plan.copied_bytes == s.len() * 4
    assert any("2 chunks" in c for c in plan.caveats)
    assert same_bits(values(zerocopy.to(s, target)), np.concatenate([np.arange(16, dtype="f4")] * 2))
    with pytest.raises(zerocopy.NotZeroCopyError, match="chunks"):
        zerocopy.to(s, target, copy=False)
    assert s.n_chunks() == 2  # the source is never rechunked behind the caller's back


def test_chunked_series_to_arrow_keeps_its_chunks_without_copy() -> None:
    base = _base()
    s = pl.concat([base, base], rechunk=False)
    out = zerocopy.to(s, "pyarrow", copy=False)
    assert isinstance(out, pa.ChunkedArray) and out.num_chunks == 2
    assert out.chunk(0).buffers()[1].address == pointer(base.to_numpy())
    assert out.to_pylist() == s.to_list()
    assert s.n_chunks() == 2


def test_chunked_frame_to_tensor_copies_with_reason_and_refuses_copy_false() -> None:
    frame = pl.concat([pl.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})] * 2, rechunk=False)
    assert zerocopy.explain(frame, "torch").copies
    assert same_bits(values(zerocopy.to(frame, "torch")), frame.to_numpy())
    with pytest.raises(zerocopy.NotZeroCopyError):
        zerocopy.to(frame, "torch", copy=False)


# --------------------------------------------------------------- what has no array form

_ODD = {"String": lambda: pl.Series("s", ["a", "b"]),
        "Categorical": lambda: pl.Series("s", ["a", "b"], dtype=pl.Categorical),
        "List": lambda: pl.Series("s", [[1], [2]]),
        "Struct": lambda: pl.Series("s", [{"x": 1}, {"x": 2}])}


@pytest.mark.parametrize("target", TENSORS)
@pytest.mark.parametrize("kind", sorted(_ODD))
def test_non_numeric_columns_are_typed_errors_with_a_hint(kind: str, target: str) -> None:
    s = _ODD[kind]()
    for obj in (s, s.to_frame()):
        with pytest.raises(zerocopy.UnsupportedDtypeError, match="Hint: encode or cast"):
            zerocopy.to(obj, target)


@pytest.mark.parametrize("kind", sorted(_ODD))
def test_non_numeric_columns_still_reach_table_frameworks(kind: str) -> None:
    s = _ODD[kind]()
    assert zerocopy.to(s, "pyarrow").to_pylist() == s.to_list()
    assert len(zerocopy.to(s, "pandas")) == 2


@pytest.mark.parametrize("target", TENSORS)
def test_nulls_raise_naming_the_column_with_a_fill_hint(target: str) -> None:
    frame = pl.DataFrame({"ok": [1.0, 2.0], "holes": [1.0, None]})
    for obj in (frame, frame["holes"]):
        with pytest.raises(zerocopy.NullValuesError, match=r"'holes'.*fill_null"):
            zerocopy.to(obj, target)


# --------------------------------------------------------------- JAX, explain and the matrix

def test_unaligned_series_to_jax_is_a_stated_copy_naming_alignment() -> None:
    s = _base().slice(1, 8)  # 4 bytes past a 64-byte boundary
    plan = zerocopy.explain(s, "jax")
    assert plan.copies and any("64-byte" in c for c in plan.caveats)
    assert same_bits(values(zerocopy.to(s, "jax")), s.to_numpy())


@pytest.mark.parametrize("source", ["polars", "pandas"])
@pytest.mark.parametrize("target", ["numpy", "torch", "jax", "tensorflow", "pyarrow"])
def test_explain_cli_and_matrix_agree(source: str, target: str) -> None:
    plan = zerocopy.explain(probe(source, "float32", (64,), "C"), target)
    cell = probe_pair(source, target, "float32")
    assert cell.status in ("Z", "C")
    assert plan.copies == (cell.status == "C"), (plan, cell)


# --------------------------------------------------------------- copy modes into Polars

@pytest.mark.parametrize("source", ["numpy", "torch", "jax", "tensorflow", "pyarrow", "pandas"])
def test_copy_modes_into_polars(source: str) -> None:
    from tests.helpers.frameworks import make_source

    for copy in (True, False):
        data = np.arange(1, 17, dtype="f4")
        obj, writer = make_source(source, data)
        try:
            out = zerocopy.to(obj, "polars", copy=copy)
        except zerocopy.NotZeroCopyError:
            assert copy is False
            continue
        writer.reshape(-1)[0] = 0
        seen = out.to_numpy()[0] == 0
        assert seen is not copy, (source, copy)


# --------------------------------------------------------------- layout towards Polars

@pytest.mark.parametrize("field", ["m8[s]", "M8[s]", "c8", "V4"])
def test_to_columns_polars_refuses_what_polars_cannot_type(field: str) -> None:
    records = np.zeros(4, dtype=[("x", "f4"), ("y", field)])
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="'y'"):
        zerocopy.to_columns(records, to="polars")


@pytest.mark.parametrize("field", ["m8[ns]", "m8[ms]", "M8[us]", "M8[D]"])
def test_to_columns_polars_keeps_time_fields(field: str) -> None:
    records = np.zeros(4, dtype=[("x", "f4"), ("y", field)])
    records["y"] = np.arange(4).astype(records["y"].dtype)
    table = zerocopy.to_columns(records, to="polars")
    assert table["y"].dtype.is_temporal()
    assert same_bits(table["y"].to_numpy(), records["y"])


@pytest.mark.parametrize("to", ["polars", "pyarrow", "pyarrow.Table", "pandas"])
def test_layout_tables_without_columns_keep_their_rows(to: str) -> None:
    empty = np.empty((5, 0), "f4")
    for table in (zerocopy.to_columns(empty, to=to), zerocopy.unstack(empty, to=to)):
        rows = table.num_rows if hasattr(table, "num_rows") else table.shape[0]
        assert rows == 5
    frame = {"polars": pl.DataFrame(height=5), "pandas": pd.DataFrame(index=range(5))}.get(to)
    if frame is not None:
        assert zerocopy.stack(frame).shape == (5, 0)
        assert tuple(zerocopy.stack(frame, to="torch").shape) == (5, 0)


@pytest.mark.parametrize("kind", ["String", "Categorical"])
def test_columns_built_at_export_are_a_stated_copy_to_arrow(kind: str) -> None:
    s = _ODD[kind]()
    for obj in (s, s.to_frame()):
        plan = zerocopy.explain(obj, "pyarrow")
        assert plan.copies and any("at export" in c for c in plan.caveats)
        with pytest.raises(zerocopy.NotZeroCopyError, match="at export"):
            zerocopy.to(obj, "pyarrow", copy=False)
    assert zerocopy.to(s, "pyarrow").to_pylist() == s.to_list()
    assert zerocopy.to(s, "polars", copy=True).to_list() == s.to_list()


# --------------------------------------------------------------- the fast key

_KEY_SERIES = {
    "f4": lambda: _base(), "empty": lambda: _base().slice(0, 0), "one": lambda: _base().slice(2, 1),
    "chunked": _chunked, "nulls": lambda: pl.Series([1.0, None, 3.0]),
    "sliced": lambda: _base().slice(3, 5), "bool": lambda: pl.Series([True, False]),
    "str": lambda: pl.Series(["a", "b"]), "datetime": lambda: pl.Series([0, 1]).cast(pl.Datetime("us", "UTC")),
    "list": lambda: pl.Series([[1, 2], [3]]), "categorical": lambda: pl.Series(["x", "y"], dtype=pl.Categorical),
    "appended": lambda: _base().append(_base()),
}


@pytest.mark.parametrize("name", sorted(_KEY_SERIES))
def test_polars_fast_key_from_the_rust_series_is_the_public_one(name: str) -> None:
    """The key is read from the Rust series behind a Series (0.72 -> 0.45 us); it must say
    what the public calls say, for every kind of Series, and the same without ``_s``."""
    from zerocopy.adapters import polars as adapter

    s = _KEY_SERIES[name]()
    n = len(s)
    public = (s.dtype, n if n < 2 else 2, s.n_chunks() > 1, s.null_count() > 0)
    assert adapter.fast_key(s) == public

    class Series:  # a Polars Series without the Rust side where this adapter looks
        def __init__(self, real: pl.Series) -> None:
            self.real, self.dtype = real, real.dtype

        def __len__(self) -> int:
            return len(self.real)

        def n_chunks(self) -> int:
            return self.real.n_chunks()

        def null_count(self) -> int:
            return self.real.null_count()

    assert adapter.fast_key(Series(s)) == public
