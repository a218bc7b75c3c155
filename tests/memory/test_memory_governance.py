"""Governance over a fake pool: the frameworks' moves are played by the test."""

from __future__ import annotations

import time

from memory_support import UINT64_MAX, FakePool

from zerocopy.memory import PoolGovernor


def test_start_sets_the_threshold() -> None:
    pool = FakePool()
    PoolGovernor(pool, interval=None).start()
    assert pool.release_threshold == UINT64_MAX


def test_threshold_reset_by_a_framework_is_reasserted_and_recorded() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=None).start()
    pool.release_threshold = 0  # what JAX (cuda_async, no preallocation) does when it starts
    events = governor.check()
    assert pool.release_threshold == UINT64_MAX
    assert [e.kind for e in events] == ["threshold-reset"]
    assert events[0].before == 0 and events[0].after == UINT64_MAX
    assert governor.check() == []  # nothing changed since


def test_a_foreign_trim_is_detected_with_the_bytes_lost() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=None).start()
    pool.grow(reserved=1000, used=200)
    assert governor.check() == []  # growth is not an event
    pool.grow(reserved=300, used=200)  # someone's empty_cache() threw 700 cached bytes away
    events = governor.check()
    assert [e.kind for e in events] == ["trim"]
    assert (events[0].before, events[0].after) == (1000, 300)


def test_freeing_is_not_a_trim() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=None).start()
    pool.grow(reserved=1000, used=900)
    governor.check()
    pool.grow(reserved=1000, used=100)  # frees return memory to the cache, reserved stays
    assert governor.check() == []


def test_own_trim_is_labelled() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=None).start()
    pool.grow(reserved=1000, used=100)
    governor.check()
    governor.trim(keep=0)
    assert pool.trims == [0]
    assert [e.kind for e in governor.events] == ["trim-by-zerocopy"]


def test_polls_run_until_done() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=None).start()
    ready = {"n": 0}

    def poll() -> bool:
        ready["n"] += 1
        return ready["n"] >= 2

    governor.polls.append(poll)
    governor.check()
    governor.check()
    governor.check()
    assert ready["n"] == 2 and governor.polls == []


def test_watcher_thread_reasserts_without_being_asked() -> None:
    pool = FakePool()
    governor = PoolGovernor(pool, interval=0.005).start()
    try:
        pool.release_threshold = 0
        deadline = time.monotonic() + 5
        while pool.release_threshold != UINT64_MAX and time.monotonic() < deadline:
            time.sleep(0.005)
        assert pool.release_threshold == UINT64_MAX
        assert any(e.kind == "threshold-reset" for e in governor.events)
    finally:
        governor.stop()
    assert governor._thread is None


def test_failing_check_is_recorded_not_fatal() -> None:
    class Broken(FakePool):
        def used(self) -> int:
            raise RuntimeError("driver went away")

    pool = Broken()
    pool.used = lambda: 0  # type: ignore[method-assign]
    governor = PoolGovernor(pool, interval=0.005).start()
    del pool.used  # from now on every check fails
    try:
        deadline = time.monotonic() + 5
        while not governor.events and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        governor.stop()
    assert governor.events[0].kind == "check-failed"
    assert "driver went away" in governor.events[0].detail


class _FakeCache:
    """A framework hook whose cache holds idle blocks (what CuPy's cached mode reports)."""

    def __init__(self, idle: int) -> None:
        self.idle, self.released = idle, 0

    def idle_bytes(self) -> int:
        return self.idle

    def release_cache(self) -> bool:
        self.released += 1
        self.idle = 0
        return True


def _caches(monkeypatch, **caches: _FakeCache) -> None:
    from zerocopy.memory import governance

    monkeypatch.setattr(governance, "loaded", lambda name: name in caches)
    monkeypatch.setattr(governance, "hook", lambda name: caches[name])


def test_a_device_short_of_memory_takes_idle_caches_back(monkeypatch) -> None:
    cupy = _FakeCache(idle=300)
    _caches(monkeypatch, cupy=cupy)
    free = [50]  # of 100: above the 10% line
    governor = PoolGovernor(FakePool(), interval=None, device_memory=lambda: (free[0], 100)).start()
    assert governor.check() == [] and cupy.released == 0
    free[0] = 5  # below 10% free: the idle cache goes back to the pool
    events = governor.check()
    assert [e.kind for e in events] == ["idle-released"] and cupy.released == 1
    assert events[0].after == 300 and governor.check() == []  # nothing idle left to ask


def test_handoff_gives_idle_cached_blocks_back_first(monkeypatch) -> None:
    import zerocopy.memory as zm

    cupy = _FakeCache(idle=4096)
    _caches(monkeypatch, cupy=cupy)
    with zm.share([], resource=zm.HostMemoryResource()) as shared:
        assert shared.handoff(7) is None  # a host pool has no streams to order
    assert cupy.released == 1 and cupy.idle == 0
