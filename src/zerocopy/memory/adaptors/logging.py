"""Every allocate and deallocate as a CSV row a person can load (pandas.read_csv, a sheet).

Columns: ``time`` (seconds since the epoch), ``thread`` (name), ``framework``, ``action``
(allocate, deallocate, allocate_failed), ``pointer`` (hex), ``size`` (bytes), ``stream``.
A deallocation is attributed to the framework that made the allocation.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from typing import IO

from zerocopy.memory.resource import DIRECT, MemoryResource, ResourceAdaptor

__all__ = ["COLUMNS", "LoggingAdaptor"]

COLUMNS = ("time", "thread", "framework", "action", "pointer", "size", "stream")


class LoggingAdaptor(ResourceAdaptor):
    """``sink`` is a path (opened for writing, closed by ``close()``) or an open text file."""

    def __init__(self, upstream: MemoryResource, sink: str | os.PathLike[str] | IO[str], *,
                 flush: bool = False) -> None:
        super().__init__(upstream)
        self._file: IO[str]
        if isinstance(sink, (str, os.PathLike)):
            self._owns, self._file = True, open(sink, "w", newline="", encoding="utf-8")  # noqa: SIM115
        else:
            self._owns, self._file = False, sink
        self._writer = csv.writer(self._file)
        self._flush = flush
        self._lock = threading.Lock()
        self._who: dict[int, str] = {}
        with self._lock:
            self._writer.writerow(COLUMNS)

    def _row(self, framework: str, action: str, ptr: int, nbytes: int, stream: int | None) -> None:
        row = (f"{time.time():.6f}", threading.current_thread().name, framework, action,
               f"{ptr:#x}", nbytes, stream or 0)
        with self._lock:
            if self._file.closed:
                return  # logging after close() is dropped, never an error inside a free
            self._writer.writerow(row)
            if self._flush:
                self._file.flush()

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        name = framework or DIRECT
        try:
            ptr = self.upstream.allocate(nbytes, stream, framework=framework)
        except BaseException:
            self._row(name, "allocate_failed", 0, nbytes, stream)
            raise
        self._who[ptr] = name
        self._row(name, "allocate", ptr, nbytes, stream)
        return ptr

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        # Log before the upstream free: once freed, the pointer may be handed out again.
        self._row(self._who.pop(ptr, DIRECT), "deallocate", ptr, nbytes, stream)
        self.upstream.deallocate(ptr, nbytes, stream)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._owns and not self._file.closed:
                self._file.close()
            elif not self._file.closed:
                self._file.flush()
