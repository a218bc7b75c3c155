"""Every ordered pair of CPU frameworks, fuzzed over object kinds, dtypes, shapes, views,
nulls and copy modes (see cases.py for the space, oracle.py for the promises judged).

A failure prints every broken promise and a line to paste into Python. Shrinking is off
(each repro is already one line, and shrinking costs CI minutes); the standalone runner
``python -m tests.fuzz.run`` walks the same space without stopping at the first failure.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from tests.fuzz import settings as fuzz
from tests.fuzz.cases import draw_case, namespace
from tests.fuzz.oracle import judge

namespace()  # import every framework once, before the first case is timed


class HypothesisDraw:
    """The generator's choices, made by Hypothesis."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, options):  # type: ignore[no-untyped-def]
        return self.data.draw(st.sampled_from(tuple(options)))

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))


_SETTINGS = settings(
    max_examples=fuzz.PER_PAIR, deadline=None, database=None, derandomize=fuzz.SEED is None,
    phases=(Phase.explicit, Phase.generate), print_blob=False,
    suppress_health_check=list(HealthCheck))


def _seeded(test):  # type: ignore[no-untyped-def]
    return test if fuzz.SEED is None else seed(fuzz.SEED)(test)


@pytest.mark.fuzz
@pytest.mark.parametrize(("source", "target"), fuzz.PAIRS, ids=[f"{s}->{t}" for s, t in fuzz.PAIRS])
@_seeded
@_SETTINGS
@given(data=st.data())
def test_conversion_keeps_every_promise(source: str, target: str, data: st.DataObject, fuzz_clock) -> None:
    case = draw_case(HypothesisDraw(data), source, target)
    fuzz_clock["cases"] += 1
    verdict = judge(case)
    if verdict.failures:
        raise AssertionError(f"{source} -> {target} broke {len(verdict.failures)} promise(s):\n"
                             + verdict.report())
