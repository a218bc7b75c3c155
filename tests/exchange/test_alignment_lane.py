"""The fast lane for plans that alignment decided (one plan per alignment, found by the
adapter's fast_pointer): the pointer it reads is the one inspect() reads, and an aligned
and a misaligned source of one signature, met in turn, each get their own plan without
inspect() being called again (a misaligned buffer handed to JAX or TensorFlow as if it
were aligned would be shared where it must be copied: TensorFlow aborts the process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tests.helpers.frameworks import pointer, same_bits

import zerocopy
from zerocopy.exchange import convert
from zerocopy.registry import adapter, installed

N = 33  # one past a multiple of 16 float32: [1:] starts 4 bytes past a 64-byte boundary


def _numpy(offset: int) -> Any:
    base = zerocopy.empty(N, np.float32)
    base[:] = np.arange(N)
    return base[offset:offset + N - 1]


def _torch(offset: int) -> Any:
    torch = pytest.importorskip("torch")
    base = zerocopy.empty(N, np.float32)
    base[:] = np.arange(N)
    return torch.from_numpy(base)[offset:offset + N - 1]


def _pandas(offset: int) -> Any:
    pd = pytest.importorskip("pandas")
    return pd.Series(_numpy(offset), copy=False)


def _pyarrow(offset: int) -> Any:
    pa = pytest.importorskip("pyarrow")
    base = zerocopy.empty(N, np.float32)
    base[:] = np.arange(N)
    return pa.Array.from_buffers(pa.float32(), N, [None, pa.py_buffer(base)]).slice(offset, N - 1)


def _polars(offset: int) -> Any:
    pl = pytest.importorskip("polars")
    base = zerocopy.empty(N, np.float32)
    base[:] = np.arange(N)
    return pl.Series(base)[offset:offset + N - 1]


SOURCES: dict[str, Callable[[int], Any]] = {
    "numpy": _numpy, "torch": _torch, "pandas": _pandas, "pyarrow": _pyarrow, "polars": _polars}


@pytest.mark.parametrize("name", sorted(SOURCES))
@pytest.mark.parametrize("offset", [0, 1, 2, 16])
def test_fast_pointer_is_where_inspect_says_the_data_starts(name: str, offset: int) -> None:
    x = SOURCES[name](offset)
    module = adapter(name)
    assert module.fast_key(x) is not None, "the lane would not be tried for this source"
    assert module.fast_pointer(x) == zerocopy.inspect(x).ptr
    assert (module.fast_pointer(x) % 64 == 0) == (offset % 16 == 0)


@pytest.mark.parametrize("name", ["jax", "tensorflow"])
def test_fast_pointer_of_framework_owned_arrays(name: str) -> None:
    if not installed(name):
        pytest.skip(f"{name} is not installed")
    x = adapter(name).make(np.arange(12, dtype=np.float32))
    assert adapter(name).fast_pointer(x) == zerocopy.inspect(x).ptr


@pytest.mark.parametrize("target", ["jax", "tensorflow"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_aligned_and_misaligned_sources_in_turn_each_get_their_plan_from_the_lane(
        name: str, target: str) -> None:
    if not installed(target):
        pytest.skip(f"{target} is not installed")
    zerocopy.clear_caches()
    aligned, misaligned = SOURCES[name](0), SOURCES[name](1)
    if zerocopy.explain(aligned, target).copies:
        pytest.skip(f"{name} -> {target} copies aligned sources too (not an alignment choice)")
    for x in (aligned, misaligned):  # both plans learned, through the slow lane
        zerocopy.to(x, target)
    cases = [(x, pointer(x), np.array(zerocopy.to(x, "numpy")))
             for x in (aligned, misaligned, SOURCES[name](2), SOURCES[name](16))]
    calls: list[Any] = []
    reader = convert._reader(aligned)
    convert.cache.put(type(aligned), reader._replace(
        inspect=lambda obj: calls.append(obj) or reader.inspect(obj)))
    try:  # only zerocopy.to(x, target) runs while inspect() is counted
        results = [(zerocopy.to(x, target), where, expected)
                   for _ in range(2) for x, where, expected in cases]
    finally:
        convert.cache.put(type(aligned), reader)
    for result, where, expected in results:
        assert (pointer(result) == where) is (where % 64 == 0), (name, target, where % 64)
        assert same_bits(np.asarray(result), expected)
    assert calls == [], "the fast lane inspected a source it had a plan for"
    with pytest.raises(zerocopy.NotZeroCopyError, match="64-byte"):
        zerocopy.to(misaligned, target, copy=False)
    assert pointer(zerocopy.to(aligned, target, copy=False)) == pointer(aligned)


def test_a_frame_without_a_fast_pointer_leaves_no_dead_entries_in_the_lane() -> None:
    # helper-20: a pandas frame (fast_pointer None) had its lane marker and plan written
    # again on every call, never read: df -> torch 20 -> 22-24 us, df -> jax 42-55 -> 59-61 us.
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(zerocopy.empty((64, 4), np.float32, order="F"))
    zerocopy.clear_caches()
    for target in ("torch", "jax", "tensorflow"):
        if not installed(target):
            continue
        for _ in range(2):
            zerocopy.to(df, target)
        lane = (type(df), adapter("pandas").fast_key(df), target, None)
        assert convert.cache.get(lane) is None, target


def test_polars_pointer_without_pyarrow_is_the_views_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # helper-20: without pyarrow the pointer read 0, which counts as aligned: a misaligned
    # slice went to TensorFlow as it was (the process aborted) and to JAX as "zero-copy".
    pytest.importorskip("polars")
    from zerocopy.adapters import polars as polars_adapter
    from zerocopy.errors import FrameworkNotInstalledError

    s = _polars(1)
    where = zerocopy.inspect(s).ptr
    assert where % 64 == 4

    real_require = polars_adapter.require

    def no_pyarrow(name: str, pip: str | None = None) -> Any:
        if name == "pyarrow":
            raise FrameworkNotInstalledError(f"{name} is not installed")
        return real_require(name, pip)

    monkeypatch.setattr(polars_adapter, "require", no_pyarrow)
    assert polars_adapter.fast_pointer(s) == where
    assert zerocopy.inspect(s).ptr == where


def test_tensorflow_fast_pointer_of_a_string_tensor_is_none_not_an_abort() -> None:
    # helper-20: TF's to_dlpack on a string tensor aborts the process (DataTypeCanUseMemcpy).
    if not installed("tensorflow"):
        pytest.skip("tensorflow is not installed")
    import tensorflow as tf

    assert adapter("tensorflow").fast_pointer(tf.constant(["a", "b"])) is None


def test_tensorflow_keys_tell_dtypes_apart_by_their_enum() -> None:
    """TensorFlow's key holds the dtype's enum (a DType hashes in Python on every lookup):
    equal for equal dtypes, different for different ones, and each repeated call returns
    its tensor's own dtype and values."""
    tf = pytest.importorskip("tensorflow")
    key = adapter("tensorflow").fast_key
    tensors = {dt: tf.constant(np.arange(5), dtype=dt) for dt in (tf.float32, tf.int32, tf.float64, tf.uint8)}
    keys = {dt: key(t) for dt, t in tensors.items()}
    assert len(set(keys.values())) == len(keys)
    assert key(tf.constant(np.ones(5), dtype=tf.float32)) == keys[tf.float32]
    for _ in range(3):  # the second and third calls take the lane
        for dt, t in tensors.items():
            out = zerocopy.to(t, "numpy")
            assert out.dtype == dt.as_numpy_dtype and out.tolist() == list(range(5))


@pytest.mark.parametrize("dtype", ["i1", "u2", "i4", "u8", "f2", "f4", "f8", "M8[ms]", "?"])
@pytest.mark.parametrize("n", [0, 1, 7])
def test_pyarrow_to_numpy_lane_is_the_same_read_only_view(dtype: str, n: int) -> None:
    """The lane's hop for plain Arrays (np.from_dlpack for numbers, to_numpy otherwise) gives
    what the planned call gives: the Arrow buffer itself (slice offset included), read-only,
    of the column's dtype; refused dtypes stay refused on repeated calls."""
    pa = pytest.importorskip("pyarrow")
    base = pa.array(np.arange(n + 3).astype(dtype))
    column = base.slice(2, n)
    results = []
    for _ in range(3):  # the second and third calls take the lane
        try:
            results.append(zerocopy.to(column, "numpy"))
        except zerocopy.ZeroCopyError as exc:
            results.append(type(exc))
    if dtype == "M8[ms]":  # no NumPy dtype: refused every time
        assert all(r is zerocopy.UnsupportedDtypeError for r in results)
        return
    if dtype == "?":  # Arrow stores bits: unpacked into a copy every time
        for out in results:
            assert out.dtype == np.bool_ and same_bits(out, np.arange(n + 3).astype("?")[2:2 + n])
            assert not n or pointer(out) != column.buffers()[1].address
        return
    for out in results:
        assert out.dtype == np.dtype(dtype) and out.shape == (n,)
        assert not out.flags.writeable
        assert same_bits(out, np.arange(n + 3).astype(dtype)[2:2 + n])
        if n:
            assert pointer(out) == column.buffers()[1].address + 2 * np.dtype(dtype).itemsize


def test_pyarrow_extension_type_without_hash_keeps_its_typed_error_on_repeated_calls() -> None:
    """A user's extension type that defines __eq__ but no __hash__ cannot be part of a lane
    key: repeated calls (every copy mode) give the first call's typed refusal, not a
    TypeError from the key lookup."""
    pa = pytest.importorskip("pyarrow")

    class Unhashable(pa.ExtensionType):  # noqa: PLW1641 (the point: __eq__ without __hash__)
        def __init__(self) -> None:
            super().__init__(pa.int64(), "zerocopy.test.unhashable")

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> Any:
            return cls()

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Unhashable)

    assert Unhashable.__hash__ is None
    column = pa.ExtensionArray.from_storage(Unhashable(), pa.array(np.arange(5, dtype="i8")))
    for copy in (None, None, None, False, True):
        with pytest.raises(zerocopy.UnsupportedDtypeError):
            zerocopy.to(column, "numpy", copy=copy)
