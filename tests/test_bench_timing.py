"""The bench's side-by-side timing: two calls' samples alternate, so a slow spell of a
shared machine falls on both sides of a comparison (a fake clock makes it exact)."""

from __future__ import annotations

import types

import pytest

from zerocopy.bench import _timing


class _FakeMachine:
    """Calls that cost a fixed time on a fake clock, plus ``extra`` while a spell lasts
    (a range of call numbers)."""

    def __init__(self, spell: range) -> None:
        self.now, self.calls, self.spell, self.order = 0.0, 0, spell, []

    def call(self, name: str, cost: float) -> None:
        self.now += cost + (5e-6 if self.calls in self.spell else 0.0)
        self.calls += 1
        if not self.order or self.order[-1] != name:
            self.order.append(name)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    def make(spell: range) -> _FakeMachine:
        fake = _FakeMachine(spell)
        monkeypatch.setattr(_timing, "time", types.SimpleNamespace(perf_counter=lambda: fake.now))
        return fake
    return make


def test_paired_samples_alternate_and_a_long_spell_shifts_both_sides(machine) -> None:
    # a: 1 us per call, 1000 calls per sample; b: 3 us, 333 calls. The spell covers the
    # third to sixth pairs of samples: four of seven samples of each side, so both medians
    # fall in it; the difference stays exact.
    per_pair = 1000 + 333
    fake = machine(range(2 + 2 * per_pair, 2 + 6 * per_pair))
    a, b = _timing.paired_per_call_seconds(lambda: fake.call("a", 1e-6), lambda: fake.call("b", 3e-6),
                                           budget=1e-3)
    assert fake.order == ["a", "b"] * 8  # one sizing call each, then 7 samples in turn
    assert a == pytest.approx(6e-6) and b == pytest.approx(8e-6)
    assert b - a == pytest.approx(2e-6)


def test_one_sided_sampling_lets_the_same_spell_fall_on_one_side(machine) -> None:
    # The control: measured one after the other, a spell as long as four samples lands on
    # the first call only and the difference comes out wrong (negative here).
    fake = machine(range(1, 1 + 4 * 1000))
    a = _timing.per_call_seconds(lambda: fake.call("a", 1e-6), budget=1e-3)
    b = _timing.per_call_seconds(lambda: fake.call("b", 3e-6), budget=1e-3)
    assert a == pytest.approx(6e-6) and b == pytest.approx(3e-6)


def test_slow_calls_take_three_samples_on_both_sides(machine) -> None:
    fake = machine(range(0))
    a, b = _timing.paired_per_call_seconds(lambda: fake.call("a", 0.02), lambda: fake.call("b", 1e-6),
                                           budget=1e-3)
    assert fake.order == ["a", "b"] * 4
    assert (a, b) == (pytest.approx(0.02), pytest.approx(1e-6))


def test_samples_run_with_the_garbage_collector_off_and_leave_it_as_found() -> None:
    import gc

    seen = []
    _timing.per_call_seconds(lambda: seen.append(gc.isenabled()), budget=1e-4, samples=2)
    assert seen[0] is True and not any(seen[1:])  # the sizing call runs as the caller has it
    assert gc.isenabled()
    gc.disable()
    try:
        _timing.per_call_seconds(lambda: None, budget=1e-4, samples=2)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _fails_after(calls: int):
    """A native one-liner that works ``calls`` times, then fails (as out of memory would)."""
    import numpy as np

    count = [0]

    def one_liner(x):
        count[0] += 1
        if count[0] > calls:
            raise RuntimeError("out of memory on a later call")
        return np.asarray(x)
    return one_liner


def test_a_call_that_fails_while_timed_is_its_rows_error_in_both_benches(monkeypatch) -> None:
    """The run goes on and reports it; the tables and summaries still render."""
    import numpy as np

    from zerocopy.bench import exchange, exchange_gpu

    monkeypatch.setattr(exchange, "_native", lambda: {("numpy", "torch"): ("flaky(x)", _fails_after(3))})
    rows = exchange.run([1024], [("numpy", "torch")], quick=True)
    assert rows[0]["timing_error"] == "RuntimeError: out of memory on a later call"
    assert "out of memory" in exchange.render(rows) and "machine" in exchange.summary(rows)

    # The GPU bench's loop, driven with host arrays (no device to wait for).
    monkeypatch.setattr(exchange_gpu, "_source", lambda name, nbytes: np.zeros(nbytes // 4, np.float32))
    monkeypatch.setattr(exchange_gpu, "_sync", lambda: None)
    monkeypatch.setattr(exchange_gpu, "_native", lambda names: {("numpy", "torch"): ("flaky(x)", _fails_after(3))})
    rows = exchange_gpu.run([1024], [("numpy", "torch")])
    assert rows[0]["timing_error"] == "RuntimeError: out of memory on a later call"
    assert "out of memory" in exchange_gpu.render(rows) and "out of memory" in exchange_gpu.summary(rows)


def test_between_runs_before_every_sample_of_both_sides(machine) -> None:
    fake = machine(range(0))
    _timing.paired_per_call_seconds(lambda: fake.call("a", 1e-6), lambda: fake.call("b", 1e-6),
                                    budget=1e-4, between=lambda: fake.order.append("|"))
    assert fake.order == ["a", "b"] + ["|", "a", "|", "b"] * 7
