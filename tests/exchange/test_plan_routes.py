"""Route choice: an array never takes a detour through a column or a table framework.

Measured on an H200 with cuDF installed (issue 11): Numba -> CuPy went CAI -> cudf.Series
-> Series.values, 100-240x slower than the direct CAI route, because the sum of the edge
costs favoured it. The fake graph below has the same shape and the same costs, so the
detour is reproduced without a GPU; the planner's rule, read from the edges' result kinds,
must still pick the direct route.
"""

from __future__ import annotations

from typing import Any

import pytest

import zerocopy
from zerocopy.exchange.edges import Edge, Options
from zerocopy.exchange.info import ARRAY, COLUMN, Info
from zerocopy.exchange.plan import detour, make_plan, routes
from zerocopy.registry import edges, names, record


def _edge(source: str, target: str, cost: float, **kinds: Any) -> Edge:
    return Edge(source, target, "fake", f"{source} -> {target}", lambda x, o: x, cost=cost, **kinds)


# numba -> CAI, CAI -> cupy, CAI -> cudf.Series, Series.values: the costs of the real edges.
FAKE = (
    _edge("arrays", "hub", 1.0),
    _edge("hub", "other_arrays", 3.0),
    _edge("hub", "columns", 2.0, result_kind=COLUMN),
    _edge("columns", "other_arrays", 0.8, kinds=frozenset({COLUMN}), result_kind=ARRAY),
)


def _info(framework: str, kind: str = ARRAY, device: tuple[str, int] = ("cpu", 0)) -> Info:
    return Info(framework, None, kind=kind, dtype="float32", shape=(256,), strides=(4,), itemsize=4,
                device=device)


def _path(hops: Any) -> list[str]:
    return [hops[0].edge.source, *(hop.edge.target for hop in hops)] if hops else []


def test_the_costs_alone_would_take_the_detour() -> None:
    cheapest = routes(FAKE, "arrays", "other_arrays")[0]
    assert [e.target for e in cheapest] == ["hub", "columns", "other_arrays"]
    assert detour(_info("arrays"), cheapest) is not None


def test_an_array_takes_the_direct_route() -> None:
    plan = make_plan(FAKE, _info("arrays"), "other_arrays", Options())
    assert _path(plan.hops) == ["arrays", "hub", "other_arrays"], str(plan)
    assert all(hop.after.kind == ARRAY for hop in plan.hops)


def test_no_route_is_longer_than_the_direct_one() -> None:
    info = _info("arrays")
    plan = make_plan(FAKE, info, "other_arrays", Options())
    allowed = [r for r in routes(FAKE, "arrays", "other_arrays") if detour(info, r) is None]
    assert len(plan.hops) == min(len(r) for r in allowed) == 2


def test_an_array_may_still_become_a_column_for_a_column_target() -> None:
    plan = make_plan(FAKE, _info("arrays"), "columns", Options())
    assert _path(plan.hops) == ["arrays", "hub", "columns"]
    assert plan.hops[-1].after.kind == COLUMN


def test_a_column_still_unwraps_to_an_array() -> None:
    plan = make_plan(FAKE, _info("columns", COLUMN), "other_arrays", Options())
    assert _path(plan.hops) == ["columns", "other_arrays"]


def _sources() -> list[tuple[str, tuple[str, int]]]:
    """Every installed array framework, on each side of memory it can live on."""
    memory = {"host": [("cpu", 0)], "device": [("cuda", 0)], "both": [("cpu", 0), ("cuda", 0)]}
    return [(name, device) for name in names(kind="array", installed=True)
            for device in memory[record(name).memory]]


@pytest.mark.parametrize(("source", "device"), _sources(), ids=lambda v: v if isinstance(v, str) else v[0])
def test_no_installed_route_takes_an_array_through_a_column(source: str, device: tuple[str, int]) -> None:
    """With every installed framework's real edges (cuDF's too, where it is installed), an
    array planned to an array target stays an array at every hop. Planning only: no object
    and no GPU are needed."""
    for target in names(kind="array", installed=True):
        try:
            plan = make_plan(edges(), _info(source, device=device), target, Options())
        except zerocopy.ZeroCopyError:
            continue  # no route for this device (the device move is not the planner's)
        if plan.hops and plan.hops[-1].after.kind == ARRAY:
            assert all(hop.after.kind == ARRAY for hop in plan.hops), str(plan)
