"""Many threads, and failures every Nth allocation: the accounting must stay exact."""

from __future__ import annotations

import random
import threading

import pytest

from zerocopy.errors import OutOfMemoryError
from zerocopy.memory import (
    FailureInjectionAdaptor,
    HostMemoryResource,
    LimitingAdaptor,
    LoggingAdaptor,
    OutOfMemoryCallbackAdaptor,
    StatisticsAdaptor,
    TrackingAdaptor,
)
from zerocopy.memory.resources.host import host_buffer

FRAMEWORKS = ("cupy", "torch", "numba", "jax")


def _full_chain(host: HostMemoryResource, *, limit: int, every: int | None = None, log=None):
    resource = host
    if every:
        resource = FailureInjectionAdaptor(resource, every=every)
    limiter = LimitingAdaptor(resource, limit=limit, limits={"cupy": limit // 2})
    tracker = TrackingAdaptor(limiter, capture_stacks=False)
    top = StatisticsAdaptor(LoggingAdaptor(tracker, log) if log else tracker)
    return top, limiter, tracker


def _worker(mr, seed: int, rounds: int, failures: list, errors: list) -> None:
    rng = random.Random(seed)
    held: list[tuple[int, int, int]] = []
    try:
        for i in range(rounds):
            if held and rng.random() < 0.45:
                ptr, n, tag = held.pop(rng.randrange(len(held)))
                assert host_buffer(ptr, 1)[0] == tag  # nobody else wrote into our memory
                mr.deallocate(ptr, n)
                continue
            n = rng.choice((1, 64, 1000, 4096))
            try:
                ptr = mr.allocate(n, framework=FRAMEWORKS[i % 4])
            except OutOfMemoryError:
                failures.append(1)
                continue
            tag = (seed * 31 + i) % 256
            host_buffer(ptr, n)[:1] = bytes([tag])
            held.append((ptr, n, tag))
        for ptr, n, _ in held:
            mr.deallocate(ptr, n)
    except BaseException as exc:  # surfaced by the test, not lost in a thread
        errors.append(exc)


def _run_threads(mr, threads: int = 16, rounds: int = 400) -> tuple[int, list]:
    failures: list = []
    errors: list = []
    pool = [threading.Thread(target=_worker, args=(mr, s, rounds, failures, errors))
            for s in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(failures), errors


def test_many_threads_keep_accounting_exact() -> None:
    host = HostMemoryResource()
    top, limiter, tracker = _full_chain(host, limit=40_000)
    refused, errors = _run_threads(top)
    assert not errors
    stats = top.statistics()
    assert stats.current_bytes == 0 and stats.current_count == 0
    assert stats.peak_bytes <= 40_000
    assert top.statistics("cupy").peak_bytes <= 20_000
    assert limiter.used() == 0 and tracker.leaks() == [] and host.live_count == 0
    assert refused > 0  # the budget was really hit while 16 threads raced for it


@pytest.mark.parametrize("every", [2, 3, 7])
def test_failure_every_nth_allocation_keeps_accounting_exact(every: int) -> None:
    host = HostMemoryResource()
    top, limiter, tracker = _full_chain(host, limit=10**9, every=every)
    injector = limiter.upstream
    refused, errors = _run_threads(top, threads=8, rounds=300)
    assert not errors
    assert refused == injector.injected > 0
    assert injector.calls // every == injector.injected
    stats = top.statistics()
    assert stats.total_count == injector.calls - injector.injected
    assert stats.current_bytes == 0 and limiter.used() == 0 and host.live_count == 0
    assert tracker.leaks() == []


def test_injected_failure_is_retried_by_the_oom_callback() -> None:
    host = HostMemoryResource()
    injector = FailureInjectionAdaptor(host, every=2)
    mr = StatisticsAdaptor(OutOfMemoryCallbackAdaptor(injector, lambda *a: True, retries=1))
    ptrs = [mr.allocate(32, framework="cupy") for _ in range(10)]  # every 2nd call fails once
    assert injector.injected == 9 and mr.statistics().current_count == 10
    for p in ptrs:
        mr.deallocate(p, 32)
    assert host.live_count == 0


def test_threads_with_logging(tmp_path) -> None:
    path = tmp_path / "log.csv"
    host = HostMemoryResource()
    top, _, _ = _full_chain(host, limit=10**9, log=path)
    _, errors = _run_threads(top, threads=8, rounds=100)
    top.upstream.close()
    assert not errors
    lines = path.read_text().splitlines()[1:]
    allocs = sum(1 for line in lines if ",allocate," in line)
    frees = sum(1 for line in lines if ",deallocate," in line)
    assert allocs == frees == top.statistics().total_count
    assert len({line.split(",")[1] for line in lines}) == 8  # one thread name per worker


def test_injection_argument() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FailureInjectionAdaptor(HostMemoryResource(), every=0)
