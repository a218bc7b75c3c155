"""The oracle: one case in, a verdict out (the outcome and every broken promise).

A conversion may raise a typed error (a ``zerocopy.ZeroCopyError``) or return a result.
A result must be a native object of the target with the source's dtype, shape and values
bit for bit, keep the source's nulls or refuse them (never a value where a null was), and
honour the copy mode: ``copy=True`` shares no byte with the source (pointer ranges, and a
write to the result is not seen in the source), ``copy=False`` shares (ranges overlap, and
a write to a writable result is seen), ``copy=None`` does what ``explain()`` says. The
source is never modified by the conversion, and ``explain()`` raises what ``to()`` raises.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tests.fuzz.cases import (
    KINDS,
    BuildError,
    Built,
    Case,
    build,
    holds,
    options,
    repro,
    same_columns,
    target_arg,
)
from tests.fuzz.natives import (
    NotNative,
    columns_of,
    dtype_of,
    flip_first,
    framework_of,
    mod,
    overlaps,
    ranges_of,
    same_values,
    values_of,
    writable_alias,
)

__all__ = ["FAILURE_KINDS", "Verdict", "judge"]

FAILURE_KINDS = (
    "untyped exception", "warning escaped", "copy=True shares", "copy=False copied", "shape lost",
    "dtype changed", "values differ", "null invented", "explain disagrees", "source modified",
    "wrong type", "refused plain case", "nulls not named", "repeat differs", "dangling result",
)
# dtypes every CPU framework holds as plain numbers: converting them (copy allowed) must work.
PLAIN_DTYPES = ("int16", "int32", "uint8", "float32")
TABULAR = ("pyarrow", "pandas", "polars")


@dataclass
class Verdict:
    case: Case
    repro: str
    outcome: str = ""                      # "shared" | "copied" | "error:<Type>"
    failures: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)

    def fail(self, kind: str, detail: str) -> None:
        self.failures.append((kind, detail))

    def report(self) -> str:
        lines = [f"{k}: {d}" for k, d in self.failures]
        return "\n".join([*lines, f"repro: {self.repro}"])


def _call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn(), None
        except Exception as exc:
            return None, exc


def _name(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {text}"


def _raw(values: np.ndarray, mask: np.ndarray | None) -> tuple[bytearray, bytearray]:
    # bytearrays: a one-byte ``bytes`` is CPython's shared singleton, and memory written
    # through a zero-copy result must never be the snapshot it is compared with.
    data = np.ascontiguousarray(values)
    return (bytearray(data.view(np.uint8).tobytes() if data.size else b""),
            bytearray(b"" if mask is None else mask.tobytes()))


def _snapshot(built: Built) -> tuple[bytearray, ...]:
    """The source's bytes (and nulls), column by column for mixed-dtype tables."""
    if built.columns is None:
        return _raw(*values_of(built.obj))
    return tuple(part for _, values, mask in columns_of(built.obj) for part in _raw(values, mask))


def _plain(case: Case, built: Built, *, nulls_aside: bool = False) -> bool:
    """A conversion any user expects to work (a copy allowed): plain numbers, no nulls
    (unless ``nulls_aside``: then the nulls are the only obstacle), a shape the target holds."""
    if case.copy is False or case.dtype not in PLAIN_DTYPES or built.expected.size == 0:
        return False
    if case.nulls and not nulls_aside:
        return False
    if built.columns is not None:  # a mixed table: only a table target holds it as it is
        return case.target in TABULAR
    if case.target not in TABULAR:
        return True
    layout = KINDS[case.kind].layout
    return layout in ("column", "table") or built.expected.ndim == 1


def _check_errors(v: Verdict, exc: BaseException | None, plan_exc: BaseException | None) -> None:
    zc = mod("zerocopy").ZeroCopyError
    untyped = False
    for where, err in (("to()", exc), ("explain()", plan_exc)):
        if err is not None and not isinstance(err, zc):
            untyped = True
            v.fail("warning escaped" if isinstance(err, Warning) else "untyped exception", f"{where} {_name(err)}")
    if untyped:
        return
    if (exc is None) != (plan_exc is None):
        said = "a plan" if plan_exc is None else _name(plan_exc)
        did = "a result" if exc is None else _name(exc)
        v.fail("explain disagrees", f"explain() gave {said}, to() gave {did}")
    elif exc is not None and type(exc) is not type(plan_exc):
        v.fail("explain disagrees", f"explain() raised {type(plan_exc).__name__}, to() raised {type(exc).__name__}")


def _check_result(v: Verdict, built: Built, result: Any) -> np.ndarray | None:
    """dtype, shape, nulls, values; returns the result's values when they could be read."""
    case = v.case
    got = dtype_of(result)
    if got is not None and got != case.dtype:
        v.fail("dtype changed", f"{case.dtype} became {got} ({type(result).__name__})")
    try:
        values, mask = values_of(result)
    except NotNative as exc:
        v.fail("values differ", f"result holds no plain numbers: {exc}")
        return None
    want = built.expected.shape
    if values.shape != want:
        if not (want == () and values.shape == (1,) and case.target in TABULAR):
            v.fail("shape lost", f"shape {want} became {values.shape} ({type(result).__name__})")
            return None
        values = values.reshape(())
        mask = None if mask is None else mask.reshape(())
    if built.mask is not None and (mask is None or not np.array_equal(mask, built.mask)):
        v.fail("null invented", f"{int(built.mask.sum())} nulls in the source, "
               f"{0 if mask is None else int(mask.sum())} in the result ({dtype_of(result)})")
    elif built.mask is None and mask is not None:
        v.fail("null invented", f"no nulls in the source, {int(mask.sum())} in the result")
    # Compared where the source holds values; what sits under a null is nobody's data.
    if got == case.dtype and not same_values(values, built.mask, built.expected, built.mask):
        v.fail("values differ", f"{case.dtype} {want}: result bytes differ from the source's")
    return values


def _check_columns(v: Verdict, built: Built, result: Any) -> None:
    """A mixed-dtype table: a table target keeps every column's dtype, nulls and values;
    an array would need one dtype, so any array result changed some column's dtype."""
    assert built.columns is not None
    if v.case.target not in TABULAR:
        v.fail("dtype changed", f"a table of {v.case.dtype} and {built.columns[1][0]} columns became "
               f"one {dtype_of(result)} array")
        return
    try:
        got = columns_of(result)
    except NotNative as exc:
        v.fail("shape lost", f"the table became {exc}")
        return
    rows = built.expected.shape[0]
    if len(got) != len(built.columns) or any(len(values) != rows for _, values, _ in got):
        v.fail("shape lost", f"{len(built.columns)} columns of {rows} rows became "
               f"{[len(values) for _, values, _ in got]}")
        return
    for j, ((d1, v1, m1), (d2, v2, m2)) in enumerate(zip(got, built.columns, strict=True)):
        if d1 != d2:
            v.fail("dtype changed", f"column {j}: {d2} became {d1}")
        elif (m1 is None) != (m2 is None) or (m1 is not None and not np.array_equal(m1, m2)):
            v.fail("null invented", f"column {j}: nulls {None if m2 is None else int(m2.sum())} became "
                   f"{None if m1 is None else int(m1.sum())}")
        elif not same_values(v1, m2, v2, m2):
            v.fail("values differ", f"column {j} ({d2}): result bytes differ from the source's")


def _check_sharing(v: Verdict, built: Built, result: Any, plan: Any) -> bool | None:
    """Compare what happened (pointer ranges) with what was promised; True if shared."""
    case = v.case
    try:
        shares = overlaps(ranges_of(result), ranges_of(built.obj))
    except Exception as exc:  # a reader failed on this result: say so, judge nothing
        v.fail("values differ", f"cannot read the result's memory: {_name(exc)}")
        return None
    said_copy = plan.copies if plan is not None else None
    if plan is not None and case.copy is False and said_copy:
        v.fail("explain disagrees", "explain(copy=False) plans a copy")
    if plan is not None and case.copy is True and not said_copy:
        v.fail("explain disagrees", "explain(copy=True) plans ZERO-COPY")
    if built.expected.size == 0:
        return shares
    if case.copy is True and shares:
        v.fail("copy=True shares", "the result's memory overlaps the source's")
    elif case.copy is False and not shares:
        v.fail("copy=False copied", "the result's memory does not overlap the source's")
    elif case.copy is None and said_copy is False and not shares:
        v.fail("explain disagrees", "explain() says ZERO-COPY, to() returned a copy")
    elif case.copy is None and said_copy and shares:
        v.fail("explain disagrees", "explain() says COPIES, to()'s result shares the source's memory")
    return shares


def _check_write(v: Verdict, built: Built, result: Any, said_copy: bool | None, before: tuple[bytearray, ...]) -> None:
    """Write through a writable result; a copy must not show it in the source, a share must."""
    case = v.case
    alias = writable_alias(result)
    if alias is None or alias.size == 0 or built.mask is not None or built.expected.size == 0:
        return
    flip_first(alias)
    seen = _snapshot(built) != before
    independent = case.copy is True or (case.copy is None and bool(said_copy))
    if independent and seen:
        kind = "copy=True shares" if case.copy else "explain disagrees"
        v.fail(kind, "a write to the result changed the source")
    elif not independent and not seen:
        kind = "copy=False copied" if case.copy is False else "explain disagrees"
        v.fail(kind, "a write to the (zero-copy) result is not seen in the source")


_JUDGED = [0]
_CLEAR_EVERY = 200


def _housekeeping() -> None:
    """JAX compiles (and keeps) a program per shape and dtype it transposes or stages; ten
    thousand random shapes would hold gigabytes. Clearing its caches now and then keeps the
    suite's memory flat (measured: +1.1 GiB per 600 JAX cases without, flat with)."""
    _JUDGED[0] += 1
    if _JUDGED[0] % _CLEAR_EVERY == 0:
        mod("jax").clear_caches()


def _check_lifetime(v: Verdict, built: Built, result: Any) -> None:
    """A zero-copy result keeps its memory alive: with every other reference to the source
    dropped, the result still holds the source's values."""
    built.obj = None
    if built.columns is not None:
        if not same_columns(columns_of(result), built.columns):
            v.fail("dangling result", "after the source was dropped, the result's columns changed")
        return
    values, _ = values_of(result)
    if values.shape != built.expected.shape:
        values = values.reshape(built.expected.shape)
    if not same_values(values, built.mask, built.expected, built.mask):
        v.fail("dangling result", "after the source was dropped, the result's values changed")


def _judge_call(v: Verdict, built: Built, plan: Any, plan_exc: BaseException | None, result: Any,
                exc: BaseException | None) -> bool | None:
    """Everything but the write test, for one call's outcome; True if the result shares."""
    zerocopy, case = mod("zerocopy"), v.case
    _check_errors(v, exc, plan_exc)
    if exc is not None:
        if isinstance(exc, zerocopy.ZeroCopyError) and _plain(case, built):
            v.fail("refused plain case", _name(exc))
        elif (isinstance(exc, zerocopy.ZeroCopyError) and built.mask is not None and case.target not in TABULAR
              and _plain(case, built, nulls_aside=True) and not isinstance(exc, zerocopy.NullValuesError)):
            v.fail("nulls not named", f"nulls are the obstacle, but to() raised {_name(exc)}")
        return None
    if framework_of(result) != case.target:
        v.fail("wrong type", f"a {type(result).__module__}.{type(result).__qualname__}, not a {case.target} object")
        return None
    if built.columns is not None:
        _check_columns(v, built, result)
    else:
        _check_result(v, built, result)
    return _check_sharing(v, built, result, plan if plan_exc is None else None)


def _outcome(result: Any, exc: BaseException | None, shares: bool | None) -> str:
    if exc is not None:
        return f"error:{type(exc).__name__}"
    return "shared" if shares else "copied" if shares is not None else "wrong type"


def _forget_routes() -> None:
    """Empty zerocopy's route and plan cache."""
    mod("zerocopy").clear_caches()


def judge(case: Case, *, fresh: bool = False) -> Verdict:
    """Run one case; BuildError if the fuzzer could not build the source (a test-side fact).
    A failing case is run again with empty route caches, to say whether it depends on
    conversions that came before it (the fast lane) or reproduces on its own."""
    zerocopy = mod("zerocopy")
    _housekeeping()
    built = build(case)
    v = Verdict(case, repro(case, built.code))
    if not holds(built):
        raise BuildError(f"the source does not hold what was built: {built.code}")
    before = _snapshot(built)
    if fresh:
        _forget_routes()
    target, kwargs = target_arg(case), options(case)
    plan, plan_exc = _call(lambda: zerocopy.explain(built.obj, target, **kwargs))
    result, exc = _call(lambda: zerocopy.to(built.obj, target, **kwargs))
    if _snapshot(built) != before:
        v.fail("source modified", "the source's values changed during the conversion")
    shares = _judge_call(v, built, plan, plan_exc, result, exc)
    v.outcome = _outcome(result, exc, shares)
    again, exc2 = None, None
    if case.again:  # the same call again: what the fast lane makes of it
        again, exc2 = _call(lambda: zerocopy.to(built.obj, target, **kwargs))
        first = len(v.failures)
        shares2 = _judge_call(v, built, plan, plan_exc, again, exc2)
        v.failures[first:] = [(k, f"2nd call: {d}") for k, d in v.failures[first:]]
        if _outcome(again, exc2, shares2) != v.outcome:
            v.fail("repeat differs", f"1st call: {v.outcome}, 2nd call: {_outcome(again, exc2, shares2)}")
    said_copy = plan.copies if plan is not None and plan_exc is None else None
    # A plan's Info and an error's traceback hold the source: only the result may keep it now.
    del plan, plan_exc, again, exc2
    if shares and not v.failures and (writable_alias(result) is None or case.seed % 4 == 0):
        _check_lifetime(v, built, result)
    elif exc is None and shares is not None:
        _check_write(v, built, result, said_copy, before)
    if v.failures and not fresh:
        alone = judge(case, fresh=True)
        v.repro += ("" if alone.failures else
                    "   [passes with empty route caches: an earlier conversion's cached route decides]")
    return v
