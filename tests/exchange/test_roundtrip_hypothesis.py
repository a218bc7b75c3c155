"""Property-based round trips numpy -> target -> numpy over dtypes, shapes and strides,
compared bit for bit; a target lacking the dtype must raise the typed error instead."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tests.helpers.frameworks import MAIN_ENV, same_bits, values

import zerocopy
from zerocopy._dtypes import SHARED_DTYPES, numpy_dtype
from zerocopy.registry import adapter

TARGETS = [n for n in MAIN_ENV if n != "numpy"]


def _views(draw: st.DrawFn, base: np.ndarray) -> np.ndarray:
    kind = draw(st.sampled_from(["as-is", "transpose", "step", "reverse", "fortran", "offset"]))
    if kind == "transpose":
        return base.T
    if kind == "step" and base.ndim:
        return base[::2]
    if kind == "reverse" and base.ndim:
        return base[::-1]
    if kind == "fortran":
        return np.asfortranarray(base)
    if kind == "offset" and base.ndim == 1 and base.size > 1:
        return base[1:]
    return base


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = numpy_dtype(draw(st.sampled_from(SHARED_DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    raw = draw(hnp.arrays(np.uint8, (int(np.prod(shape)) * dtype.itemsize,)))
    # Random bits, NaN payloads included: the comparison is on bytes, not on values.
    base = raw.view(dtype).reshape(shape) if dtype != np.bool_ else (raw % 2).astype(bool).reshape(shape)
    return _views(draw, base)


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=arrays())
def test_roundtrip_bit_exact(target: str, x: np.ndarray) -> None:
    expected = x.copy()
    try:
        there = zerocopy.to(x, target)
    except zerocopy.UnsupportedDtypeError:
        name = zerocopy.inspect(x).dtype
        tabular = target in {"pyarrow", "pandas", "polars"} and x.ndim != 1
        assert name not in adapter(target).dtypes() or tabular
        return
    except zerocopy.UnsupportedConversionError:
        # Arrow/Polars columns are 1-D, pandas at most 2-D: a typed refusal, never a crash.
        assert target in {"pyarrow", "pandas", "polars"} and x.ndim != 1
        return
    back = zerocopy.to(there, "numpy")
    assert same_bits(np.asarray(back).reshape(expected.shape), expected)
    assert same_bits(values(there).reshape(expected.shape), expected)
