"""Every framework's adapter module has the same shape down to its signatures (the hook
modules' twin test is tests/memory/test_memory_share.py::test_every_hook_has_the_same_shape;
tests/test_registry.py checks that each adapter has the shared names and states its record's
facts).

Code outside an adapter calls it through ``registry.adapter(name)`` without knowing which
framework it holds, so the parameters below are one contract: same names, same kinds (a
keyword-only ``copy`` everywhere), extras only with defaults. Importing an adapter imports
no framework, so every adapter is checked on every machine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType

import pytest

from zerocopy import registry
from zerocopy.exchange.edges import Edge

# name -> the parameters every adapter's function takes, as (name, kind, has a default).
# An adapter may add parameters after these only if they have defaults (cupy.make's device).
POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD = inspect.Parameter.KEYWORD_ONLY
FUNCTIONS: dict[str, tuple[tuple[str, inspect._ParameterKind, bool], ...]] = {
    "inspect": (("x", POSITIONAL, False),),
    "dtypes": (),
    "version": (),
    "devices": (),
    "make": (("values", POSITIONAL, False),),
    "to_host": (("x", POSITIONAL, False),),
}
# Functions that frameworks of one sort have: device probes move arrays between devices
# (zerocopy.testing builds the GPU matrix with them); table frameworks hand columns in and out.
MOVE = {"move": (("x", POSITIONAL, False), ("device", POSITIONAL, False))}
TABLE = {
    "columns": ((None, POSITIONAL, False), ("copy", KEYWORD, True)),
    "table_from_columns": (("names", POSITIONAL, False), ("arrays", POSITIONAL, False),
                           ("rows", KEYWORD, True), ("kind", KEYWORD, True), ("copy", KEYWORD, True)),
}
# zerocopy.dask (dask/_serialize.py) calls these for every framework whose record has `dask`
# facts: the classes it registers, and for the "cuda" family (device frames) the host wait
# for the producer's stream before a frame leaves.
DASK = {"tensor_classes": ()}
DASK_DEVICE = {"wait_ready": (("x", POSITIONAL, False), ("device", POSITIONAL, False))}
# Functions an adapter may leave out; where there, they have one shape too.
OPTIONAL = {
    "fast_key": (("x", POSITIONAL, False),),  # the exchange's fast lane key
    # where an object with a fast key has its data (Info.ptr), for plans chosen by alignment
    "fast_pointer": (("x", POSITIONAL, False),),
    # zerocopy explain: a probe over our buffer with its strides (frameworks with strided views)
    "view_of": (("values", POSITIONAL, False),),
    # zerocopy.dask: plain data out and what travels beside it, put back on arrival (a pair)
    "transport_state": (("x", POSITIONAL, False),),
    "restore_state": (("x", POSITIONAL, False), ("state", POSITIONAL, False)),
    # zerocopy.dask: C-ordered values on the array's own device (else a strided device
    # array is left to distributed's serializer), and a view of a received device frame
    "contiguous": (("x", POSITIONAL, False),),
    "device_view": (("frame", POSITIONAL, False), ("dtype", POSITIONAL, False),
                    ("shape", POSITIONAL, False), ("device", POSITIONAL, False)),
}
# Constants an adapter may leave out (their absence says what the default is), and the type
# each has where present.
OPTIONAL_CONSTANTS: dict[str, tuple[type, ...]] = {
    "HOST_ALIGNMENT": (int,),         # host memory it takes without a copy is so aligned (none)
    "BOOL_BITS": (bool,),             # bool kept one bit per value, Arrow's way (False)
    "DLPACK_NO_SYNC": (int, type(None)),  # its __dlpack__'s "do not synchronise" stream (-1)
}


def _parameters(function: Callable[..., object]) -> list[tuple[str, inspect._ParameterKind, bool]]:
    return [(p.name, p.kind, p.default is not p.empty)
            for p in inspect.signature(function).parameters.values()]


def _assert_signature(module: ModuleType, name: str,
                      expected: tuple[tuple[str | None, inspect._ParameterKind, bool], ...]) -> None:
    function = getattr(module, name, None)
    assert callable(function), f"{module.__name__} has no function {name}()"
    where = f"{module.__name__}.{name}{inspect.signature(function)}"
    got = _parameters(function)
    # A name of None: any name (columns(table) in one adapter is columns(df) in another).
    shared = [(e_name or g_name, kind, default)
              for (e_name, kind, default), (g_name, _, _) in zip(expected, got, strict=False)]
    assert len(got) >= len(expected) and got[:len(expected)] == shared, f"{where}: not the shared shape"
    assert all(default for *_, default in got[len(expected):]), (
        f"{where}: parameters beyond the shared ones need defaults")


def _required(record: registry.Framework) -> dict[str, tuple[tuple[str | None, inspect._ParameterKind, bool], ...]]:
    """The functions an adapter must have, from its record's facts."""
    required: dict[str, tuple[tuple[str | None, inspect._ParameterKind, bool], ...]] = {**FUNCTIONS}
    if record.device_probe:
        required |= MOVE
    if "table" in record.kinds:
        required |= TABLE
    if record.dask is not None:
        required |= DASK
        if "cuda" in record.dask.families:
            required |= DASK_DEVICE
    return required


@pytest.mark.parametrize("name", registry.names())
def test_every_adapter_has_the_same_signatures(name: str) -> None:
    module = registry.adapter(name)
    for function, parameters in _required(registry.record(name)).items():
        _assert_signature(module, function, parameters)
    for function, parameters in OPTIONAL.items():
        if hasattr(module, function):
            _assert_signature(module, function, parameters)
    assert hasattr(module, "transport_state") == hasattr(module, "restore_state"), (
        f"{module.__name__}: transport_state() and restore_state() go together")


@pytest.mark.parametrize("name", registry.names())
def test_every_optional_constant_has_its_one_type(name: str) -> None:
    module = registry.adapter(name)
    for constant, types in OPTIONAL_CONSTANTS.items():
        if hasattr(module, constant):
            value = getattr(module, constant)
            assert type(value) in types, (  # exactly: True is no alignment
                f"{module.__name__}.{constant} = {value!r}: expected {' or '.join(t.__name__ for t in types)}")


@pytest.mark.parametrize("name", registry.names())
def test_every_edge_of_an_adapter_starts_or_ends_at_its_framework(name: str) -> None:
    """An adapter brings the edges of its own framework, never two others'."""
    edges = registry.adapter(name).EDGES
    assert edges, f"{name} brings no edge"
    assert all(isinstance(e, Edge) and name in (e.source, e.target) for e in edges)


def test_a_signature_off_the_shape_is_caught() -> None:
    """The check itself: a renamed parameter or an extra one without a default fails."""
    odd = ModuleType("odd")
    odd.to_host = lambda array: array  # type: ignore[attr-defined]
    odd.make = lambda values, device: values  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="not the shared shape"):
        _assert_signature(odd, "to_host", FUNCTIONS["to_host"])
    with pytest.raises(AssertionError, match="need defaults"):
        _assert_signature(odd, "make", FUNCTIONS["make"])
