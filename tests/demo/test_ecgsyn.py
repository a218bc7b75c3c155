"""ECGSYN (McSharry et al. 2003): seeded, deterministic, and physiologically plausible."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from zerocopy.demo.ecgsyn import EcgParams, cached_parquet, rr_tachogram, simulate
from zerocopy.demo.kernels import find_peaks_cpu
from zerocopy.demo.pipeline import _bandpass_mask, _thresholds

SMALL = EcgParams(records=3, minutes=0.5, hr_spread=0.0, abnormal=0.0, seed=7)


def _detected_heart_rate(signals: np.ndarray, fs: float) -> float:
    x = signals[:, 0, :]
    y = np.fft.irfft(np.fft.rfft(x, axis=1) * _bandpass_mask(x.shape[1], fs), n=x.shape[1], axis=1)
    y = y.astype(np.float32)
    rows, cols = find_peaks_cpu(y, _thresholds(y), int(0.25 * fs), 48, 80)
    same = rows[1:] == rows[:-1]
    return float(60.0 / ((cols[1:] - cols[:-1])[same] / fs).mean())


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    a, b = simulate(SMALL), simulate(SMALL)
    assert a.dtype == np.float32 and a.shape == (3, 1, 7500)
    assert a.tobytes() == b.tobytes()
    c = simulate(replace(SMALL, seed=8))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [55.0, 75.0, 100.0])
def test_detected_heart_rate_is_the_requested_one(rate: float) -> None:
    signals = simulate(replace(SMALL, heart_rate=rate))
    assert abs(_detected_heart_rate(signals, SMALL.fs) - rate) < 2.5


def test_amplitudes_are_millivolts_of_an_ecg() -> None:
    x = simulate(SMALL)[:, 0, :]
    # scaled to -0.4..1.2 mV before noise: R peaks near 1.2 mV, the baseline near 0
    assert np.all(np.abs(x.max(axis=1) - 1.2) < 0.15)
    assert np.all(np.abs(x.min(axis=1) + 0.4) < 0.15)
    assert abs(float(np.median(x))) < 0.3


def test_rr_tachogram_has_the_requested_mean_and_spread() -> None:
    rng = np.random.default_rng(0)
    rr = rr_tachogram(rng, 1024, hr_mean=60.0, hr_std=2.0)
    assert rr.mean() == pytest.approx(1.0, abs=1e-9)
    assert rr.std() == pytest.approx(60.0 * 2.0 / 60.0 ** 2, rel=1e-6)
    spectrum = np.abs(np.fft.rfft(rr - rr.mean())) ** 2
    f = np.fft.rfftfreq(1024, 1.0)
    lf = spectrum[(f > 0.05) & (f < 0.15)].sum()
    hf = spectrum[(f > 0.2) & (f < 0.3)].sum()
    assert 0.2 < lf / hf < 1.2   # the paper's LF/HF ratio 0.5 (Mayer wave vs RSA)


def test_parquet_cache_is_written_once(tmp_path) -> None:
    import pyarrow.parquet as pq

    path = cached_parquet(SMALL, tmp_path)
    stamp = path.stat().st_mtime_ns
    assert cached_parquet(SMALL, tmp_path) == path and path.stat().st_mtime_ns == stamp
    table = pq.read_table(path)
    assert table.column_names == ["record", "lead", "time", "value"]
    assert table.num_rows == 3 * 7500
    assert np.array_equal(table["value"].to_numpy().reshape(3, 1, -1), simulate(SMALL))
