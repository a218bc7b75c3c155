"""Every ordered pair of CPU frameworks, proven: same pointer, a mutation seen on the other
side, the source kept alive, values bit for bit."""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest
from tests.helpers.frameworks import MAIN_ENV, make_source, pointer, same_bits, values

import zerocopy
from zerocopy._detect import framework_of

PAIRS = [(s, d) for s, d in itertools.product(MAIN_ENV, MAIN_ENV) if s != d]


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


def test_pair_shares_memory(pair: tuple[str, str]) -> None:
    source_name, target_name = pair
    expected = np.arange(64, dtype=np.float32) * 1.5
    source, writer = make_source(source_name, expected)

    plan = zerocopy.explain(source, target_name, copy=False)
    result = zerocopy.to(source, target_name, copy=False)

    assert not plan.copies, str(plan)
    assert framework_of(result) == target_name
    assert pointer(result) == pointer(source)
    assert same_bits(values(result), expected)
    writer[3] = -7.0  # the write lands in the source's memory; the result must see it
    assert values(result)[3] == -7.0


def test_pair_keeps_source_alive(pair: tuple[str, str]) -> None:
    source_name, target_name = pair
    expected = np.linspace(0, 1, 4096, dtype=np.float32)
    source, writer = make_source(source_name, expected)
    result = zerocopy.to(source, target_name)
    del source, writer
    gc.collect()
    _churn = [np.full(4096, 9.0, dtype=np.float32) for _ in range(64)]  # reuse freed memory
    assert same_bits(values(result), expected)


def test_pair_copy_true_is_independent(pair: tuple[str, str]) -> None:
    source_name, target_name = pair
    expected = np.arange(16, dtype=np.float32)
    source, writer = make_source(source_name, expected)
    result = zerocopy.to(source, target_name, copy=True)
    assert zerocopy.explain(source, target_name, copy=True).copies
    assert pointer(result) != pointer(source)
    writer[0] = 99.0
    assert same_bits(values(result), expected)
