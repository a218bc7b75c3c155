"""The block cache in C that torch's allocator calls in cached mode (``_cache.c``), driven on
the CPU through the very C functions torch would call, with stand-ins for the thirteen
driver functions it uses. Each test says what torch would see and what the driver was asked."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocopy import _native
from zerocopy._cuda import driver_path
from zerocopy.errors import DeviceError, FrameworkError, InvalidArgumentError

speedups = _native.speedups()
pytestmark = pytest.mark.skipif(speedups is None or not hasattr(speedups, "cache_setup"),
                                reason="the block cache is part of the C extension")

C = ctypes
_SIGNATURES = (  # the order cache_setup takes them: driver_path.CACHE_FUNCTIONS
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_uint64), C.c_size_t, C.c_void_p, C.c_void_p),
    C.CFUNCTYPE(C.c_int, C.c_uint64, C.c_void_p),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_int), C.c_int),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p), C.c_int),
    C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(C.c_int)),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p), C.c_uint),
    C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_void_p),
    C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_void_p, C.c_uint),
    C.CFUNCTYPE(C.c_int, C.c_void_p),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p), C.c_int),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p)),
    C.CFUNCTYPE(C.c_int, C.c_void_p),
    C.CFUNCTYPE(C.c_int, C.POINTER(C.c_void_p)),
)
OOM, CAPTURE_IMPLICIT, MiB = 2, 906, 1 << 20
S1, S2, S3 = 0x5100, 0x5200, 0x5300  # stream handles as torch passes them


class FakeDriver:
    """The driver as the cache sees it: a pool of ``capacity`` bytes handing out fresh
    addresses, streams that may be capturing, events, a context stack (device k's primary
    context is 0xC0 + k; the current one starts as device 0's); every call recorded in order.
    Each call also records the current context, where the context matters."""

    def __init__(self, capacity: int = 1 << 40) -> None:
        self.capacity, self.outstanding = capacity, 0
        self.calls: list[tuple] = []
        self.sizes: dict[int, int] = {}
        self.free_contexts: list[int] = []
        self.capturing: set[int] = set()
        self.capture_error = 0
        self.next_ptr, self.next_event = 0x7F00_0000_0000, 0xE000
        self.contexts = [0xC0]

        def pool_alloc(out, nbytes, pool, stream):
            self.calls.append(("alloc", nbytes, pool, stream or 0))
            if self.outstanding + nbytes > self.capacity:
                return OOM
            out[0] = self.next_ptr
            self.sizes[self.next_ptr] = nbytes
            self.outstanding += nbytes
            self.next_ptr += max(nbytes, 512)
            return 0

        def free_async(ptr, stream):
            self.calls.append(("free", ptr, stream or 0))
            self.free_contexts.append(self.contexts[-1])
            self.outstanding -= self.sizes.pop(ptr)
            return 0

        def device_get(out, ordinal):
            out[0] = 100 + ordinal
            return 0

        def default_pool(out, device):
            out[0] = 0xB000 + device - 100  # the handle cuDeviceGet gave, not the ordinal
            return 0

        def is_capturing(stream, status):
            if self.capture_error:
                return self.capture_error
            status[0] = 1 if (stream or 0) in self.capturing else 0
            return 0

        def event_create(out, flags):
            self.next_event += 1
            out[0] = self.next_event
            self.calls.append(("event", self.next_event, flags))
            return 0

        def event_record(event, stream):
            self.calls.append(("record", event, stream or 0))
            return 0

        def stream_wait(stream, event, flags):
            self.calls.append(("wait", stream or 0, event))
            return 0

        def event_destroy(event):
            return 0

        def primary_ctx(out, device):
            out[0] = 0xC0 + device - 100
            return 0

        def ctx_get(out):
            out[0] = self.contexts[-1]
            return 0

        def ctx_push(ctx):
            self.contexts.append(ctx or 0)
            self.calls.append(("push", ctx or 0))
            return 0

        def ctx_pop(out):
            out[0] = self.contexts.pop()
            return 0

        functions = (pool_alloc, free_async, device_get, default_pool, is_capturing,
                     event_create, event_record, stream_wait, event_destroy, primary_ctx,
                     ctx_get, ctx_push, ctx_pop)
        self._keep = [sig(fn) for sig, fn in zip(_SIGNATURES, functions, strict=True)]
        self.addresses = [C.cast(fn, C.c_void_p).value for fn in self._keep]

    def kinds(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


class Torch:
    """The four calls torch's CUDAPluggableAllocator makes, through the C addresses."""

    def __init__(self) -> None:
        f = speedups.cache_functions()
        self._alloc = C.CFUNCTYPE(C.c_void_p, C.c_size_t, C.c_int, C.c_void_p)(f["alloc"])
        self._free = C.CFUNCTYPE(None, C.c_void_p, C.c_size_t, C.c_int, C.c_void_p)(f["free"])
        self._record = C.CFUNCTYPE(None, C.c_void_p, C.c_void_p)(f["record_stream"])
        self.empty_cache = C.CFUNCTYPE(None)(f["empty"])

    def alloc(self, nbytes: int, stream: int, device: int = 0) -> int:
        return self._alloc(nbytes, device, stream) or 0

    def free(self, ptr: int, nbytes: int, stream: int, device: int = 0) -> None:
        self._free(ptr, nbytes, device, stream)

    def record_stream(self, ptr: int, stream: int) -> None:
        self._record(ptr, stream)


@pytest.fixture
def driver() -> Iterator[FakeDriver]:
    fake = FakeDriver()
    speedups.cache_setup(fake.addresses, forget=True)
    yield fake
    speedups.cache_setup(FakeDriver().addresses, forget=True)  # no test sees another's blocks


@pytest.fixture
def torch_calls(driver: FakeDriver) -> Torch:
    return Torch()


def stats(device: int = 0) -> dict[str, int]:
    return speedups.cache_stats(device)


def test_a_freed_block_is_reused_on_its_stream_without_the_driver(driver, torch_calls):
    a = torch_calls.alloc(1000, S1)
    assert driver.kinds("alloc") == [("alloc", 1024, 0xB000, S1)]  # the size class, the pool
    torch_calls.free(a, 1000, S1)
    assert driver.kinds("free") == []                              # kept, not handed back
    b = torch_calls.alloc(900, S1)                                 # same class (1024)
    assert b == a and len(driver.kinds("alloc")) == 1
    s = stats()
    assert (s["hits"], s["misses"], s["live_bytes"], s["cached_bytes"]) == (1, 1, 1024, 0)


def test_another_stream_never_gets_a_block_freed_on_the_first(driver, torch_calls):
    a = torch_calls.alloc(4096, S1)
    torch_calls.free(a, 4096, S1)
    b = torch_calls.alloc(4096, S2)
    assert b != a and driver.kinds("alloc")[-1] == ("alloc", 4096, 0xB000, S2)
    assert stats()["cached_bytes"] == 4096  # a still waits for S1


def test_devices_have_their_own_pools_and_counters(driver, torch_calls):
    a = torch_calls.alloc(512, S1, device=0)
    torch_calls.free(a, 512, S1, device=0)
    b = torch_calls.alloc(512, S1, device=1)
    assert b != a and driver.kinds("alloc")[-1] == ("alloc", 512, 0xB001, S1)
    assert stats(0)["cached_bytes"] == 512 and stats(1)["live_bytes"] == 512


def test_record_stream_makes_the_allocation_stream_wait_for_the_other_users(driver, torch_calls):
    a = torch_calls.alloc(2 * MiB, S1)
    torch_calls.record_stream(a, S2)
    torch_calls.record_stream(a, S2)   # twice: one wait
    torch_calls.record_stream(a, S1)   # its own stream: no wait
    torch_calls.free(a, 2 * MiB, S1)
    events = [c for c in driver.calls if c[0] in ("event", "record", "wait")]
    (_, event, flags), record, wait = events
    assert flags == 2                                   # CU_EVENT_DISABLE_TIMING
    assert record == ("record", event, S2) and wait == ("wait", S1, event)
    assert torch_calls.alloc(2 * MiB, S1) == a          # reusable at once, in S1's order
    assert stats()["stream_waits"] == 1


def test_a_capture_allocates_in_the_graph_and_defers_what_it_saw_freed(driver, torch_calls):
    eager = torch_calls.alloc(4096, S1)
    driver.capturing.add(S1)
    inside = torch_calls.alloc(4096, S1)
    # A miss although a block could be cached: the allocation is captured on S1 itself.
    assert driver.kinds("alloc")[-1] == ("alloc", 4096, 0xB000, S1) and inside != eager
    torch_calls.free(eager, 4096, S1)          # freed while capturing: deferred, not cached
    assert stats()["deferred_bytes"] == 4096
    assert torch_calls.alloc(4096, S1) not in (eager, inside)   # a second captured one
    driver.capturing.clear()
    torch_calls.free(inside, 4096, S1)         # the graph's memory: freed, never cached
    assert ("free", inside, S1) in driver.calls
    # The capture is over: the deferred block took the normal path (as torch defers such
    # frees to the capture's end) and is reused.
    s = stats()
    assert (s["captured"], s["deferred_bytes"], s["held_bytes"], s["cached_bytes"]) == (2, 0, 0, 4096)
    assert torch_calls.alloc(4096, S1) == eager


def test_the_legacy_stream_during_another_capture_counts_as_capturing(driver, torch_calls):
    a = torch_calls.alloc(512, 0)
    torch_calls.free(a, 512, 0)                # idle on the legacy stream
    driver.capture_error = CAPTURE_IMPLICIT
    b = torch_calls.alloc(512, 0)
    assert b != a and stats()["captured"] == 1
    driver.capture_error = 0
    torch_calls.free(b, 512, 0)
    assert ("free", b, 0) in driver.calls and torch_calls.alloc(512, 0) == a


def test_a_failing_capture_query_does_not_hold_every_block(driver, torch_calls):
    driver.capture_error = 1  # CUDA_ERROR_INVALID_VALUE: recorded, not taken for a capture
    a = torch_calls.alloc(512, S1)
    torch_calls.free(a, 512, S1)
    assert torch_calls.alloc(512, S1) == a
    assert stats()["held_bytes"] == 0 and stats()["last_error"] == 1


def test_empty_cache_hands_idle_blocks_back_on_their_own_streams(driver, torch_calls):
    kept = torch_calls.alloc(512, S1)
    idle = [torch_calls.alloc(n, s) for n, s in ((512, S1), (3 * MiB, S2))]
    for ptr, n, s in zip(idle, (512, 3 * MiB), (S1, S2), strict=True):
        torch_calls.free(ptr, n, s)
    torch_calls.empty_cache()
    assert sorted(driver.kinds("free")) == sorted([("free", idle[0], S1), ("free", idle[1], S2)])
    s = stats()
    assert s["cached_bytes"] == 0 and s["released_bytes"] == 512 + 3 * MiB
    assert s["live_bytes"] == 512 and kept not in {c[1] for c in driver.kinds("free")}


def test_out_of_memory_first_empties_the_cache_then_asks_python(driver, torch_calls):
    asked: list[tuple[int, int]] = []
    speedups.cache_setup(driver.addresses, on_oom=lambda n, d: asked.append((n, d)) or True,
                         forget=True)
    driver.capacity = 8 * MiB
    a = torch_calls.alloc(6 * MiB, S1)
    torch_calls.free(a, 6 * MiB, S1)            # idle, on S1
    b = torch_calls.alloc(6 * MiB, S2)          # no room until S1's idle block goes back
    assert b and ("free", a, S1) in driver.calls and asked == []
    c = torch_calls.alloc(6 * MiB, S3)          # b is live: Python is asked, then a retry
    assert c == 0 and asked == [(6 * MiB, 0)]   # NULL: torch raises at the tensor's first use
    s = stats()
    assert (s["ooms"], s["last_error"], s["retries"]) == (1, OOM, 3)


def test_the_retry_after_python_sees_what_the_garbage_collector_freed(driver, torch_calls):
    """The collector frees dead tensors into this cache, not the pool: the retry looks in
    the cache first, then hands idle blocks back, then asks the pool."""
    dead = []

    def collect(nbytes: int, device: int) -> bool:
        torch_calls.free(dead.pop(), 6 * MiB, S1)   # a tensor the collector drops
        return True

    speedups.cache_setup(driver.addresses, on_oom=collect, forget=True)
    driver.capacity = 8 * MiB
    dead.append(torch_calls.alloc(6 * MiB, S1))
    again = torch_calls.alloc(6 * MiB, S1)
    assert again and stats()["hits"] == 1 and stats()["ooms"] == 0


def test_a_callback_whose_answer_cannot_be_read_fails_the_request_cleanly(driver, torch_calls,
                                                                          monkeypatch):
    class Unreadable:
        def __bool__(self) -> bool:
            raise RuntimeError("no answer")

    reported: list[BaseException | None] = []
    monkeypatch.setattr("sys.unraisablehook", lambda info: reported.append(info.exc_value))
    speedups.cache_setup(driver.addresses, on_oom=lambda n, d: Unreadable(), forget=True)
    driver.capacity = 4 * MiB
    assert torch_calls.alloc(8 * MiB, S1) == 0
    assert speedups.cache_stats(0)["ooms"] == 1   # and no exception left pending
    assert [type(e) for e in reported] == [RuntimeError]


def test_out_of_memory_on_one_device_keeps_the_others_cache(driver, torch_calls):
    driver.capacity = 8 * MiB
    other = torch_calls.alloc(MiB, S1, device=1)
    torch_calls.free(other, MiB, S1, device=1)
    assert torch_calls.alloc(16 * MiB, S1, device=0) == 0
    assert driver.kinds("free") == [] and stats(1)["cached_bytes"] == MiB


def test_while_a_torch_capture_runs_freed_blocks_wait_for_its_end(driver, torch_calls):
    a = torch_calls.alloc(4096, S1)
    b = torch_calls.alloc(4096, S1)
    torch_calls.record_stream(b, S2)
    assert speedups.cache_capture(1) == 1         # captured on S3: S1 knows nothing of it
    torch_calls.free(a, 4096, S1)
    torch_calls.free(b, 4096, S1)
    torch_calls.empty_cache()                     # a release now could join the capture
    assert not [c for c in driver.calls if c[0] in ("event", "record", "wait", "free")]
    assert not {torch_calls.alloc(4096, S1)} & {a, b}
    assert stats()["deferred_bytes"] == 8192
    assert speedups.cache_capture(-1) == 0        # the end: b's wait for S2, then the cache
    assert [c[0] for c in driver.calls if c[0] in ("record", "wait")] == ["record", "wait"]
    assert {torch_calls.alloc(4096, S1), torch_calls.alloc(4096, S1)} == {a, b}
    assert (stats()["deferred_bytes"], stats()["held_bytes"]) == (0, 0)


def test_blocks_freed_in_many_captures_do_not_pile_up(driver, torch_calls):
    for _ in range(50):                            # e.g. torch.compile recording again
        x = torch_calls.alloc(8 * MiB, S1)
        speedups.cache_capture(1)
        torch_calls.free(x, 8 * MiB, S1)
        speedups.cache_capture(-1)
    s = stats()
    assert (s["held_bytes"], s["deferred_bytes"], s["cached_bytes"], s["misses"]) == (0, 0, 8 * MiB, 1)


def test_a_block_freed_while_its_other_user_captures_records_no_event(driver, torch_calls):
    a = torch_calls.alloc(4096, S1)
    torch_calls.record_stream(a, S2)
    driver.capturing.add(S2)          # an event recorded on S2 now would join its capture
    torch_calls.free(a, 4096, S1)
    assert not [c for c in driver.calls if c[0] in ("event", "record", "wait")]
    assert torch_calls.alloc(4096, S1) != a and stats()["deferred_bytes"] == 4096
    driver.capturing.clear()
    other = torch_calls.alloc(512, S3)
    torch_calls.free(other, 512, S3)              # any later free settles what waited
    assert [c[0] for c in driver.calls if c[0] in ("record", "wait")] == ["record", "wait"]
    assert torch_calls.alloc(4096, S1) == a


def test_idle_blocks_on_a_capturing_stream_stay_until_it_ends(driver, torch_calls):
    a = torch_calls.alloc(MiB, S1)
    torch_calls.free(a, MiB, S1)
    driver.capturing.add(S1)                      # a capture torch does not know of
    torch_calls.empty_cache()
    assert driver.kinds("free") == [] and stats()["cached_bytes"] == MiB
    driver.capturing.clear()
    torch_calls.empty_cache()
    assert driver.kinds("free") == [("free", a, S1)] and stats()["held_bytes"] == 0


def test_a_graph_block_used_by_another_stream_is_freed_after_that_stream(driver, torch_calls):
    driver.capturing.add(S1)
    out = torch_calls.alloc(4096, S1)             # a static output made in the capture
    driver.capturing.clear()
    torch_calls.record_stream(out, S2)
    torch_calls.free(out, 4096, S1)
    kinds = [c[0] for c in driver.calls if c[0] in ("record", "wait", "free")]
    assert kinds == ["record", "wait", "free"]    # S1 waits for S2, then the free on S1


def test_driver_calls_for_a_block_run_in_its_devices_context(driver, torch_calls):
    a = torch_calls.alloc(4096, S1, device=1)
    torch_calls.free(a, 4096, S1, device=1)       # device 0 current, as torch may leave it
    assert ("push", 0xC1) in driver.calls and driver.contexts == [0xC0]
    torch_calls.empty_cache()
    assert driver.free_contexts == [0xC1] and driver.contexts == [0xC0]


def test_a_failed_request_calls_the_thrower_with_the_lock_free(driver, torch_calls):
    """torch does not check a NULL (a kernel would write address 0): a request the device
    cannot serve goes to the thrower, with a message that says what was asked and held.
    The cache's lock is free by then (the throw unwinds out of the C frame)."""
    messages: list[str] = []
    lock_free: list[bool] = []

    def thrower(text: bytes) -> None:
        messages.append(text.decode())
        probe = threading.Thread(target=speedups.cache_stats, args=(0,))
        probe.start()
        probe.join(5)
        lock_free.append(not probe.is_alive())

    keep = C.CFUNCTYPE(None, C.c_char_p)(thrower)
    speedups.cache_setup(driver.addresses, thrower=C.cast(keep, C.c_void_p).value, forget=True)
    driver.capacity = MiB
    live = torch_calls.alloc(512, S1)
    assert torch_calls.alloc(4 * MiB, S1) == 0    # the stand-in returns; C++'s would not
    assert lock_free == [True] and live
    (text,) = messages
    assert text.startswith(f"CUDA out of memory. Tried to allocate {4 * MiB} bytes on device 0 "
                           "in zerocopy's cached mode (CUDA error 2; this cache: 512 bytes live")
    assert "Hint:" in text
    assert torch_calls.alloc(512, S1, device=64) == 0   # no such device: thrown too
    assert "could not reach the memory pool of device 64" in messages[-1]


def test_the_cxx_thrower_really_throws():
    """zerocopy._raise throws std::runtime_error: with no C++ frame to catch it (ctypes is
    C), the runtime terminates and prints it. Under torch its bindings catch it instead
    (the GPU test)."""
    import subprocess
    import sys

    pytest.importorskip("zerocopy._raise", reason="built without a C++ compiler")
    script = """
import ctypes
from zerocopy import _raise
ctypes.CFUNCTYPE(None, ctypes.c_char_p)(_raise.THROW)(b"out of memory, said the cache")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "std::runtime_error" in done.stderr and "out of memory, said the cache" in done.stderr


def test_a_limit_counts_overdrafts_and_still_serves(driver, torch_calls):
    speedups.cache_set_limit(0, 1024)
    ptrs = [torch_calls.alloc(512, S1) for _ in range(3)]
    assert all(ptrs) and stats()["overdrafts"] == 1
    speedups.cache_set_limit(0, 0)


def test_counters_follow_live_cached_and_reserved_bytes(driver, torch_calls):
    a = torch_calls.alloc(100, S1)
    b = torch_calls.alloc(5 * MiB, S1)             # class 5 MiB (4..8 MiB by 512 KiB steps)
    torch_calls.free(a, 100, S1)
    s = stats()
    assert (s["live_bytes"], s["live_count"], s["cached_bytes"]) == (5 * MiB, 1, 512)
    assert s["reserved_bytes"] == 5 * MiB + 512 and s["peak_bytes"] == 5 * MiB + 512
    torch_calls.free(b, 5 * MiB, S1)
    speedups.cache_reset_peaks(0)
    s = stats()
    assert s["peak_bytes"] == 0 and s["reserved_peak"] == 5 * MiB + 512


def test_a_zero_byte_request_and_a_null_free_touch_nothing(driver, torch_calls):
    assert torch_calls.alloc(0, S1) == 0
    torch_calls.free(0, 0, S1)
    assert driver.calls == [] and stats()["live_count"] == 0


def test_setup_is_once_per_process_and_checks_its_addresses(driver):
    with pytest.raises(RuntimeError, match="set up already"):
        speedups.cache_setup(driver.addresses)
    with pytest.raises(ValueError, match="13 function addresses, got 12"):
        speedups.cache_setup(driver.addresses[:12], forget=True)
    with pytest.raises(TypeError, match="callable"):
        speedups.cache_setup(driver.addresses, on_oom=3, forget=True)
    with pytest.raises(ValueError, match="outside"):
        speedups.cache_stats(64)


def test_a_request_larger_than_any_device_fails_without_a_driver_call(driver, torch_calls):
    assert speedups.cache_size_class(2**63 + 1) == 0
    assert torch_calls.alloc(2**63 + 1, S1) == 0
    assert driver.calls == [] and stats()["ooms"] == 1


@given(st.integers(1, 1 << 34))
def test_size_classes_cover_the_request_with_bounded_waste(n):
    size = speedups.cache_size_class(n)
    assert size >= n and size % 512 == 0
    assert size - n < 512 if n <= MiB else size <= n * 1.125
    assert speedups.cache_size_class(size) == size          # a class is its own class
    assert speedups.cache_size_class(n + 1) >= size         # monotone


_OPS = st.lists(st.tuples(st.sampled_from(["alloc", "free", "record", "empty", "capture"]),
                          st.integers(0, 7), st.sampled_from([S1, S2, S3])),
                max_size=60)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_any_sequence_keeps_blocks_exclusive_and_the_books_balanced(ops):
    fake = FakeDriver()
    speedups.cache_setup(fake.addresses, forget=True)
    calls = Torch()
    sizes = [100, 512, 513, 4096, MiB, MiB + 1, 3 * MiB, 9 * MiB]
    live: dict[int, tuple[int, int]] = {}   # ptr -> (request, stream)
    idle_on: dict[int, int] = {}            # ptr -> stream it went idle on
    for op, k, stream in ops:
        if op == "alloc":
            ptr = calls.alloc(sizes[k], stream)
            assert ptr and ptr not in live, "a block handed out twice"
            if ptr in idle_on:
                assert idle_on.pop(ptr) == stream, "reused on another stream"
            live[ptr] = (sizes[k], stream)
        elif op == "free" and live:
            ptr = sorted(live)[k % len(live)]
            request, own = live.pop(ptr)
            calls.free(ptr, request, own)
            idle_on[ptr] = own
        elif op == "record" and live:
            calls.record_stream(sorted(live)[k % len(live)], stream)
        elif op == "empty":
            calls.empty_cache()
            idle_on.clear()
        elif op == "capture":
            fake.capturing ^= {stream}
    s = stats()
    assert s["live_count"] == len(live)
    assert s["live_bytes"] == sum(speedups.cache_size_class(n) for n, _ in live.values())
    assert s["reserved_bytes"] == (s["live_bytes"] + s["cached_bytes"] + s["held_bytes"]
                                   + s["deferred_bytes"])
    freed = {c[1] for c in fake.kinds("free")}
    assert not freed & set(live), "a live block went back to the pool"
    # Everything the pool handed out is live, idle in the cache, held, or back in the pool.
    assert fake.outstanding == s["reserved_bytes"]
    speedups.cache_setup(FakeDriver().addresses, forget=True)


def test_threads_never_share_a_block(driver, torch_calls):
    owned: set[int] = set()
    guard, errors = threading.Lock(), []

    def work(stream: int) -> None:
        for i in range(300):
            ptr = torch_calls.alloc(512 * (1 + i % 3), stream)
            with guard:
                if ptr in owned:
                    errors.append(ptr)
                owned.add(ptr)
            with guard:
                owned.discard(ptr)
            torch_calls.free(ptr, 512 * (1 + i % 3), stream)

    threads = [threading.Thread(target=work, args=(s,)) for s in (S1, S2, S3, S1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and stats()["live_count"] == 0


# --- the torch hook's cached mode, where this machine can check it -------------------
def test_cached_mode_refuses_a_torch_that_cannot_report_record_stream(monkeypatch):
    torch = pytest.importorskip("torch")
    from zerocopy.memory.hooks import torch as hook

    monkeypatch.setattr(driver_path, "cache_addresses", lambda: (1,) * 13)
    monkeypatch.setattr(hook, "_thrower", lambda: 1)  # as if the C++ part were built
    if not hasattr(torch._C, "_cuda_customAllocator"):  # this machine's CPU-only torch
        with pytest.raises(FrameworkError, match="no pluggable CUDA allocator"):
            hook._cache_parts(torch)
    made: list[tuple[int, int]] = []

    class OldAllocator:  # what an old torch's _cuda_customAllocator returns: no setters
        def __init__(self, alloc: int, free: int) -> None:
            made.append((alloc, free))

    monkeypatch.setattr(torch._C, "_cuda_customAllocator", OldAllocator, raising=False)
    hook._cache_parts(torch)  # a pluggable allocator exists: the parts are there
    with pytest.raises(FrameworkError, match="record_stream") as info:
        hook._custom_allocator(torch, speedups.cache_functions())
    assert "async" in str(info.value) and made == [(speedups.cache_functions()["alloc"],
                                                    speedups.cache_functions()["free"])]


def test_cached_mode_without_the_extension_or_a_driver_says_which(monkeypatch):
    torch = pytest.importorskip("torch")
    from zerocopy.memory.hooks import torch as hook

    monkeypatch.setattr(driver_path, "cache_addresses", lambda: None)
    monkeypatch.setattr(hook, "_thrower", lambda: 1)  # as if the C++ part were built
    with pytest.raises(DeviceError, match="libcuda"):
        hook._cache_parts(torch)
    monkeypatch.setattr(driver_path, "cache_addresses", lambda: (1,) * 13)
    monkeypatch.setattr(hook, "_thrower", lambda: None)
    with pytest.raises(InvalidArgumentError, match=r"zerocopy._raise \(C\+\+\)") as info:
        hook._cache_parts(torch)
    assert "C++ compiler" in str(info.value)
    monkeypatch.setattr(_native, "speedups", lambda: None)
    with pytest.raises(InvalidArgumentError, match="C extension") as info:
        hook._cache_parts(torch)
    assert "async" in str(info.value)


def test_torch_memory_counters_read_the_cache(driver, torch_calls, monkeypatch):
    torch = pytest.importorskip("torch")
    from zerocopy.memory.hooks import torch as hook

    for owner in (torch.cuda, torch.cuda.memory):  # restored after the test
        for name in ("memory_stats", "memory_stats_as_nested_dict", "reset_peak_memory_stats",
                     "reset_accumulated_memory_stats"):
            if hasattr(owner, name):
                monkeypatch.setattr(owner, name, getattr(owner, name))
    a = torch_calls.alloc(3 * MiB, S1)
    b = torch_calls.alloc(1000, S1)
    torch_calls.free(b, 1000, S1)
    hook._answer_torch_counters(torch, speedups)
    # torch's own functions, which call memory_stats() underneath.
    assert torch.cuda.memory_allocated(0) == 3 * MiB
    assert torch.cuda.memory_allocated(torch.device("cuda:0")) == 3 * MiB
    assert torch.cuda.memory_reserved(0) == 3 * MiB + 1024
    assert torch.cuda.max_memory_allocated(0) == 3 * MiB + 1024
    summary = torch.cuda.memory_summary(0)          # reads every key torch knows
    assert "Allocated memory" in summary and "3072 KiB" in summary
    nested = torch.cuda.memory_stats_as_nested_dict(0)
    assert nested["allocated_bytes"]["all"]["allocated"] == 3 * MiB + 1024
    torch.cuda.reset_peak_memory_stats(0)
    assert torch.cuda.max_memory_allocated(0) == 3 * MiB
    torch.cuda.reset_accumulated_memory_stats(0)
    assert torch.cuda.memory_stats(0)["allocation.all.allocated"] == 0
    torch_calls.free(a, 3 * MiB, S1)


def test_torch_graph_captures_are_counted_even_when_they_fail(driver):
    from types import SimpleNamespace

    from zerocopy.memory.hooks import torch as hook

    seen: list[int] = []

    class Graph:
        def capture_begin(self, fail: bool = False) -> None:
            seen.append(speedups.cache_stats(0)["captures"])
            if fail:
                raise RuntimeError("capture refused")

        def capture_end(self) -> None:
            seen.append(speedups.cache_stats(0)["captures"])

    hook._count_captures(SimpleNamespace(cuda=SimpleNamespace(CUDAGraph=Graph)), speedups)
    g = Graph()
    g.capture_begin()
    g.capture_end()
    with pytest.raises(RuntimeError, match="refused"):
        g.capture_begin(fail=True)
    assert seen == [1, 1, 1] and speedups.cache_stats(0)["captures"] == 0
