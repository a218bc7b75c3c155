"""A plan's specialised call (what the fast lane runs) does what ``Plan.run`` does.

Fake edges record what runs: a hop that hands its input on (SAME) is left out, a hop whose
work the next one does itself (PASS) is left out only before a hop that reads the source
and may decline, and a declined call is taken by the plan's full run, from the source. The
GPU pairs built on these rules (pointers handed over) are proven on the GPU machine in
test_gpu_exchange.py; the rules themselves need no GPU.
"""

from __future__ import annotations

from typing import Any

import pytest

from zerocopy.exchange.edges import DECLINED, PASS, SAME, Edge, Options
from zerocopy.exchange.info import ARRAY, Info
from zerocopy.exchange.plan import make_plan

CALLS: list[str] = []


def _run(name: str) -> Any:
    def run(x: Any, options: Options) -> Any:
        CALLS.append(f"run {name}")
        return (*x, name)
    return run


def _fast_call(name: str, declines: bool = False) -> Any:
    def call(x: Any) -> Any:
        CALLS.append(f"fast {name}")
        return DECLINED if declines and x[0] == "decline" else (*x, name)
    call.may_decline = declines  # type: ignore[attr-defined]
    return call


def _edge(source: str, target: str, fast: Any) -> Edge:
    name = f"{source}>{target}"
    spec = None if fast is None else (lambda info, src, f=fast: f)
    return Edge(source, target, "fake", name, _run(name), fast=spec)


def _plan(*edges: Edge) -> Any:
    info = Info(edges[0].source, None, kind=ARRAY, dtype="float32", shape=(8,), strides=None,
                itemsize=4)
    return make_plan(tuple(edges), info, edges[-1].target, Options())


@pytest.fixture(autouse=True)
def _fresh() -> None:
    CALLS.clear()


def test_same_hops_are_left_out() -> None:
    plan = _plan(_edge("a", "hub", SAME), _edge("hub", "b", _fast_call("hub>b")))
    assert plan.fast(("x",)) == ("x", "hub>b")
    assert CALLS == ["fast hub>b"]


def test_pass_is_left_out_before_a_call_that_reads_the_source() -> None:
    plan = _plan(_edge("a", "hub", PASS), _edge("hub", "b", _fast_call("hub>b", declines=True)))
    assert plan.fast(("x",)) == ("x", "hub>b")
    assert CALLS == ["fast hub>b"]


def test_a_declined_call_is_run_in_full_from_the_source() -> None:
    plan = _plan(_edge("a", "hub", PASS), _edge("hub", "b", _fast_call("hub>b", declines=True)))
    assert plan.fast(("decline",)) == ("decline", "a>hub", "hub>b")
    assert CALLS == ["fast hub>b", "run a>hub", "run hub>b"]


def test_pass_before_a_call_that_cannot_decline_is_not_specialised() -> None:
    # That call would get the source where it expects the PASS hop's output.
    plan = _plan(_edge("a", "hub", PASS), _edge("hub", "b", _fast_call("hub>b")))
    assert plan.fast == plan.run


def test_only_the_last_call_may_decline() -> None:
    plan = _plan(_edge("a", "hub", _fast_call("a>hub", declines=True)), _edge("hub", "b", _fast_call("hub>b")))
    assert plan.fast == plan.run


def test_a_hop_without_a_specialised_call_keeps_the_full_run() -> None:
    plan = _plan(_edge("a", "hub", SAME), _edge("hub", "b", None))
    assert plan.fast == plan.run
    assert plan.fast(("x",)) == ("x", "a>hub", "hub>b")


def test_specialised_calls_chain_in_route_order() -> None:
    plan = _plan(_edge("a", "h1", _fast_call("a>h1")), _edge("h1", "h2", SAME), _edge("h2", "b", _fast_call("h2>b")))
    assert plan.fast(("x",)) == ("x", "a>h1", "h2>b")
    assert CALLS == ["fast a>h1", "fast h2>b"]


def test_a_declining_call_follows_only_calls_that_keep_the_source_type() -> None:
    # It reads the source's own object: a call that made another object before it would
    # hand it something its reader does not know.
    other = _plan(_edge("a", "h1", _fast_call("a>h1")), _edge("h1", "b", _fast_call("h1>b", declines=True)))
    assert other.fast == other.run
    kept = _fast_call("a>h1")
    kept.keeps_type = True
    same = _plan(_edge("a", "h1", kept), _edge("h1", "b", _fast_call("h1>b", declines=True)))
    assert same.fast(("x",)) == ("x", "a>h1", "h1>b")
    assert same.fast(("decline",)) == ("decline", "a>h1", "h1>b")  # declined: run() from the source
    assert CALLS[-3:] == ["fast h1>b", "run a>h1", "run h1>b"]


# --------------------------------------------------------------- pointers handed over


class _Producer:
    @staticmethod
    def ready_buffer(x: Any) -> Any:
        return None if x["stream"] else (x["ptr"], x["shape"], False)


class _Consumer:
    @staticmethod
    def adopter(dtype: str, device: int) -> Any:
        def adopt(owner: Any, ptr: int, shape: Any, readonly: bool) -> Any:
            return ("adopted", owner["ptr"], ptr, shape, dtype, device)
        return adopt


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from zerocopy import _cuda, registry

    monkeypatch.setattr(_cuda, "single_gpu", lambda: True)
    modules = {"src": _Producer, "dst": _Consumer}
    monkeypatch.setattr(registry, "adapter", lambda name: modules[name])


def _gpu_info() -> Info:
    return Info("dlpack", None, kind=ARRAY, dtype="float32", shape=(8,), strides=None, itemsize=4,
                device=("cuda", 0))


@pytest.mark.usefixtures("fake_gpu")
def test_a_pointer_is_handed_over_and_a_side_stream_declines() -> None:
    from zerocopy.exchange import pointers

    call = pointers.direct("dst", _gpu_info(), "src")
    assert call is not None and call.may_decline
    source = {"ptr": 4096, "shape": (8,), "stream": 0}
    assert call(source) == ("adopted", 4096, 4096, (8,), "float32", 0)
    assert call({**source, "stream": 7}) is DECLINED


@pytest.mark.usefixtures("fake_gpu")
def test_no_hand_over_for_host_data_strided_data_or_several_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from zerocopy import _cuda
    from zerocopy.exchange import pointers

    host = Info("dlpack", None, kind=ARRAY, dtype="float32", shape=(8,), strides=None, itemsize=4)
    strided = Info("dlpack", None, kind=ARRAY, dtype="float32", shape=(8,), strides=(8,), itemsize=4,
                   device=("cuda", 0))
    assert pointers.direct("dst", host, "src") is None
    assert pointers.direct("dst", strided, "src") is None
    monkeypatch.setattr(_cuda, "single_gpu", lambda: False)
    assert pointers.direct("dst", _gpu_info(), "src") is None
