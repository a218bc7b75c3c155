"""GPU tests (run on the GPU machine by scripts/gpu-check). Each scenario runs in a fresh
interpreter: torch, JAX and Numba must be configured before their runtimes start, and a
fresh process is also a clean shared pool. Every scenario doubles as a leak check."""

from __future__ import annotations

import pytest
from memory_support import run_python

pytestmark = pytest.mark.gpu

MiB = 1 << 20


def test_cuda_runtime_facade_and_device_pool() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy._cuda import UINT64_MAX, binding
        rt = binding()
        pool = zm.DevicePoolResource()
        pool.release_threshold = UINT64_MAX
        used0 = pool.used()
        p = pool.allocate(64 << 20, 0)
        used1 = pool.used()
        pool.deallocate(p, 64 << 20, 0)
        rt.synchronize()
        pool.reset_peaks()
        raw = zm.CudaMallocResource(); q = raw.allocate(1 << 20); raw.deallocate(q, 1 << 20)
        pin = zm.PinnedMemoryResource(); h = pin.allocate(4096); pin.deallocate(h, 4096)
        print(json.dumps({"binding": rt.name, "grew": used1 - used0, "after": pool.used() - used0,
                          "threshold": pool.release_threshold, "reserved": pool.reserved(),
                          "free_total": rt.mem_get_info()}))
    """)
    assert out["grew"] >= 64 * MiB and out["after"] == 0
    assert out["threshold"] == (1 << 64) - 1 and out["reserved"] >= 64 * MiB


@pytest.mark.parametrize("binding", ["cuda.bindings", "cupy"])
def test_hot_path_bindings_allocate_and_translate_oom(binding: str) -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy.errors import OutOfMemoryError
        pool = zm.DevicePoolResource()
        used0 = pool.used()
        ptrs = [pool.allocate(n, 0) for n in (256, 1 << 20, 64 << 20)]
        grew = pool.used() - used0
        for p, n in zip(ptrs, (256, 1 << 20, 64 << 20)):
            pool.deallocate(p, n, 0)
        try:
            pool.allocate(1 << 50, 0)
            oom = False
        except OutOfMemoryError:
            oom = True
        print(json.dumps({"binding": pool.binding, "grew": grew, "oom": oom,
                          "after": pool.used() - used0}))
    """, env={"ZEROCOPY_CUDA_BINDING": binding})
    assert out["binding"].startswith(binding) and out["grew"] >= 65 * MiB
    assert out["oom"] and out["after"] == 0


def test_cupy_fused_path_counts_frees_and_falls_back_on_oom() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        calls = []
        def on_oom(nbytes, framework, attempt):
            calls.append((framework, attempt))
            return attempt == 0
        shared = zm.share(["cupy"], on_oom=on_oom, modes={"cupy": "direct"})
        import cupy
        path = shared.installations["cupy"].details["path"]
        used0 = shared.base.used()
        a = cupy.arange(1 << 20, dtype=cupy.float32)
        s = shared.statistics.statistics("cupy")
        grew = shared.base.used() - used0
        ok = float(a.sum()) == float((1 << 20) * ((1 << 20) - 1) / 2)
        del a
        cupy.cuda.runtime.deviceSynchronize()
        after = shared.statistics.statistics("cupy")
        try:
            cupy.empty(1 << 50, dtype=cupy.uint8)
            oom = None
        except cupy.cuda.memory.OutOfMemoryError as exc:
            oom = type(exc).__name__
        with cupy.cuda.Stream(non_blocking=True):
            b = cupy.ones(1000)
            side = float(b.sum())
            del b
        print(json.dumps({"path": path, "current": s.current_bytes, "count": s.total_count,
                          "grew": grew, "ok": ok, "after": after.current_bytes,
                          "left": shared.base.used() - used0, "oom": oom, "calls": calls,
                          "side": side}))
    """)
    assert out["path"] == "direct+fused" and out["ok"] and out["current"] == 4 * MiB
    assert out["grew"] >= 4 * MiB and out["after"] == 0 and out["left"] == 0
    assert out["oom"] and out["calls"] == [["cupy", 0], ["cupy", 1]] and out["side"] == 1000.0


def test_cupy_cached_mode_keeps_cupys_cache_in_front_of_the_shared_pool() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy.memory.hooks import cupy as cupy_hook
        shared = zm.share(["cupy"], limits={"cupy": 64 << 20})
        import cupy
        mode = shared.installations["cupy"].capabilities.mode
        path = shared.installations["cupy"].details["path"]
        pool, stats = shared.base, shared.statistics
        used0 = pool.used()
        a = cupy.arange(1 << 20, dtype=cupy.float32)              # 4 MiB: a cache miss
        ptr, grew = a.data.ptr, pool.used() - used0
        ok = float(a.sum()) == float((1 << 20) * ((1 << 20) - 1) / 2)
        segments = stats.statistics("cupy").total_count
        del a
        held = stats.statistics("cupy").current_bytes              # CuPy's cache keeps it
        fw = cupy_hook.framework_stats()
        b = cupy.empty(1 << 20, dtype=cupy.float32)                # a hit: the same block
        hit = b.data.ptr == ptr and stats.statistics("cupy").total_count == segments
        del b
        try:
            cupy.empty(100 << 20, dtype=cupy.uint8); oom = None
        except cupy.cuda.memory.OutOfMemoryError as exc:
            oom = str(exc)[:60]
        idle = cupy_hook.idle_bytes()
        cupy_hook.release_cache()
        cupy.cuda.runtime.deviceSynchronize()
        print(json.dumps({"mode": mode, "path": path, "grew": grew, "ok": ok, "held": held,
                          "fw": fw, "hit": hit, "oom": oom, "idle": idle,
                          "after_release": stats.statistics("cupy").current_bytes,
                          "left": pool.used() - used0}))
    """)
    assert out["mode"] == "cached" and out["path"] == "cached+chain"  # limits: the chain path
    assert out["ok"] and out["grew"] >= 4 * MiB and out["held"] >= 4 * MiB and out["hit"]
    assert out["fw"]["current_bytes"] == 0 and out["fw"]["cached_free_bytes"] >= 4 * MiB
    assert out["oom"]  # CuPy's MemoryPool re-raises the refusal as its own OutOfMemoryError
    assert out["idle"] >= 4 * MiB and out["after_release"] == 0 and out["left"] == 0


def test_cupy_cached_mode_takes_the_fused_path_under_the_default_chain() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        shared = zm.share(["cupy"])
        import cupy
        x = cupy.ones((1024, 1024), dtype=cupy.float64)
        print(json.dumps({"path": shared.installations["cupy"].details["path"],
                          "sum": float(x.sum()),
                          "held": shared.statistics.statistics("cupy").current_bytes}))
    """)
    # held: x's 8 MiB segment plus what CuPy's sum reduction allocated (a few KiB, cached)
    assert out["path"] == "cached+fused" and out["sum"] == float(1 << 20)
    assert 8 * MiB <= out["held"] < 9 * MiB


def test_governance_takes_cupys_idle_cache_back_when_the_device_runs_short() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        shared = zm.share(["cupy"], interval=None)
        import cupy
        a = cupy.ones(16 << 20, dtype=cupy.uint8)
        del a                                    # 16 MiB idle in CuPy's cache
        held = shared.statistics.statistics("cupy").current_bytes
        quiet = [e.kind for e in shared.check()]  # plenty free on the card: nothing asked
        shared.governor.idle_release_below = 1.0  # "short of memory" from now on
        events = [e.kind for e in shared.check()]
        print(json.dumps({"held": held, "quiet": quiet, "events": events,
                          "after": shared.statistics.statistics("cupy").current_bytes}))
    """)
    assert out["held"] >= 16 * MiB and "idle-released" not in out["quiet"]
    assert "idle-released" in out["events"] and out["after"] == 0


def test_managed_memory_prefetch_and_no_oversubscription() -> None:
    out = run_python("""
        import json
        import cupy
        import zerocopy.memory as zm
        from zerocopy.errors import OutOfMemoryError
        mr = zm.ManagedMemoryResource(prefetch=True)
        n = 16 << 20
        p = mr.allocate(n, 0)
        mem = cupy.cuda.UnownedMemory(p, n, None, 0)
        a = cupy.ndarray((n,), cupy.uint8, cupy.cuda.MemoryPointer(mem, 0))
        a[:] = 7
        ok = int(a.sum()) == 7 * n
        del a, mem
        cupy.cuda.runtime.deviceSynchronize()
        mr.deallocate(p, n)
        free_before = zm.ManagedMemoryResource()._rt.mem_get_info()[0]
        try:   # more than the card has free: refused BEFORE anything is asked of CUDA
            mr.allocate(free_before + (1 << 30), 0)
            refused = False
        except OutOfMemoryError as exc:
            refused = "allow_oversubscription" in str(exc)
        print(json.dumps({"ok": ok, "refused": refused, "outstanding": mr.outstanding}))
    """)
    assert out == {"ok": True, "refused": True, "outstanding": 0}


def test_cupy_lands_in_the_shared_pool_with_stats_limits_and_leak_stacks() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        shared = zm.share(["cupy"], limits={"cupy": 64 << 20}, track=True)
        import cupy
        pool = shared.base
        used0 = pool.used()
        def make_leak():
            return cupy.ones(1 << 20, dtype=cupy.float32)      # 4 MiB, kept
        kept = make_leak()
        used1 = pool.used()
        stats = shared.statistics.statistics("cupy")
        try:
            cupy.empty(100 << 20, dtype=cupy.uint8)
            oom = None
        except cupy.cuda.memory.OutOfMemoryError as exc:
            oom = type(exc).__mro__[1].__module__ + ":" + str(exc)[:60]
        after = int(cupy.arange(10).sum())                      # the process goes on
        leaks = shared.tracker.format_leaks("cupy")
        total = float(kept.sum())
        del kept
        cupy.cuda.runtime.deviceSynchronize()
        final = shared.statistics.statistics("cupy").current_bytes
        print(json.dumps({"grew": used1 - used0, "stats": stats.current_bytes, "oom": oom,
                          "after": after, "leak": "make_leak" in leaks, "sum": total,
                          "final": final, "left": len(shared.tracker.leaks())}))
    """)
    assert out["grew"] >= 4 * MiB and out["stats"] >= 4 * MiB
    assert out["oom"] and "cupy would exceed" in out["oom"]
    assert out["after"] == 45 and out["leak"] and out["sum"] == float(1 << 20)
    assert out["final"] == 0 and out["left"] == 0


def test_numba_lands_in_the_shared_pool() -> None:
    out = run_python("""
        import json
        import numpy as np
        import zerocopy.memory as zm
        shared = zm.share(["numba"], limits={"numba": 32 << 20})
        from numba import cuda
        from numba.cuda.cudadrv.driver import CudaAPIError
        used0 = shared.base.used()
        d = cuda.to_device(np.arange(1 << 20, dtype=np.float32))
        grew = shared.base.used() - used0
        back = float(d.copy_to_host().sum())
        try:
            cuda.device_array(64 << 20, dtype=np.uint8); caught = None
        except CudaAPIError as exc:
            caught = isinstance(exc, MemoryError)
        del d
        import gc; gc.collect(); cuda.current_context().deallocations.clear()
        print(json.dumps({"grew": grew, "sum": back, "caught": caught,
                          "current": shared.statistics.statistics("numba").current_bytes}))
    """)
    assert out["grew"] >= 4 * MiB and out["sum"] == float(sum(range(1 << 20)))
    assert out["caught"] is True and out["current"] == 0


def test_torch_async_backend_shares_the_pool_and_raises_its_own_oom() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        shared = zm.share(["torch"], limits={"torch": 256 << 20})
        import torch
        used0 = shared.base.used()
        x = torch.ones(32 << 20, dtype=torch.uint8, device="cuda")
        grew = shared.base.used() - used0
        shared.check()                      # applies torch's limit now that CUDA is up
        try:
            torch.empty(512 << 20, dtype=torch.uint8, device="cuda"); oom = False
        except torch.OutOfMemoryError:
            oom = True
        y = torch.ones(1 << 20, device="cuda").sum().item()
        torch.cuda.empty_cache()            # would trim the shared pool: governance skips it
        rep = shared.report()
        row = {f.framework: f for f in rep.frameworks}["torch"]
        print(json.dumps({"backend": torch.cuda.get_allocator_backend(), "grew": grew,
                          "oom": oom, "y": y, "events": [e.kind for e in rep.events],
                          "torch_current": row.current_bytes}))
    """)
    assert out["backend"] == "cudaMallocAsync" and out["grew"] >= 32 * MiB
    assert out["oom"] and out["y"] == float(1 << 20)
    assert "empty-cache-skipped" in out["events"] and out["torch_current"] >= 32 * MiB


def test_torch_pluggable_gives_per_allocation_stats_and_leaks() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        shared = zm.share(["torch"], modes={"torch": "pluggable"}, track=True)
        import torch
        def allocate_model_input():
            return torch.ones(1 << 20, device="cuda")
        x = allocate_model_input()
        s = float((x * 2).sum().item())
        stats = shared.statistics.statistics("torch")
        leaks = shared.tracker.format_leaks("torch")
        del x
        torch.cuda.synchronize()
        print(json.dumps({"backend": torch.cuda.get_allocator_backend(), "sum": s,
                          "count": stats.total_count, "leak": "allocate_model_input" in leaks,
                          "current": shared.statistics.statistics("torch").current_bytes}))
    """)
    assert out["backend"] == "pluggable" and out["sum"] == float(2 << 20)
    assert out["count"] >= 1 and out["leak"] and out["current"] == 0


def test_torch_cached_mode_reuses_blocks_from_the_shared_pool_and_gives_them_back() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy import _native
        from zerocopy.memory.governance import release_idle
        shared = zm.share(["torch"], modes={"torch": "cached"}, limits={"torch": 96 << 20})
        import torch
        cache = _native.speedups()
        used0 = shared.base.used()
        x = torch.ones(32 << 20, dtype=torch.uint8, device="cuda")
        grew = shared.base.used() - used0              # the block came from the shared pool
        first = x.data_ptr()
        del x
        y = torch.empty(32 << 20, dtype=torch.uint8, device="cuda")
        same = y.data_ptr() == first                   # reused on its stream, no driver call
        y.fill_(3)
        total = int(y.sum().item())
        allocated, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
        big = torch.empty(80 << 20, dtype=torch.uint8, device="cuda")   # past the limit
        model = torch.nn.Linear(256, 256, device="cuda")
        loss = model(torch.randn(64, 256, device="cuda")).square().mean()
        loss.backward()                                # autograd allocates on its own thread
        grad_ok = bool(torch.isfinite(model.weight.grad).all().item())
        row = {f.framework: f for f in shared.report().frameworks}["torch"]
        del y, big
        idle = cache.cache_stats(0)["cached_bytes"]
        asked = release_idle(asking="cupy")            # governance, for another framework
        after = cache.cache_stats(0)
        z = torch.empty(1 << 20, device="cuda"); del z
        torch.cuda.empty_cache()                       # torch's own call: idle blocks back too
        emptied = cache.cache_stats(0)["cached_bytes"]
        try:                                           # more than the card has
            huge = torch.empty(300 << 30, dtype=torch.uint8, device="cuda")
            huge.fill_(1)
            too_big = "no error"
        except RuntimeError as exc:
            too_big = type(exc).__name__ + ": " + str(exc)[:60]
        after_oom = float(torch.ones(1 << 20, device="cuda").sum().item())
        summary_ok = "Allocated memory" in torch.cuda.memory_summary()
        print(json.dumps({"backend": torch.cuda.get_allocator_backend(), "grew": grew,
                          "same": same, "total": total, "allocated": allocated,
                          "reserved": reserved, "grad_ok": grad_ok,
                          "fw": row.framework_stats, "idle": idle, "asked": asked,
                          "cached_after": after["cached_bytes"],
                          "emptied": emptied,
                          "too_big": too_big, "after_oom": after_oom, "summary_ok": summary_ok,
                          "ooms": torch.cuda.memory_stats()["num_ooms"],
                          "path": shared.installations["torch"].details["path"]}))
    """)
    assert out["backend"] == "pluggable" and out["path"] == "cached+C"
    assert out["grew"] >= 32 * MiB and out["same"] and out["total"] == 3 * (32 << 20)
    assert out["allocated"] == 32 * MiB and out["reserved"] >= 32 * MiB
    assert out["grad_ok"] and out["fw"]["overdraft_count"] >= 1
    assert out["idle"] >= 112 * MiB and out["asked"] >= 112 * MiB and out["cached_after"] == 0
    assert out["emptied"] == 0
    # A request no device can serve: a RuntimeError from the torch call that asked (not a
    # NULL, which torch would hand a kernel), the process and its CUDA context go on, and
    # torch's counters (memory_summary too) say what happened.
    assert out["too_big"].startswith("RuntimeError: CUDA out of memory. Tried to allocate")
    assert out["after_oom"] == float(1 << 20) and out["summary_ok"] and out["ooms"] == 1


def test_torch_cached_mode_honours_record_stream() -> None:
    """A block another stream still reads is not handed out before that stream is done;
    the control (no record_stream, as torch's own allocator would also race) shows the
    race the test would catch."""
    out = run_python("""
        import json
        import zerocopy.memory as zm
        zm.share(["torch"], modes={"torch": "cached"})
        import torch
        side = torch.cuda.Stream()
        def trial(record):
            x = torch.full((64 << 20,), 5, dtype=torch.uint8, device="cuda")
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                torch.cuda._sleep(100_000_000)         # ~50 ms before the side stream reads x
                y = x.clone()
            if record:
                x.record_stream(side)
            first = x.data_ptr()
            del x
            z = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
            reused = z.data_ptr() == first
            z.fill_(7)                                 # on the default stream
            torch.cuda.synchronize()
            return reused, int(y.min().item()), int(y.max().item())
        print(json.dumps({"recorded": [trial(True) for _ in range(3)],
                          "control": trial(False)}))
    """)
    assert out["recorded"] == [[True, 5, 5]] * 3
    assert out["control"][0] and out["control"][2] == 7   # the race, without record_stream


def test_torch_cached_mode_keeps_a_captured_graphs_blocks_out_of_reuse() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy import _native
        zm.share(["torch"], modes={"torch": "cached"})
        import torch
        torch.manual_seed(0)
        x = torch.randn(512, 512, device="cuda")
        w = torch.randn(512, 512, device="cuda")
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                (torch.relu(x @ w) * 2 + 1).sum()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            h = torch.relu(x @ w)                      # an intermediate the graph rewrites
            y = h * 2 + 1
        del h
        captured = _native.speedups().cache_stats(0)["captured"]
        correct, intact = [], []
        for i in range(4):
            x.copy_(torch.randn(512, 512, device="cuda"))
            g.replay()
            torch.cuda.synchronize()
            correct.append(bool(torch.allclose(y, torch.relu(x @ w) * 2 + 1)))
            junk = [torch.full((512, 512), 9.0, device="cuda") for _ in range(8)]
            g.replay()                                 # must not write into junk
            torch.cuda.synchronize()
            intact.append(all(bool(j.eq(9.0).all().item()) for j in junk))
        print(json.dumps({"captured": captured, "correct": correct, "intact": intact}))
    """)
    assert out["captured"] >= 2
    assert out["correct"] == [True] * 4 and out["intact"] == [True] * 4


def test_jax_joins_the_pool_and_governance_holds_after_jax_starts_last() -> None:
    out = run_python("""
        import json
        import zerocopy.memory as zm
        from zerocopy._cuda import UINT64_MAX
        shared = zm.share(["cupy", "torch", "jax"], interval=None)
        import cupy, torch
        a = cupy.ones(1 << 20); t = torch.ones(1 << 20, device="cuda")
        import jax, jax.numpy as jnp
        used0 = shared.base.used()
        j = jnp.ones(8 << 20, dtype=jnp.float32).block_until_ready()   # JAX starts last
        grew = shared.base.used() - used0
        threshold_after_jax = shared.base.release_threshold
        events = [e.kind for e in shared.check()]
        rep = shared.report()
        print(json.dumps({"backend": jax.default_backend(), "grew": grew,
                          "threshold_after_jax": threshold_after_jax, "events": events,
                          "threshold": shared.base.release_threshold,
                          "frameworks": sorted(f.framework for f in rep.frameworks)}))
    """)
    assert out["backend"] == "gpu" and out["grew"] >= 32 * MiB
    assert out["threshold"] == (1 << 64) - 1
    if out["threshold_after_jax"] != (1 << 64) - 1:  # JAX reset it: it must be recorded
        assert "threshold-reset" in out["events"]
    assert out["frameworks"] == ["cupy", "jax", "torch"]


def test_rmm_view_and_callback_modes() -> None:
    pytest.importorskip("rmm")
    out = run_python("""
        import json
        import zerocopy.memory as zm
        import rmm
        shared = zm.share(["cudf"], modes={"cudf": "callback"})
        buf = rmm.DeviceBuffer(size=1 << 20)
        counted = shared.statistics.statistics("cudf").current_bytes
        del buf
        shared.undo()
        shared = zm.share(["cudf"])
        used0 = shared.base.used()
        buf = rmm.DeviceBuffer(size=8 << 20)
        grew = shared.base.used() - used0
        handle = rmm.mr.get_current_device_resource().pool_handle()
        del buf
        print(json.dumps({"counted": counted, "grew": grew,
                          "same_pool": int(handle) == int(shared.base.pool)}))
    """)
    assert out["counted"] == MiB and out["grew"] >= 8 * MiB and out["same_pool"]


def test_freeing_never_blocks_behind_a_running_kernel() -> None:
    out = run_python("""
        import json, sys
        sys.argv = ["x"]
        from zerocopy.bench.memory import _blocking
        print(json.dumps(_blocking()))
    """)
    timings = out["host_ms_behind_20ms_kernel"]
    for label, ms in timings.items():
        if not label.startswith("reference"):
            assert ms < 1.0, (label, ms)


def test_cupy_alternating_bench_times_both_pools_in_one_process() -> None:
    """The bench's in-process CuPy comparison: both modes timed at every size, the shared
    one installed (its cache in front: only misses reach zerocopy), CuPy left on it."""
    out = run_python("""
        import json, sys
        sys.argv = ["x"]
        import cupy
        from zerocopy.bench.memory import _cupy_alternating
        result = _cupy_alternating(50)
        result["left_on_shared"] = cupy.cuda.get_allocator() is not cupy.get_default_memory_pool().malloc
        print(json.dumps(result))
    """)
    assert set(out["default_us"]) == set(out["shared_us"]) == {"256 B", "1 MiB", "64 MiB"}
    assert all(v > 0 for v in [*out["default_us"].values(), *out["shared_us"].values()])
    assert out["hook_path"] == {"cupy": "cached+fused"}
    assert 1 <= out["seen_by_zerocopy"]["cupy"] < 50  # cache misses only, not every pair
    assert out["left_on_shared"]


@pytest.mark.parametrize("binding", ["cuda.bindings", "cupy"])
def test_handoff_lets_another_stream_reuse_a_pending_free(binding: str) -> None:
    out = run_python("""
        import json, time
        import cupy
        import zerocopy.memory as zm
        pool = zm.DevicePoolResource()
        pool.release_threshold = (1 << 64) - 1
        spin = cupy.RawKernel('''extern "C" __global__ void spin(long long c) {
            long long s = clock64(); while (clock64() - s < c) { } }''', "spin")
        other = cupy.cuda.Stream(non_blocking=True)
        size = 64 << 20
        keep = pool.allocate(size, 0)
        def attempt(handoff):
            cupy.cuda.runtime.deviceSynchronize()
            pool.trim(0)
            p = pool.allocate(size, 0)
            spin((1,), (1,), (200_000_000,))  # ~100 ms: the free below stays queued
            pool.deallocate(p, size, 0)
            start = time.perf_counter()
            if handoff:
                pool.handoff(other.ptr, 0)
            host_ms = (time.perf_counter() - start) * 1e3
            r0 = pool.reserved()
            q = pool.allocate(size, other.ptr)
            grew = pool.reserved() - r0
            pool.deallocate(q, size, other.ptr)
            return {"same": q == p, "grew": grew, "host_ms": host_ms}
        out = {"plain": attempt(False), "handoff": attempt(True)}
        pool.deallocate(keep, size, 0)
        cupy.cuda.runtime.deviceSynchronize()
        print(json.dumps(out))
    """, env={"ZEROCOPY_CUDA_BINDING": binding})
    assert out["handoff"]["same"] and out["handoff"]["grew"] == 0
    assert out["handoff"]["host_ms"] < 1.0  # stream-ordered: the host does not wait


def test_cudf_lands_in_the_shared_pool_in_both_modes() -> None:
    pytest.importorskip("cudf")
    out = run_python("""
        import json
        import numpy as np
        import zerocopy.memory as zm
        shared = zm.share(["cudf"], modes={"cudf": "callback"}, limits={"cudf": 64 << 20})
        import cudf
        s = cudf.Series(np.ones(1 << 20, dtype="f4"))            # 4 MiB through our chain
        counted = shared.statistics.statistics("cudf").current_bytes
        try:
            big = cudf.Series(np.ones(32 << 20, dtype="f4"))      # 128 MiB: over the limit
            refused = None
        except MemoryError as exc:
            refused = type(exc).__name__ + ": " + str(exc)[:80]
        after = float(cudf.Series(np.arange(10, dtype="f4")).sum())  # the process goes on
        del s
        shared.undo()
        shared = zm.share(["cudf"])                                # view: pool-level
        used0 = shared.base.used()
        t = cudf.Series(np.ones(4 << 20, dtype="f4"))             # 16 MiB
        grew = shared.base.used() - used0
        print(json.dumps({"counted": counted, "refused": refused, "after": after, "grew": grew,
                          "sum": float(t.sum())}))
    """)
    assert out["counted"] >= 4 * MiB
    assert out["refused"] and "cudf" in out["refused"]
    assert out["after"] == 45.0
    assert out["grew"] >= 16 * MiB and out["sum"] == float(4 << 20)
