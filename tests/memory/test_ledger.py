"""The statistics book: the C Ledger against its pure-Python twin, operation by operation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocopy import _native
from zerocopy.memory.adaptors.statistics import SLOTS, PyLedger, StatisticsAdaptor, Stats

speedups = _native.speedups()
needs_c = pytest.mark.skipif(speedups is None, reason=f"the C Ledger is not in use: {_native.reason()}")

# Pool-like addresses (256-byte aligned, high bits set), few enough to collide and repeat.
_ptrs = st.integers(0, 40).map(lambda i: (0x7F00 << 32) + 256 * i)
_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), _ptrs, st.integers(0, 1 << 40), st.integers(0, 3)),
    st.tuples(st.just("remove"), _ptrs),
    st.tuples(st.just("reset"),)), max_size=200)


def _state(ledger: object, ptrs: list[int]) -> tuple[object, ...]:
    counters = tuple(ledger.counters(s) for s in (-1, 0, 1, 2, 3))  # type: ignore[attr-defined]
    slots = tuple(ledger.slot_of(p) for p in ptrs)  # type: ignore[attr-defined]
    return counters, slots, ledger.live, ledger.unknown_frees  # type: ignore[attr-defined]


@needs_c
@settings(max_examples=300, deadline=None)
@given(_ops)
def test_the_c_ledger_counts_exactly_what_the_python_ledger_counts(ops: list[tuple]) -> None:
    c, py = speedups.Ledger(), PyLedger()  # type: ignore[union-attr]
    seen: list[int] = []
    for op in ops:
        if op[0] == "add":
            seen.append(op[1])
            for book in (c, py):
                book.add(*op[1:])
        elif op[0] == "remove":
            assert c.remove(op[1]) == py.remove(op[1])
        else:
            c.reset_peaks()
            py.reset_peaks()
        assert _state(c, seen) == _state(py, seen)


@needs_c
def test_the_c_ledger_keeps_every_record_through_growth() -> None:
    ledger = speedups.Ledger()  # type: ignore[union-attr]
    base = 1 << 40
    for i in range(100_000):
        ledger.add(base + 512 * i, i % 7 + 1, i % 5)
    for i in range(0, 100_000, 2):
        assert ledger.remove(base + 512 * i) == (i % 7 + 1, i % 5)
    assert ledger.live == 50_000
    assert all(ledger.slot_of(base + 512 * i) == i % 5 for i in range(1, 100_000, 2))
    assert ledger.counters(-1)[0] == sum(i % 7 + 1 for i in range(1, 100_000, 2))


@pytest.mark.parametrize("book", ["c", "python"])
def test_a_ledger_refuses_a_slot_out_of_range_and_changes_nothing(book: str) -> None:
    if book == "c" and speedups is None:
        pytest.skip(f"the C Ledger is not in use: {_native.reason()}")
    ledger = speedups.Ledger() if book == "c" else PyLedger()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="slot"):
        ledger.add(4096, 8, SLOTS)
    assert ledger.live == 0 and ledger.counters(-1) == (0, 0, 0, 0, 0, 0)


def test_statistics_adaptor_names_map_to_slots_and_back() -> None:
    import zerocopy.memory as zm

    stats = StatisticsAdaptor(zm.HostMemoryResource())
    ptrs = [stats.allocate(64 * (i + 1), framework=name)
            for i, name in enumerate(["torch", "cupy", "torch"])]
    assert stats.statistics("torch") == Stats(64 + 192, 64 + 192, 2, 2, 2, 64 + 192)
    assert stats.statistics("cupy") == Stats(128, 128, 1, 1, 1, 128)
    assert [stats.framework_of(p) for p in ptrs] == ["torch", "cupy", "torch"]
    assert list(stats.per_framework()) == ["cupy", "torch"]
    for i, p in enumerate(ptrs):
        stats.deallocate(p, 64 * (i + 1))
    assert stats.statistics() == Stats(0, 384, 0, 3, 3, 384)
