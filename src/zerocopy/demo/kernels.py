"""The demo's Numba kernels: R-peaks and beat windows, on the CPU (numba) and GPU (numba-cuda).

Both devices find the same peaks by the same rule, so the two ways of one device agree
bit for bit: sample ``i`` of a record is an R-peak when it is above the record's
threshold, strictly greater than the ``half`` samples before it and not smaller than the
``half`` samples after it (the first of equal maxima wins), and a whole window of
``width`` samples starting ``pre`` before it fits in the record.

A beat is ``(record i4, peak i4, rr f4, amp f4, window f4[width])``. The cutting kernel
writes through five array views, so the same kernel fills beat *records* (array of
structures: strided field views of one byte buffer, the naive way) or the *columns* of a
column block (structure of arrays, the zerocopy way), on the CPU and the GPU alike.
"""

from __future__ import annotations

import importlib
from typing import Any

import numba  # noqa: TID253 (the demo's kernels: this module is loaded by the demo only)
import numpy as np

from zerocopy.errors import FrameworkError, message

__all__ = ["META", "beat_dtype", "cut_beats_cpu", "cut_beats_gpu", "find_peaks_cpu", "find_peaks_gpu",
           "record_views"]

META = ("record", "peak", "rr", "amp")


def beat_dtype(width: int) -> np.dtype:
    return np.dtype([("record", "i4"), ("peak", "i4"), ("rr", "f4"), ("amp", "f4"),
                     ("window", "f4", (width,))])


@numba.njit(cache=True, inline="always")
def _is_peak(y: np.ndarray, r: int, i: int, thr: float, half: int, pre: int, post: int) -> bool:
    n = y.shape[1]
    v = y[r, i]
    if v <= thr or i < pre or i + post > n:
        return False
    for j in range(max(0, i - half), i):
        if y[r, j] >= v:
            return False
    for j in range(i + 1, min(n, i + half + 1)):  # noqa: SIM110 (Numba compiles no generators)
        if y[r, j] > v:
            return False
    return True


@numba.njit(cache=True, parallel=True)
def _count_peaks(y: np.ndarray, thr: np.ndarray, half: int, pre: int, post: int,
                 counts: np.ndarray) -> None:
    for r in numba.prange(y.shape[0]):
        c = 0
        for i in range(y.shape[1]):
            if _is_peak(y, r, i, thr[r], half, pre, post):
                c += 1
        counts[r] = c


@numba.njit(cache=True, parallel=True)
def _fill_peaks(y: np.ndarray, thr: np.ndarray, half: int, pre: int, post: int, starts: np.ndarray,
                rows: np.ndarray, cols: np.ndarray) -> None:
    for r in numba.prange(y.shape[0]):
        k = starts[r]
        for i in range(y.shape[1]):
            if _is_peak(y, r, i, thr[r], half, pre, post):
                rows[k] = r
                cols[k] = i
                k += 1


def find_peaks_cpu(y: np.ndarray, thr: np.ndarray, half: int, pre: int, post: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(row, sample) of every R-peak of the ``(rows, samples)`` float32 signal."""
    counts = np.empty(y.shape[0], np.int64)
    _count_peaks(y, thr, half, pre, post, counts)
    starts = np.zeros(y.shape[0], np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    total = int(counts.sum())
    rows, cols = np.empty(total, np.int32), np.empty(total, np.int32)
    _fill_peaks(y, thr, half, pre, post, starts, rows, cols)
    return rows, cols


def record_views(buffer: Any, n: int, width: int) -> dict[str, Any]:
    """Field views of ``n`` beat records in a byte buffer (NumPy or CuPy): strided arrays."""
    words = buffer.view("i4").reshape(n, 4 + width)
    floats = words.view("f4")
    return {"record": words[:, 0], "peak": words[:, 1], "rr": floats[:, 2], "amp": floats[:, 3],
            "window": floats[:, 4:]}


@numba.njit(cache=True, parallel=True)
def _cut(y: np.ndarray, rows: np.ndarray, cols: np.ndarray, record_of_row: np.ndarray, pre: int,
         fs: np.float32, record: np.ndarray, peak: np.ndarray, rr: np.ndarray, amp: np.ndarray,
         window: np.ndarray) -> None:
    for k in numba.prange(rows.shape[0]):
        r, p = rows[k], cols[k]
        record[k] = record_of_row[r]
        peak[k] = p
        rr[k] = (p - cols[k - 1]) / fs if k > 0 and rows[k - 1] == r else np.float32(np.nan)
        amp[k] = y[r, p]
        for j in range(window.shape[1]):
            window[k, j] = y[r, p - pre + j]


def cut_beats_cpu(y: np.ndarray, rows: np.ndarray, cols: np.ndarray, record_of_row: np.ndarray,
                  pre: int, fs: float, out: dict[str, np.ndarray]) -> None:
    """Write one beat per peak into the views ``out`` (records or columns, see module doc)."""
    _cut(y, rows, cols, record_of_row, pre, np.float32(fs), *(out[name] for name in (*META, "window")))


# ----------------------------------------------------------------------------------- GPU
# numba-cuda kernels, compiled on first use (never on a machine without a GPU).

_GPU: dict[str, Any] = {}
cuda: Any = None   # numba.cuda, imported by the first GPU call


def check_numba_cuda_compiles() -> None:
    """numba-cuda 0.30 registers ``np.row_stack`` when it compiles its first kernel, and
    NumPy 2.5 removed it: every kernel then fails with NumPy's AttributeError (found on the
    GPU test machine, numba-cuda 0.30.4 with NumPy 2.5.2). Say so before the pipeline starts,
    as a typed error with the fix, instead of a raw error from inside the first launch."""
    try:
        importlib.import_module("numba.cuda.np.arrayobj")  # what the first compilation loads
    except ImportError:
        return  # another numba-cuda layout: its first kernel will tell
    except AttributeError as exc:
        raise FrameworkError(message(
            "numba-cuda cannot compile kernels with this NumPy", got=f"{exc} (NumPy {np.__version__})",
            hint="pip install 'numpy<2.5' (numba-cuda 0.30 still registers np.row_stack), or a "
                 "numba-cuda release made for NumPy 2.5")) from exc


def _gpu_kernels() -> dict[str, Any]:
    if _GPU:
        return _GPU
    global cuda  # noqa: PLW0603 (a module global, as numba-cuda and its simulator expect)
    check_numba_cuda_compiles()
    from numba import cuda

    @cuda.jit
    def peak_mask(y: Any, thr: Any, half: int, pre: int, post: int, mask: Any) -> None:
        i, r = cuda.grid(2)   # x runs along a record: neighbouring threads read neighbouring samples
        if r >= y.shape[0] or i >= y.shape[1]:
            return
        n = y.shape[1]
        v = y[r, i]
        ok = v > thr[r] and i >= pre and i + post <= n
        if ok:
            for j in range(max(0, i - half), i):
                if y[r, j] >= v:
                    ok = False
                    break
        if ok:
            for j in range(i + 1, min(n, i + half + 1)):
                if y[r, j] > v:
                    ok = False
                    break
        mask[r, i] = 1 if ok else 0

    @cuda.jit
    def cut(y: Any, rows: Any, cols: Any, record_of_row: Any, pre: int, fs: np.float32, record: Any,
            peak: Any, rr: Any, amp: Any, window: Any) -> None:
        j, k = cuda.grid(2)   # x runs along a window
        if k >= rows.shape[0] or j >= window.shape[1]:
            return
        r, p = rows[k], cols[k]
        window[k, j] = y[r, p - pre + j]
        if j == 0:
            record[k] = record_of_row[r]
            peak[k] = p
            rr[k] = (p - cols[k - 1]) / fs if k > 0 and rows[k - 1] == r else np.float32(np.nan)
            amp[k] = y[r, p]

    _GPU.update(peak_mask=peak_mask, cut=cut)
    return _GPU


def find_peaks_gpu(y: Any, thr: Any, half: int, pre: int, post: int) -> tuple[Any, Any]:
    """GPU twin of :func:`find_peaks_cpu`: a mask kernel, then CuPy compaction (row-major)."""
    import cupy

    kernels = _gpu_kernels()
    mask = cupy.empty(y.shape, cupy.uint8)
    block = (128, 4)
    grid = ((y.shape[1] + 127) // 128, (y.shape[0] + 3) // 4)
    kernels["peak_mask"][grid, block](y, thr, half, pre, post, mask)
    rows, cols = cupy.nonzero(mask)
    return rows.astype(cupy.int32), cols.astype(cupy.int32)


def cut_beats_gpu(y: Any, rows: Any, cols: Any, record_of_row: Any, pre: int, fs: float,
                  out: dict[str, Any]) -> None:
    """GPU twin of :func:`cut_beats_cpu` (CuPy views)."""
    n, width = out["window"].shape
    if n == 0:
        return
    grid = ((width + 31) // 32, (n + 7) // 8)
    _gpu_kernels()["cut"][grid, (32, 8)](y, rows, cols, record_of_row, pre, np.float32(fs),
                                         *(out[name] for name in (*META, "window")))
