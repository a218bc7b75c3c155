"""The copy ledger and the stage clock of one pipeline run.

Every hand-off between frameworks is one :class:`Handoff`: what went where, how many
bytes, how many were really copied and how long it took. Copied bytes are measured by
pointers: a result buffer that lies inside a source buffer is shared, any other result
buffer was written fresh. For ``zerocopy.to`` the plan (``zerocopy.explain``) says in
advance what it will copy and why; the ledger keeps both, so a plan that promised
sharing and a copy that happened anyway cannot hide.

:class:`Clock` times stages and samples the process's memory while they run: resident
host memory from ``/proc/self/statm`` (every allocator counts, torch's and XLA's too) and,
on a GPU, the device's used memory.
"""

from __future__ import annotations

import hashlib
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import zerocopy

__all__ = ["Clock", "Handoff", "Ledger", "buffers"]


@dataclass
class Handoff:
    mode: str
    stage: str
    src: str
    dst: str
    nbytes: int
    copied_bytes: int
    seconds: float
    call: str
    planned_copied_bytes: int | None = None   # zerocopy.explain's promise (None: no plan)
    reason: str = ""
    partitions: int = 0   # cluster mode: summed over this many record partitions (0: this process)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def buffers(obj: Any) -> list[tuple[int, int]]:
    """(pointer, nbytes) of every data buffer of ``obj`` (arrays, tensors, columns, tables,
    dicts of those)."""
    if isinstance(obj, dict):
        return [b for value in obj.values() for b in buffers(value)]
    if isinstance(obj, list | tuple):
        return [b for value in obj for b in buffers(value)]
    if isinstance(obj, np.ndarray):   # any dtype, records too
        return [(int(obj.__array_interface__["data"][0]), int(obj.nbytes))]
    if hasattr(obj, "column_arrays"):  # a ColumnBlock
        return buffers(obj.column_arrays())
    columns = getattr(obj, "columns", None)
    if columns is not None and hasattr(obj, "shape") and len(getattr(obj, "shape", ())) == 2 \
            and not hasattr(obj, "dtype"):   # a DataFrame (pandas, Polars, cuDF)
        return [b for name in columns for b in buffers(obj[name])]
    info = zerocopy.inspect(obj)
    return [(int(info.ptr), int(info.nbytes))]


def shared_bytes(src: list[tuple[int, int]], out: list[tuple[int, int]]) -> tuple[int, int]:
    """(bytes of ``out`` lying inside ``src`` buffers, bytes of ``out`` elsewhere)."""
    shared = copied = 0
    for ptr, n in out:
        if any(s <= ptr and ptr + n <= s + sn for s, sn in src):
            shared += n
        else:
            copied += n
    return shared, copied


def _name(obj: Any) -> str:
    if isinstance(obj, dict):
        return "+".join(dict.fromkeys(_name(v) for v in obj.values()))
    if isinstance(obj, list | tuple):   # the partitions gathered from the workers
        return "+".join(dict.fromkeys(_name(v) for v in obj))
    if hasattr(obj, "column_arrays"):
        return "column block"
    try:
        return zerocopy.inspect(obj).framework
    except zerocopy.ZeroCopyError:
        return type(obj).__module__.split(".")[0]


class Ledger:
    """The hand-offs of one run, in order."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stage = ""
        self.entries: list[Handoff] = []

    def move(self, src: Any, fn: Callable[[], Any], *, dst: str, call: str,
             plan: Any = None, planned: int | None = None, reason: str = "") -> Any:
        """Run ``fn`` (the hand-off of ``src``), time it and record what it copied.

        ``plan`` is the ``zerocopy.explain`` plan of this hand-off; ``planned`` the bytes a
        documented zerocopy call (column-block views) promises to copy.
        """
        src_buffers = buffers(src)
        start = time.perf_counter()
        out = fn()
        _wait(out)
        seconds = time.perf_counter() - start
        out_buffers = buffers(out)
        _, copied = shared_bytes(src_buffers, out_buffers)
        if plan is not None:
            planned = int(plan.copied_bytes)
            if plan.copies and not reason:
                reason = "; ".join(c for c in plan.caveats if c.startswith("copied because")) \
                    or "; ".join(plan.caveats)
        self.entries.append(Handoff(
            self.mode, self.stage, _name(src), dst, sum(n for _, n in src_buffers), copied,
            seconds, call, planned, reason))
        return out


def _wait(obj: Any) -> None:
    """JAX and CuPy return before their copies end: wait, so the time is the real one."""
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else [obj]
    for value in values:
        ready = getattr(value, "block_until_ready", None)
        if ready is not None:
            ready()


@dataclass
class StageRecord:
    mode: str
    stage: str
    seconds: float
    bytes_copied: int
    peak_bytes: int
    cpu_seconds: float   # the process's CPU time (all threads): less sensitive to a busy machine
    peak_device_bytes: int | None = None
    memory: dict[str, int] = field(default_factory=dict)   # per framework (GPU shared pool)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Clock:
    """Stage timer with a memory sampler thread (host RSS; device used memory on a GPU)."""

    def __init__(self, ledger: Ledger, *, device_used: Callable[[], int] | None = None,
                 framework_memory: Callable[[], dict[str, int]] | None = None,
                 interval: float = 0.005) -> None:
        self.ledger = ledger
        self.stages: list[StageRecord] = []
        self._device_used = device_used
        self._framework_memory = framework_memory
        self._interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._peak = self._peak_dev = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            if self._device_used is not None:
                self._peak_dev = max(self._peak_dev, self._device_used())
            self._stop.wait(self._interval)

    @contextmanager
    def stage(self, name: str, sync: Callable[[], None] | None = None) -> Iterator[None]:
        self.ledger.stage = name
        first = len(self.ledger.entries)
        self._peak = self._rss()
        self._peak_dev = self._device_used() if self._device_used is not None else 0
        start, cpu = time.perf_counter(), time.process_time()
        yield
        if sync is not None:
            sync()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        self._peak = max(self._peak, self._rss())
        copied = sum(e.copied_bytes for e in self.ledger.entries[first:])
        memory = self._framework_memory() if self._framework_memory is not None else {}
        self.stages.append(StageRecord(
            self.ledger.mode, name, seconds, copied, self._peak, cpu,
            self._peak_dev if self._device_used is not None else None, memory))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def max_rss() -> int:
        """The process's peak resident memory so far (the kernel's own high-water mark)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def array_digest(a: Any) -> str:
    """A short content hash (bit-exact comparison of results across processes)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
