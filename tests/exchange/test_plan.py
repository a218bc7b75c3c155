"""``to()`` runs the plan ``explain()`` prints: every explained plan is run and compared.

``Plan.run`` is the only place a conversion's edges run, so recording the plans it runs
shows exactly which hops ``to()`` took. Over every pair of installed CPU frameworks, the
shared probes and a few objects that make the planner work (strided, read-only, 2-D,
tables, chunks, nulls), for ``copy`` None, True and False: ``to()`` runs one plan whose hops
are the explained plan's hops, on the first call (planned) and the second (cached, the fast
lane), and shares memory exactly when the plan says it does.
"""

from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.helpers.frameworks import MAIN_ENV, make_source

import zerocopy
from zerocopy.exchange import cache
from zerocopy.exchange.plan import Plan
from zerocopy.testing import ProbeUnavailable, probe_values

DTYPES = ("float32", "int64", "bool", "float16", "complex64")
COPIES = (None, True, False)


def _probes() -> Iterator[tuple[str, Any]]:
    for name, dtype in itertools.product(MAIN_ENV, DTYPES):
        try:
            source, _ = make_source(name, probe_values(dtype, 64))
        except ProbeUnavailable:
            continue
        yield f"{name}-{dtype}", source
    base = zerocopy.aligned(np.arange(24, dtype=np.float64))
    readonly = base.copy()
    readonly.flags.writeable = False
    yield "numpy-strided", base[::2]
    yield "numpy-readonly", readonly
    yield "numpy-2d-F", np.asfortranarray(base.reshape(4, 6))
    yield "numpy-empty", np.empty(0, np.float32)
    if "pandas" in MAIN_ENV:
        import pandas as pd

        yield "pandas-frame", pd.DataFrame({"a": base[:8], "b": base[8:16]})
    if "polars" in MAIN_ENV:
        import polars as pl

        yield "polars-frame", pl.DataFrame({"a": base[:8], "b": base[8:16]})
    if "pyarrow" in MAIN_ENV:
        import pyarrow as pa

        yield "pyarrow-table", pa.table({"a": base[:8], "b": base[8:16]})
        yield "pyarrow-chunked", pa.chunked_array([base[:4], base[4:8]])
        yield "pyarrow-nulls", pa.array([1.0, None, 3.0])


PROBES = list(_probes())


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The edges of every plan run (by Plan.run or its specialised fast call), in order."""
    ran: list[list[Any]] = []
    real = Plan.run

    def recording(self: Plan, obj: Any) -> Any:
        ran.append([hop.edge for hop in self.hops])
        return real(self, obj)

    real_specialised = Plan._specialised

    def specialised(self: Plan) -> Any:  # the fast lane's chained one-liners, recorded too
        call = real_specialised(self)
        if call is None:
            return None
        edges = [hop.edge for hop in self.hops]

        def recorded(obj: Any) -> Any:
            ran.append(edges)
            return call(obj)

        return recorded

    monkeypatch.setattr(Plan, "run", recording)
    monkeypatch.setattr(Plan, "_specialised", specialised)
    return ran


def _call(fn: Any) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except zerocopy.ZeroCopyError as exc:
        return None, exc


@pytest.mark.parametrize("copy", COPIES, ids=lambda c: f"copy={c}")
@pytest.mark.parametrize(("label", "source"), PROBES, ids=[label for label, _ in PROBES])
def test_to_runs_exactly_the_explained_plan(label: str, source: Any, copy: bool | None,
                                            runs: list[list[Any]]) -> None:
    zerocopy.clear_caches()  # the first call plans, the second runs the cached plan
    for target in MAIN_ENV:
        plan, refused = _call(lambda t=target: zerocopy.explain(source, t, copy=copy))
        for attempt in ("planned", "cached"):
            runs.clear()
            result, failed = _call(lambda t=target: zerocopy.to(source, t, copy=copy))
            where = f"{label} -> {target} (copy={copy}, {attempt})"
            if refused is not None:
                assert type(failed) is type(refused), f"{where}: explain raised {refused!r}, to {failed!r}"
                continue
            assert failed is None, f"{where}: explain planned\n{plan}\nbut to raised {failed!r}"
            assert runs == [[hop.edge for hop in plan.hops]], f"{where}: to ran {runs}, explain said\n{plan}"
            shares = zerocopy.shares_memory(source, result)
            if plan.copies:
                assert shares is not True, f"{where}: the plan copies, the result shares\n{plan}"
            else:
                assert shares is not False, f"{where}: the plan shares, the result is a copy\n{plan}"


def test_clear_caches_forgets_every_plan() -> None:
    x = zerocopy.aligned(np.arange(8.0))
    zerocopy.to(x, "numpy")
    assert cache.size() > 0
    zerocopy.clear_caches()
    assert cache.size() == 0
    assert zerocopy.shares_memory(zerocopy.to(x[::2], "numpy"), x)  # plans afresh


def test_the_cache_has_one_bound_and_evicts_the_oldest() -> None:
    store = cache.Store(bound=3)
    for key in "abcde":
        store.put(key, key.upper())
    assert len(store) == 3
    assert store.get("a") is None and store.get("b") is None and store.get("e") == "E"
    store.put("e", "again")  # a key already there takes no room
    assert len(store) == 3 and store.get("c") == "C"
    store.clear()
    assert len(store) == 0 and store.get("e") is None


def test_a_cached_plan_keeps_no_object_alive() -> None:
    zerocopy.clear_caches()
    x = zerocopy.aligned(np.arange(8, dtype=np.float32))
    ref = weakref.ref(x)
    for target in MAIN_ENV:
        zerocopy.to(x, target, copy=True)  # planned, cached, run: the results are copies
    assert cache.size() > 0
    del x
    gc.collect()
    assert ref() is None, "a cached plan keeps the source alive"


@pytest.mark.parametrize("framework", [n for n in ("pyarrow", "pandas", "polars") if n in MAIN_ENV])
def test_tables_with_one_signature_each_get_their_own_plan(framework: str, runs: list[list[Any]]) -> None:
    """Where a table's columns lie is not in its signature; the block edge reads the table
    itself, so such plans are never reused for another table (found by the fuzz suite:
    a copy route cached for one table ran for a table whose plan shares)."""
    block = zerocopy.column_block(8, ["a", "b"])
    for i, column in enumerate(block.columns.values()):
        column[:] = i + 1.0
    shared = zerocopy.to(block.table(), framework)  # its columns lie in one block
    apart = zerocopy.to(block.table(), framework, copy=True)  # same names and dtypes
    zerocopy.clear_caches()
    for table in (apart, shared, apart, shared):
        plan = zerocopy.explain(table, "numpy")
        runs.clear()
        zerocopy.to(table, "numpy")
        assert runs == [[hop.edge for hop in plan.hops]], str(plan)


@pytest.mark.parametrize("framework", [n for n in ("pyarrow", "pandas", "polars") if n in MAIN_ENV])
def test_a_plan_that_read_the_table_is_reused_only_while_its_checks_still_pass(
        framework: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Such a plan is cached with the checks that read the object: another table of the
    signature re-runs those, not the planning; planning runs again only where one of them
    answers differently (a table whose columns no longer lie in one block)."""
    from zerocopy.exchange import convert

    planned: list[int] = []
    real = convert.make_plan

    def counting(*args: Any) -> Plan:
        planned.append(1)
        return real(*args)

    monkeypatch.setattr(convert, "make_plan", counting)

    def in_a_block() -> Any:
        block = zerocopy.column_block(8, ["a", "b"])
        for i, column in enumerate(block.columns.values()):
            column[:] = i + 1.0
        return zerocopy.to(block.table(), framework)

    zerocopy.clear_caches()
    first, second = in_a_block(), in_a_block()
    planned.clear()
    assert not zerocopy.explain(first, "numpy").copies  # the block edge shares
    assert len(planned) == 1
    for table in (first, second, first):  # planned once, then reused: the guard holds
        assert zerocopy.shares_memory(zerocopy.to(table, "numpy"), zerocopy.to(table, "numpy"))
    assert len(planned) == 2
    apart = zerocopy.to(first, framework, copy=True)  # same names and dtypes, columns apart
    planned.clear()
    result = zerocopy.to(apart, "numpy")  # the guard fails: planned afresh, and copied
    assert len(planned) == 1
    assert not zerocopy.shares_memory(result, zerocopy.to(first, "numpy"))
    assert np.array_equal(result, [[1.0, 2.0]] * 8)


@pytest.mark.skipif("pandas" not in MAIN_ENV or "torch" not in MAIN_ENV, reason="pandas and torch")
def test_planning_checks_each_route_prefix_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes share prefixes (pandas -> numpy -> ... in hundreds of routes to torch): a hop's
    outcome depends only on the route up to it, so one planning checks each prefix once."""
    import pandas as pd

    from zerocopy.exchange import plan as planner
    from zerocopy.registry import edges

    checked: list[tuple[Any, ...]] = []
    real = planner._try_hop

    def recording(edge: Any, current: Any, options: Any, index: int) -> Any:
        checked.append((index, edge))
        return real(edge, current, options, index)

    monkeypatch.setattr(planner, "_try_hop", recording)
    frame = pd.DataFrame(np.ones((4, 3), "f4"))
    chosen = zerocopy.explain(frame, "torch")
    assert chosen.copies  # pandas' copy-on-write: torch tensors cannot be read-only
    routes = planner.routes(edges(), "pandas", "torch")
    prefixes = {route[:n] for route in routes for n in range(1, len(route) + 1)}
    assert len(checked) <= len(prefixes) < sum(len(route) for route in routes)
    assert len(chosen.rejected) < len(routes)  # the walk stopped at the first admissible route


def test_a_device_move_is_a_hop_of_the_plan_to_runs(monkeypatch: pytest.MonkeyPatch,
                                                     runs: list[list[Any]]) -> None:
    """Host data to a GPU target: the host view, then the device copy, in one plan (no
    second conversion). A CPU stand-in for torch's copy to CUDA lets it run here."""
    torch = pytest.importorskip("torch")
    pd = pytest.importorskip("pandas")
    from zerocopy.registry import adapter

    moved: list[tuple[str, int]] = []

    def move(x: Any, device: tuple[str, int]) -> Any:
        assert type(x) is np.ndarray  # the host view came first
        moved.append(device)
        return torch.as_tensor(np.array(x, copy=True))

    monkeypatch.setattr(adapter("torch"), "move", move)
    series = pd.Series(zerocopy.aligned(np.arange(4.0)), copy=False)
    plan = zerocopy.explain(series, "torch", device="cuda:1")
    assert [hop.edge.target for hop in plan.hops] == ["numpy", "torch"], str(plan)
    assert plan.hops[-1].edge.device == ("cuda", 1) and plan.hops[-1].after.device == ("cuda", 1)
    assert plan.moves and plan.copied_bytes == 32
    for _ in range(2):  # planned, then cached
        runs.clear()
        result = zerocopy.to(series, "torch", device="cuda:1")
        assert len(runs) == 1 and [e.call for e in runs[0]] == [h.edge.call for h in plan.hops]
        assert torch.equal(result, torch.arange(4.0, dtype=torch.float64))
    assert moved == [("cuda", 1), ("cuda", 1)]
    with pytest.raises(zerocopy.NotZeroCopyError, match="moves the data between devices"):
        zerocopy.to(series, "torch", device="cuda:1", copy=False)


def _not_taken_lines(text: str) -> list[str]:
    return [line.split("not taken: ", 1)[1] for line in text.splitlines() if "not taken: " in line]


@pytest.mark.parametrize("case", ["negative bit", "pandas copy-on-write", "Arrow immutable"])
def test_explain_shows_each_rejected_route_and_reason_once(case: str) -> None:
    """One route text came back once per edge variant and once per reason (a lazy negative
    bit: the same reason on three lines; pandas -> numpy -> dlpack -> torch twice)."""
    import pandas as pd
    import pyarrow as pa
    import torch
    from rich.console import Console

    source, target = {
        "negative bit": (torch._neg_view(torch.arange(4.0)), "jax"),
        "pandas copy-on-write": (pd.DataFrame(np.zeros((8, 3), "f4")), "torch"),
        "Arrow immutable": (pa.array(np.arange(8.0)), "torch")}[case]
    plan = zerocopy.explain(source, target)
    lines = _not_taken_lines(str(plan))
    assert lines == plan.not_taken() and lines
    routes = [route for line in lines for route in line.split(": ", 1)[0].split(" (+")[0].split(", ")]
    reasons = [line.split(": ", 1)[1] for line in lines]
    assert len(routes) == len(set(routes)) and len(reasons) == len(set(reasons))
    # Every rejected, shown route is in a line, with the refusal nearest the target.
    for route, refusal in plan.rejected:
        text = " -> ".join([route[0].source, *(e.target for e in route)])
        if not refusal.quiet and text in routes:
            nearest = min((r for rt, r in plan.rejected if not r.quiet
                           and " -> ".join([rt[0].source, *(e.target for e in rt)]) == text),
                          key=lambda r: r.left)
            assert any(line.endswith(nearest.reason) and text in line for line in lines)
    # Jupyter and the CLI show the same lines.
    html = plan._repr_html_()
    assert all(line.replace("'", "&#x27;").replace(">", "&gt;") in html for line in lines)
    console = Console(width=10_000, record=True)
    console.print(plan.__rich__())
    assert _not_taken_lines(console.export_text()) == lines
