"""The fuzz oracle can fail: each broken promise, injected into ``zerocopy.to`` (or
``explain``) by a sabotaged wrapper, is reported under its kind. Without this, a fuzz run
with 0 failures would prove nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tests.fuzz.cases import Case, namespace
from tests.fuzz.oracle import judge

import zerocopy

namespace()
torch = pytest.importorskip("torch")
pa = pytest.importorskip("pyarrow")

REAL_TO = zerocopy.to
REAL_EXPLAIN = zerocopy.explain


def _case(copy: bool | None, *, kind: str = "numpy.ndarray", target: str = "torch", nulls: bool = False,
          dtype: str = "float32", shape: tuple[int, ...] = (6,)) -> Case:
    return Case(kind, dtype, shape, "c" if kind == "numpy.ndarray" else "-", nulls, "arange", 3, copy, target)


def _copy_anyway(obj: Any, target: str, copy: bool | None = None) -> Any:
    return REAL_TO(obj, target, copy=True)


def _share_anyway(obj: Any, target: str, copy: bool | None = None) -> Any:
    return REAL_TO(obj, target, copy=None)


def _drop_last(obj: Any, target: str, copy: bool | None = None) -> Any:
    return REAL_TO(obj, target, copy=copy)[:-1]


def _widen(obj: Any, target: str, copy: bool | None = None) -> Any:
    return REAL_TO(obj, target, copy=copy).to(torch.float64)


def _bump_first(obj: Any, target: str, copy: bool | None = None) -> Any:
    result = REAL_TO(obj, target, copy=True).clone()
    result[0] += 1
    return result


def _key_error(obj: Any, target: str, copy: bool | None = None) -> Any:
    raise KeyError(copy)


def _fill_nulls(obj: Any, target: str, copy: bool | None = None) -> Any:
    return obj.to_numpy(zero_copy_only=False)


def _write_source(obj: Any, target: str, copy: bool | None = None) -> Any:
    obj[0] += 1
    return REAL_TO(obj, target, copy=copy)


def _cast_a_column(obj: Any, target: str, copy: bool | None = None) -> Any:
    pl = pytest.importorskip("polars")
    return REAL_TO(obj, target, copy=copy).with_columns(pl.col("c1").cast(pl.Float64))


def _wrong_type(obj: Any, target: str, copy: bool | None = None) -> Any:
    return np.array(obj, copy=True)


def _refuse(obj: Any, target: str, copy: bool | None = None) -> Any:
    raise zerocopy.UnsupportedConversionError("refused")


def _unsupported(obj: Any, target: str, copy: bool | None = None) -> Any:
    raise zerocopy.UnsupportedDtypeError("not the nulls")


def _dangling(obj: Any, target: str, copy: bool | None = None) -> Any:
    """Shares the source's memory without keeping the source alive (and, to be sure the
    damage shows, scribbles over it when the source dies)."""
    import ctypes
    import weakref

    address = obj.__array_interface__["data"][0]
    result = torch.from_numpy(np.ctypeslib.as_array((ctypes.c_float * obj.size).from_address(address)))
    weakref.finalize(obj, result.fill_, 7.0)
    return result


_CALLS = [0]


def _second_call_copies(obj: Any, target: str, copy: bool | None = None) -> Any:
    _CALLS[0] += 1
    return REAL_TO(obj, target, copy=True if _CALLS[0] % 2 == 0 else copy)


def _explain_refuses(obj: Any, target: str, copy: bool | None = None) -> Any:
    raise zerocopy.NotZeroCopyError("no")


SABOTAGE: list[tuple[str, Case, Callable[..., Any] | None, Callable[..., Any] | None]] = [
    ("copy=False copied", _case(False), _copy_anyway, None),
    ("copy=True shares", _case(True), _share_anyway, None),
    ("shape lost", _case(None), _drop_last, None),
    ("dtype changed", _case(True), _widen, None),
    ("values differ", _case(True), _bump_first, None),
    ("untyped exception", _case(None), _key_error, None),
    ("null invented", _case(None, kind="pyarrow.array", target="numpy", nulls=True), _fill_nulls, None),
    ("source modified", _case(None), _write_source, None),
    ("wrong type", _case(None), _wrong_type, None),
    ("dtype changed", _case(None, kind="pyarrow.mixed_table", target="polars", shape=(4, 2)), _cast_a_column, None),
    ("refused plain case", _case(None), _refuse, _refuse),
    ("explain disagrees", _case(None), None, _explain_refuses),
    ("repeat differs", dataclasses.replace(_case(None), again=True), _second_call_copies, None),
    ("dangling result", dataclasses.replace(_case(None), seed=4), _dangling, None),
    ("nulls not named", _case(None, kind="pyarrow.array", target="torch", nulls=True), _unsupported, _unsupported),
]


@pytest.mark.parametrize(("kind", "case", "to", "explain"), SABOTAGE,
                         ids=[f"{s[0]} ({s[1].kind})" for s in SABOTAGE])
def test_oracle_reports_each_broken_promise(monkeypatch: pytest.MonkeyPatch, kind: str, case: Case,
                                            to: Callable[..., Any] | None,
                                            explain: Callable[..., Any] | None) -> None:
    assert not judge(case).failures, "the unsabotaged case must pass for this test to mean anything"
    if to is not None:
        monkeypatch.setattr(zerocopy, "to", to)
    if explain is not None:
        monkeypatch.setattr(zerocopy, "explain", explain)
    verdict = judge(case)
    assert kind in {k for k, _ in verdict.failures}, verdict.failures
    assert "zerocopy.to(" in verdict.repro
