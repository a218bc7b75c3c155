"""Facts a framework states in its adapter, read by code that names no framework: the stream
a DLPack producer takes for "do not synchronise" (exchange/streams.py), bool kept as bits
(zerocopy.testing's probes), a strided view over our buffer (``zerocopy explain``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import zerocopy
from zerocopy import registry
from zerocopy.exchange import streams
from zerocopy.testing import make_source, pointer, values


def _producer(module: str) -> tuple[Any, list[dict[str, Any]]]:
    """A DLPack producer on a CUDA device whose class comes from ``module``; it records
    the keyword arguments its ``__dlpack__`` receives."""
    calls: list[dict[str, Any]] = []
    cls = type("Producer", (), {"__module__": module,
                                "__dlpack_device__": lambda self: (2, 0),  # kDLCUDA
                                "__dlpack__": lambda self, **kwargs: calls.append(kwargs)})
    return cls(), calls


@pytest.mark.parametrize(("module", "expected"), [
    ("jaxlib.xla_extension", {}),  # JAX: DLPACK_NO_SYNC = None, no stream at all
    ("jax._src.array", {}),
    ("torch", {"stream": -1}),     # the standard's -1
    ("somewhere.else", {"stream": -1}),
])
def test_no_sync_hands_the_producer_its_own_no_sync_stream(module: str, expected: dict[str, Any]) -> None:
    producer, calls = _producer(module)
    streams.dlpack_source(producer, zerocopy.NO_SYNC).__dlpack__()
    assert calls == [expected]
    named = streams.dlpack_source(producer, 7)  # a stream asked for is passed whoever produces
    named.__dlpack__()
    assert calls[-1] == {"stream": 7}


def test_no_sync_is_an_adapter_fact() -> None:
    stated = {name: registry.adapter(name).DLPACK_NO_SYNC for name in registry.names()
              if hasattr(registry.adapter(name), "DLPACK_NO_SYNC")}
    assert stated == {"jax": None}


@pytest.mark.parametrize("name", [n for n in registry.names(installed=True, main_env=True)
                                  if getattr(registry.adapter(n), "BOOL_BITS", False)])
def test_a_bits_framework_bool_probe_is_written_through_its_bits(name: str) -> None:
    data = np.array([True, False, True, True, False, True, False, True, True])
    source, writer = make_source(name, data)
    assert zerocopy.inspect(source).framework == name and zerocopy.inspect(source).dtype == "bool"
    assert pointer(source) == writer.ctypes.data           # the writer is the source's bits
    writer[0] = 0                                          # the first 8 values := False
    assert values(source).tolist() == [False] * 8 + [True]


def test_bool_bits_is_stated_by_the_arrow_layout_frameworks() -> None:
    assert [n for n in registry.names() if getattr(registry.adapter(n), "BOOL_BITS", False)] == [
        "pyarrow", "polars"]


def test_explain_builds_strided_probes_only_where_the_adapter_has_view_of() -> None:
    from zerocopy.cli.explain import _views_over, probe

    data = np.zeros(4, np.float32)
    viewers = _views_over(data)
    assert viewers[0] == "numpy"
    assert viewers[1:] == [n for n in registry.names() if hasattr(registry.adapter(n), "view_of")]
    if registry.installed("torch"):
        t = probe("torch", "float32", (4, 6), "T")
        assert zerocopy.inspect(t).layout == "F"   # the tensor over the transposed probe
        with pytest.raises(zerocopy.InvalidArgumentError, match="--order reverse: torch tensors"):
            probe("torch", "float32", (4, 6), "reverse")
