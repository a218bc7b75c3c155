"""Bad input: a typed error with expected/got/hint, never a crash or silent garbage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import zerocopy


@pytest.mark.parametrize("obj", [None, [1, 2, 3], [[1], [2, 3]], 3.5, "text", object()])
def test_not_an_array(obj: object) -> None:
    with pytest.raises(zerocopy.UnsupportedObjectError) as err:
        zerocopy.to(obj, "torch")
    assert isinstance(err.value, TypeError) and "Hint:" in str(err.value)


@pytest.mark.parametrize("dtype", [object, "U3", "S3", [("a", "f4"), ("b", "i4")], ">f4"])
def test_unshareable_numpy_dtypes(dtype: object) -> None:
    x = np.zeros(3, dtype=dtype)
    with pytest.raises(zerocopy.UnsupportedDtypeError) as err:
        zerocopy.to(x, "torch")
    assert "Hint:" in str(err.value)


def test_strings_in_a_table_column_cannot_become_a_tensor() -> None:
    import pandas as pd

    with pytest.raises(zerocopy.UnsupportedDtypeError):
        zerocopy.to(pd.Series(["a", "b"]), "torch")


def test_unknown_target() -> None:
    with pytest.raises(zerocopy.UnsupportedConversionError, match="Unknown target"):
        zerocopy.to(np.zeros(2), "matlab")


def test_target_given_as_module_or_alias() -> None:
    import torch

    x = np.arange(3.0)
    assert isinstance(zerocopy.to(x, torch), torch.Tensor)
    assert isinstance(zerocopy.to(x, "pt" if False else "pytorch"), torch.Tensor)


def test_errors_share_one_root_and_the_builtins_users_catch() -> None:
    assert issubclass(zerocopy.NotZeroCopyError, (zerocopy.ZeroCopyError, BufferError))
    assert issubclass(zerocopy.UnsupportedDtypeError, TypeError)
    assert issubclass(zerocopy.FrameworkNotInstalledError, ModuleNotFoundError)
    assert issubclass(zerocopy.NullValuesError, ValueError)


@pytest.mark.parametrize("framework", ["pandas", "polars", "pyarrow"])
def test_nulls_never_become_garbage(framework: str) -> None:
    import pyarrow as pa

    arrow = pa.array([1.0, None, 3.0], type=pa.float32())
    if framework == "pandas":
        import pandas as pd

        column = pd.Series(pd.arrays.ArrowExtensionArray(arrow))
    elif framework == "polars":
        import polars as pl

        column = pl.Series(arrow)
    else:
        column = arrow
    for target in ("numpy", "torch", "jax"):
        with pytest.raises(zerocopy.NullValuesError, match="1 nulls"):
            zerocopy.to(column, target)


def test_pandas_masked_nulls_are_refused_too() -> None:
    import pandas as pd

    with pytest.raises(zerocopy.NullValuesError):
        zerocopy.to(pd.Series([1, None, 3], dtype="Int64"), "torch")
    shared = zerocopy.to(pd.Series([1, 2, 3], dtype="Int64"), "numpy")
    assert shared.tolist() == [1, 2, 3]


@pytest.mark.parametrize(("args", "kwargs", "error"), [
    ((-1,), {}, zerocopy.InvalidArgumentError),           # was an array over the padding
    (((2, -1),), {}, zerocopy.InvalidArgumentError),
    ((2.5,), {}, zerocopy.InvalidArgumentError),
    ((3, "notadtype"), {}, zerocopy.UnsupportedDtypeError),
    ((3,), {"align": 0}, zerocopy.InvalidArgumentError),
    ((3,), {"align": 3}, zerocopy.InvalidArgumentError),
])
def test_empty_refuses_what_it_cannot_allocate(args: tuple, kwargs: dict, error: type) -> None:
    with pytest.raises(error) as caught:
        zerocopy.empty(*args, **kwargs)
    assert "Hint:" in str(caught.value)


def test_empty_takes_numpy_integers_and_zero_sizes() -> None:
    assert zerocopy.empty(np.int64(4), "f4").shape == (4,)
    assert zerocopy.empty((0, 3)).shape == (0, 3)


@pytest.mark.parametrize("obj", [[1.0, 2.0], None, (1, 2)])
def test_aligned_takes_numpy_arrays_and_says_so(obj: object) -> None:
    with pytest.raises(zerocopy.UnsupportedObjectError, match="takes a NumPy array"):
        zerocopy.aligned(obj)  # type: ignore[arg-type]


def _negative_views() -> list:
    import torch

    values = torch.tensor([1.0, 2.0, 3.0])
    # Real tensors with the lazy negative bit: memory holds 1, 2, 3, the tensor shows -1, -2, -3.
    return [torch._neg_view(values), torch.complex(values * 0, values).conj().imag]


@pytest.mark.parametrize("target", ["numpy", "jax", "tensorflow", "pandas"])
def test_torch_negative_bit_is_a_stated_copy_or_a_typed_refusal(target: str) -> None:
    for view in _negative_views():
        assert view.is_neg() and not view.is_complex()
        zerocopy.clear_caches()
        plan = zerocopy.explain(view, target)  # was a zero-copy plan that to() could not run
        assert plan.copies and "negative bit" in str(plan)
        got = np.asarray(zerocopy.to(zerocopy.to(view, target), "numpy"))
        np.testing.assert_array_equal(got, [-1.0, -2.0, -3.0])  # the values it shows
        with pytest.raises(zerocopy.NotZeroCopyError, match=r"negative bit.*Hint: x\.resolve_neg\(\)"):
            zerocopy.to(view, target, copy=False)
        with pytest.raises(zerocopy.NotZeroCopyError, match="negative bit"):
            zerocopy.explain(view, target, copy=False)


def test_torch_negative_bit_is_not_served_from_the_fast_lane() -> None:
    import torch

    plain = torch.tensor([1.0, 2.0, 3.0])
    zerocopy.to(plain, "numpy")  # a plain tensor of the same signature fills the fast lane
    zerocopy.to(plain, "numpy")
    np.testing.assert_array_equal(zerocopy.to(torch._neg_view(plain), "numpy"), [-1.0, -2.0, -3.0])


@pytest.mark.parametrize("source", ["read-only numpy", "pandas", "polars", "pyarrow"])
def test_copy_false_names_the_blocker_no_copy_fixes_first(source: str) -> None:
    """float64 to JAX without x64 fails for its dtype, copy or not: copy=False used to name
    the read-only flag of the route's first hop instead."""
    from zerocopy.adapters.jax import x64_enabled

    if x64_enabled():
        pytest.skip("JAX runs with x64 here: float64 is kept")
    x = zerocopy.empty(8, np.float64)
    x.setflags(write=False)
    obj = x if source == "read-only numpy" else zerocopy.to(x, source)
    zerocopy.clear_caches()
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="64-bit mode") as caught:
        zerocopy.to(obj, "jax", copy=False)
    assert "read-only" not in str(caught.value).split("Got")[0].split(": ", 1)[1]
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="64-bit mode"):
        zerocopy.explain(obj, "jax", copy=False)


def test_copy_false_still_names_a_reason_a_copy_would_fix() -> None:
    x = zerocopy.empty(16, np.float32)[::2]
    with pytest.raises(zerocopy.NotZeroCopyError, match="compact strides"):
        zerocopy.to(x, "jax", copy=False)


# --------------------------------------------------------------- unsupported input, not a bug:
# typed errors with what/got/hint, never FrameworkError's "please report this".

def _typed_not_a_bug(error: BaseException, *words: str) -> None:
    text = str(error)
    assert not isinstance(error, zerocopy.FrameworkError) and "please report" not in text
    assert "Got " in text and "Hint: " in text
    for word in words:
        assert word in text


@pytest.mark.parametrize("target", ["numpy", "torch", "jax", "pandas"])
def test_torch_meta_tensor_is_refused_as_having_no_data(target: str) -> None:
    import torch

    zerocopy.to(torch.ones(3), "numpy")  # a CPU tensor of the same signature fills the fast lane
    meta = torch.empty(3, device="meta")
    for call in (zerocopy.to, zerocopy.explain):
        with pytest.raises(zerocopy.UnsupportedObjectError) as refused:
            call(meta, target)  # was torch's NotImplementedError as a FrameworkError, or a CUDA error
        _typed_not_a_bug(refused.value, "meta", "empty_like")


@pytest.mark.parametrize("device", ["mps", "xpu"])
@pytest.mark.parametrize("target", ["numpy", "torch", "jax", "cupy"])
def test_torch_tensor_on_another_accelerator_is_refused_not_taken_for_cuda(device: str, target: str) -> None:
    # helper-19: an MPS or XPU tensor was read as a CUDA one (device index taken for a GPU's)
    # and planned as CUDA memory. A stand-in tensor on that device (no data: nothing here
    # has an MPS or XPU runtime) says so the way a real one would: device, is_cpu, is_cuda.
    import torch

    class OnDevice(torch.Tensor):
        @staticmethod
        def __new__(cls, where: str) -> Any:
            return torch.Tensor._make_wrapper_subclass(cls, (3,), dtype=torch.float32, device=where)

        @classmethod
        def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            raise AssertionError(f"zerocopy ran {func} on a tensor it should have refused")

    tensor = OnDevice(device)
    assert not tensor.is_cpu and not tensor.is_cuda and tensor.device.type == device
    for call in (zerocopy.to, zerocopy.explain):
        with pytest.raises(zerocopy.DeviceError) as refused:
            call(tensor, target)
        _typed_not_a_bug(refused.value, device, "x.cpu()")


@pytest.mark.parametrize("target", ["numpy", "torch", "pandas"])
def test_deleted_jax_array_is_refused_as_gone(target: str) -> None:
    import jax.numpy as jnp

    zerocopy.to(jnp.ones(3), target)  # a live array of the same signature fills the fast lane
    gone = jnp.ones(3)
    gone.delete()
    for call in (zerocopy.to, zerocopy.explain, zerocopy.inspect):
        with pytest.raises(zerocopy.UnsupportedObjectError) as refused:
            call(gone, target) if call is not zerocopy.inspect else call(gone)
        _typed_not_a_bug(refused.value, "deleted", "x.delete()")
    with pytest.raises(zerocopy.UnsupportedObjectError):
        zerocopy.shares_memory(gone, np.zeros(3))


def _repeated_name_tables() -> dict[str, object]:
    import pandas as pd
    import pyarrow as pa

    x = np.arange(6, dtype="f4").reshape(3, 2)
    return {"pandas": pd.DataFrame(x, columns=["a", "a"]),
            "pyarrow": pa.table([pa.array(x[:, 0]), pa.array(x[:, 1])], names=["a", "a"])}


@pytest.mark.parametrize("source", ["pandas", "pyarrow"])
@pytest.mark.parametrize("copy", [None, False, True])
def test_repeated_column_names_to_polars_are_a_layout_error(source: str, copy: bool | None) -> None:
    table = _repeated_name_tables()[source]
    with pytest.raises(zerocopy.LayoutError) as refused:
        zerocopy.to(table, "polars", copy=copy)  # was Polars' DuplicateError as a FrameworkError
    assert "Polars DataFrame needs unique column names, and 'a' appears more than once" in str(refused.value)
    assert "Hint: rename the columns" in str(refused.value)
    with pytest.raises(zerocopy.LayoutError):
        zerocopy.explain(table, "polars", copy=copy)


@pytest.mark.parametrize("source", ["pandas", "pyarrow"])
def test_repeated_column_names_keep_every_column_where_the_target_allows_them(source: str) -> None:
    table = _repeated_name_tables()[source]
    for target in ("pandas", "pyarrow"):
        out = zerocopy.to(table, target)  # Arrow -> pandas kept one of the two 'a' columns
        names = list(out.columns) if target == "pandas" else out.column_names
        assert names == ["a", "a"]
        np.testing.assert_array_equal(zerocopy.to(out, "numpy"), [[0, 1], [2, 3], [4, 5]])
    if source == "pyarrow":  # still column by column over Arrow's buffers
        frame = zerocopy.to(table, "pandas")
        assert all(zerocopy.shares_memory(frame.iloc[:, i], table.column(i)) for i in (0, 1))


# --------------------------------------------------------------- hints that say what works

@pytest.mark.parametrize(("target", "guess"), [("torchh", "'torch'"), ("pytroch", "'pytorch'"),
                                               ("tensorflw", "'tensorflow'"), ("Pandas2", "'pandas'")])
def test_unknown_target_says_what_came_and_the_closest_name(target: str, guess: str) -> None:
    with pytest.raises(zerocopy.UnsupportedConversionError) as refused:
        zerocopy.to(np.zeros(2), target)
    text = str(refused.value)
    assert f"Got {target!r}." in text and f"Hint: did you mean {guess}?" in text
    with pytest.raises(zerocopy.UnsupportedConversionError) as by_layout:
        zerocopy.to_columns(np.zeros((2, 2)), to=target)
    assert str(by_layout.value) == text  # the layout API reads targets the same way


def test_unknown_target_with_nothing_close_still_has_got_and_hint() -> None:
    with pytest.raises(zerocopy.UnsupportedConversionError) as refused:
        zerocopy.explain(np.zeros(2), "matlab")
    text = str(refused.value)
    assert "Got 'matlab'." in text and "Hint: " in text and "did you mean" not in text


@pytest.mark.parametrize("target", ["tensorflow", "numpy", "torch"])
def test_ragged_arrow_lists_name_the_parts_that_convert(target: str) -> None:
    import pyarrow as pa

    lists = pa.array([[1.0, 2.0], [3.0]])
    with pytest.raises(zerocopy.UnsupportedDtypeError, match="is ragged") as refused:
        zerocopy.to(lists, target)  # was "NumPy has no arrow:list dtype. Hint: cast explicitly"
    assert "x.flatten()" in str(refused.value) and "x.offsets" in str(refused.value)
    # ... and the parts the hint names do convert, the values without a copy.
    values = lists.flatten()
    assert not zerocopy.explain(values, target, copy=False).copies  # torch copies by default (immutable)
    np.testing.assert_array_equal(np.asarray(zerocopy.to(values, target)), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(zerocopy.to(lists.offsets, target)), [0, 2, 3])


def test_ragged_tensorflow_tensor_names_its_parts() -> None:
    import tensorflow as tf

    ragged = tf.ragged.constant([[1.0, 2.0], [3.0]])
    with pytest.raises(zerocopy.UnsupportedObjectError) as refused:
        zerocopy.to(ragged, "numpy")  # the hint spoke of tf.Variable
    assert "x.flat_values" in str(refused.value) and "tf.Variable" not in str(refused.value)
    assert not zerocopy.explain(ragged.flat_values, "numpy").copies
    np.testing.assert_array_equal(zerocopy.to(ragged.row_splits, "numpy"), [0, 2, 3])


def _pandas_series() -> dict[str, object]:
    import pandas as pd

    return {"category": pd.Series(["a", "b", "a"], dtype="category"),
            "datetime": pd.Series(pd.date_range("2020", periods=3, tz="UTC")),
            "sparse": pd.Series(pd.arrays.SparseArray([0.0, 1.0, 0.0]))}


@pytest.mark.parametrize(("kind", "call"), [
    ("category", lambda s: s.cat.codes), ("datetime", lambda s: s.astype("int64")),
    ("sparse", lambda s: s.sparse.to_dense())])
def test_a_pandas_series_gets_series_advice_that_works(kind: str, call) -> None:
    series = _pandas_series()[kind]
    with pytest.raises(zerocopy.UnsupportedDtypeError) as refused:
        zerocopy.to(series, "torch")
    hint = str(refused.value).split("Hint: ")[1]
    assert "select_dtypes" not in hint  # DataFrame advice, given for a Series before
    assert zerocopy.to(call(series), "torch").shape == (3,)  # what the hint names converts


def test_a_ragged_numpy_object_array_is_named_ragged() -> None:
    ragged = np.array([np.array([1.0, 2.0]), np.array([3.0])], dtype=object)
    with pytest.raises(zerocopy.UnsupportedDtypeError, match=r"ragged: np\.concatenate\(x\)"):
        zerocopy.to(ragged, "tensorflow")
