"""Statistics, logging, tracking, limiting and the OOM callback over real host memory."""

from __future__ import annotations

import csv
import gc
import io

import pytest

from zerocopy.errors import OutOfMemoryError
from zerocopy.memory import (
    HostMemoryResource,
    LimitingAdaptor,
    LoggingAdaptor,
    OutOfMemoryCallbackAdaptor,
    StatisticsAdaptor,
    Stats,
    TrackingAdaptor,
)
from zerocopy.memory.resources.host import host_buffer


def test_statistics_total_and_per_framework() -> None:
    host = HostMemoryResource()
    stats = StatisticsAdaptor(host)
    a = stats.allocate(100, framework="cupy")
    b = stats.allocate(300, framework="torch")
    c = stats.allocate(50)
    host_buffer(a, 100)[:] = b"x" * 100  # the adaptor hands out real, usable memory
    assert stats.statistics() == Stats(450, 450, 3, 3, 3, 450)
    stats.deallocate(b, 300)
    assert stats.statistics("torch") == Stats(0, 300, 0, 1, 1, 300)
    assert stats.statistics("cupy").current_bytes == 100
    assert stats.statistics("direct").current_bytes == 50
    assert stats.statistics("jax") == Stats()
    stats.reset_peaks()
    assert stats.statistics().peak_bytes == 150
    stats.deallocate(a, 100)
    stats.deallocate(c, 50)
    assert stats.statistics().current_count == 0
    assert host.live_count == 0
    assert set(stats.per_framework()) == {"cupy", "torch", "direct"}


def test_statistics_restore_record_when_upstream_free_fails() -> None:
    stats = StatisticsAdaptor(HostMemoryResource())
    ptr = stats.allocate(64, framework="cupy")
    with pytest.raises(ValueError):
        stats.deallocate(ptr, 65)  # the host resource refuses the wrong size
    assert stats.statistics("cupy").current_bytes == 64
    stats.deallocate(ptr, 64)
    assert stats.statistics("cupy").current_bytes == 0


def test_logging_writes_a_loadable_csv() -> None:
    sink = io.StringIO()
    log = LoggingAdaptor(LimitingAdaptor(HostMemoryResource(), limits={"torch": 10}), sink)
    ptr = log.allocate(128, 7, framework="cupy")
    with pytest.raises(MemoryError):
        log.allocate(11, framework="torch")
    log.deallocate(ptr, 128, 7)
    rows = list(csv.DictReader(io.StringIO(sink.getvalue())))
    assert [r["action"] for r in rows] == ["allocate", "allocate_failed", "deallocate"]
    assert rows[0].keys() == {"time", "thread", "framework", "action", "pointer", "size", "stream"}
    assert rows[2]["framework"] == "cupy"  # a free is attributed by pointer
    assert int(rows[0]["pointer"], 16) == ptr and rows[0]["size"] == "128"
    assert rows[0]["stream"] == "7" and rows[0]["thread"] == "MainThread"
    assert float(rows[2]["time"]) >= float(rows[0]["time"])


def test_logging_to_a_path(tmp_path) -> None:
    path = tmp_path / "alloc.csv"
    log = LoggingAdaptor(HostMemoryResource(), path)
    log.deallocate(log.allocate(10), 10)
    log.close()
    log.deallocate(log.allocate(10), 10)  # after close: dropped, not an error
    assert len(path.read_text().splitlines()) == 3


def _leaky_function(mr: TrackingAdaptor) -> int:
    return mr.allocate(4096, framework="numba")


def test_tracking_reports_leaks_with_the_allocating_stack() -> None:
    tracker = TrackingAdaptor(HostMemoryResource())
    kept = _leaky_function(tracker)
    freed = tracker.allocate(16)
    tracker.deallocate(freed, 16)
    leaks = tracker.leaks()
    assert [(a.ptr, a.nbytes, a.framework) for a in leaks] == [(kept, 4096, "numba")]
    text = tracker.format_leaks()
    assert "_leaky_function" in text and "test_memory_adaptors.py" in text
    assert "zerocopy/memory/adaptors" not in text  # our own frames are cut
    assert tracker.leaks("torch") == []
    tracker.deallocate(kept, 4096)
    assert tracker.format_leaks() == "no outstanding allocations"


def test_tracking_without_stacks() -> None:
    tracker = TrackingAdaptor(HostMemoryResource(), capture_stacks=False)
    ptr = tracker.allocate(8)
    assert "no stack captured" in tracker.format_leaks()
    tracker.deallocate(ptr, 8)


def test_limits_global_and_per_framework() -> None:
    host = HostMemoryResource()
    limiter = LimitingAdaptor(host, limit=1000, limits={"cupy": 600})
    a = limiter.allocate(500, framework="cupy")
    with pytest.raises(OutOfMemoryError, match="cupy would exceed its zerocopy memory limit"):
        limiter.allocate(200, framework="cupy")
    b = limiter.allocate(400, framework="torch")
    with pytest.raises(OutOfMemoryError, match="global"):
        limiter.allocate(200, framework="jax")
    assert limiter.used() == 900 and limiter.used("cupy") == 500 and limiter.refusals == 2
    limiter.deallocate(a, 500)
    c = limiter.allocate(600, framework="cupy")  # the process went on; budget came back
    limiter.set_limit(None, None)
    d = limiter.allocate(10_000, framework="jax")
    for ptr, n in ((b, 400), (c, 600), (d, 10_000)):
        limiter.deallocate(ptr, n)
    assert limiter.used() == 0 and host.live_count == 0


def test_limit_refusal_is_the_frameworks_own_error() -> None:
    torch = pytest.importorskip("torch")
    limiter = LimitingAdaptor(HostMemoryResource(), limits={"torch": 10})
    with pytest.raises(torch.OutOfMemoryError) as info:
        limiter.allocate(11, framework="torch")
    assert isinstance(info.value, OutOfMemoryError) and isinstance(info.value, MemoryError)
    assert "torch would exceed" in str(info.value)


def test_oom_callback_retries_after_release() -> None:
    limiter = LimitingAdaptor(HostMemoryResource(), limit=100)
    held = [limiter.allocate(100)]
    calls = []

    def release(nbytes: int, framework: str | None, attempt: int) -> bool:
        calls.append((nbytes, framework, attempt))
        limiter.deallocate(held.pop(), 100)
        return True

    mr = OutOfMemoryCallbackAdaptor(limiter, release)
    ptr = mr.allocate(60, framework="cupy")
    assert calls == [(60, "cupy", 0)] and mr.calls == 1
    mr.deallocate(ptr, 60)


def test_oom_callback_gives_up() -> None:
    mr = OutOfMemoryCallbackAdaptor(LimitingAdaptor(HostMemoryResource(), limit=10),
                                    lambda *a: True, retries=3)
    with pytest.raises(OutOfMemoryError):
        mr.allocate(11)
    assert mr.calls == 3


class _Holder:
    """An array-like owner whose memory comes back only when the GC breaks its cycle."""

    def __init__(self, mr: LimitingAdaptor) -> None:
        self.mr, self.ptr, self.me = mr, mr.allocate(100), self

    def __del__(self) -> None:
        self.mr.deallocate(self.ptr, 100)


def test_release_caches_collects_garbage_first() -> None:
    from zerocopy.memory import release_caches

    limiter = LimitingAdaptor(HostMemoryResource(), limit=100)
    gc.disable()
    try:
        _Holder(limiter)  # garbage in a reference cycle, still holding the whole budget
        mr = OutOfMemoryCallbackAdaptor(limiter, release_caches)
        ptr = mr.allocate(100)
    finally:
        gc.enable()
    assert mr.calls == 1
    mr.deallocate(ptr, 100)


def test_statistics_note_methods_match_the_adaptor_path() -> None:
    import zerocopy.memory as zm

    stats = zm.StatisticsAdaptor(zm.HostMemoryResource())
    stats.note_allocation(0x1000, 64, "cupy")  # what the fused CuPy path records
    assert stats.statistics("cupy") == Stats(64, 64, 1, 1, 1, 64)
    record = stats.note_free(0x1000)
    assert record == (64, stats.slot("cupy")) and stats.statistics().current_bytes == 0
    assert stats.framework_of(0x1000) is None
    stats.note_restore(0x1000, record)  # the free failed: counted again
    assert stats.statistics("cupy").current_count == 1
    assert stats.note_free(0x2000) is None and stats.unknown_frees == 1


def test_cupy_hook_fuses_only_a_chain_without_per_allocation_adaptors() -> None:
    import zerocopy.memory as zm
    from zerocopy.memory.hooks.cupy import _fusable
    from zerocopy.memory.resources.device_pool import DevicePoolResource

    pool = object.__new__(DevicePoolResource)  # no CUDA here: only its type matters
    stats = zm.StatisticsAdaptor(zm.OutOfMemoryCallbackAdaptor(pool))
    assert _fusable(stats) == (pool, stats)
    assert _fusable(zm.OutOfMemoryCallbackAdaptor(pool)) == (pool, None)
    assert _fusable(pool) == (pool, None)
    limited = zm.StatisticsAdaptor(zm.LimitingAdaptor(pool, limit=1 << 20))
    assert _fusable(limited) is None
    assert _fusable(zm.StatisticsAdaptor(zm.TrackingAdaptor(pool))) is None
    assert _fusable(zm.StatisticsAdaptor(zm.HostMemoryResource())) is None
