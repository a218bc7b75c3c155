"""Synthetic electrocardiograms: McSharry's ECGSYN dynamical model, seeded and deterministic.

The model is the one of P. E. McSharry, G. D. Clifford, L. Tarassenko and L. A. Smith,
"A dynamical model for generating synthetic electrocardiogram signals", IEEE Transactions
on Biomedical Engineering 50(3):289-294, 2003 (ECGSYN). A point (x, y, z) circles the
unit limit cycle of the (x, y) plane once per beat; each of the P, Q, R, S and T waves is
a Gaussian attractor/repeller at a fixed angle theta_i on that circle that pushes z up or
down as the point passes it:

    dx/dt = a x - w y          a = 1 - sqrt(x^2 + y^2),  w = 2 pi / RR(t)
    dy/dt = a y + w x
    dz/dt = -sum_i a_i dtheta_i exp(-dtheta_i^2 / (2 b_i^2)) - (z - z0(t))

with dtheta_i = (theta - theta_i) wrapped to [-pi, pi], theta = atan2(y, x), and a
respiratory baseline z0(t) = A sin(2 pi f_resp t). The beat-to-beat RR intervals come
from the paper's tachogram: a random process whose power spectrum is the sum of two
Gaussians, the Mayer wave (f1 = 0.1 Hz) and respiratory sinus arrhythmia (f2 = 0.25 Hz),
with LF/HF ratio 0.5, scaled to the requested mean and standard deviation of the heart
rate. Wave widths and angles scale with sqrt(heart rate / 60) as the paper prescribes.
z is integrated with a fixed-step fourth-order Runge-Kutta scheme at ``2 * fs`` (a Numba
kernel, one record per thread), then sampled at ``fs`` and scaled to -0.4..1.2 mV; white
measurement noise is added last.

Everything is drawn from ``numpy.random.default_rng((seed, record))``: the same arguments
give the same samples, bit for bit, on any machine with the same NumPy and Numba. A
fraction of records (``abnormal``) get a wide QRS complex and an inverted T wave, so the
downstream clustering has something to find.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numba  # noqa: TID253 (the synthesiser's kernel: this module is loaded by the demo only)
import numpy as np

__all__ = ["EcgParams", "cache_dir", "cached_parquet", "rr_tachogram", "simulate", "write_parquet"]

# The paper's Table 1: angle (degrees), amplitude a_i and width b_i of P, Q, R, S, T.
THETA_DEG = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])
A_WAVE = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
B_WAVE = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
LEAD_GAIN = (1.0, 0.6, -0.4, 0.8)  # extra leads: scaled projections of the one trajectory
LEAD_NAMES = ("II", "I", "aVR", "V5")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EcgParams:
    records: int = 64
    minutes: float = 5.0
    fs: int = 250
    leads: int = 1
    heart_rate: float = 70.0     # mean over records, beats per minute
    hr_spread: float = 10.0      # records draw their mean heart rate from heart_rate +- spread
    hr_std: float = 1.0          # beat-to-beat standard deviation of the heart rate (bpm)
    lf_hf: float = 0.5
    noise_mv: float = 0.02
    abnormal: float = 0.1        # fraction of records with wide QRS and inverted T
    seed: int = 0

    @property
    def samples(self) -> int:
        return round(self.minutes * 60 * self.fs)


def rr_tachogram(rng: np.random.Generator, n: int, hr_mean: float, hr_std: float, *,
                 lf_hf: float = 0.5, f1: float = 0.1, f2: float = 0.25, c1: float = 0.01,
                 c2: float = 0.01, fs: float = 1.0) -> np.ndarray:
    """``n`` RR intervals (seconds) sampled at ``fs`` Hz with the paper's bimodal spectrum."""
    f = np.fft.rfftfreq(n, d=1.0 / fs)
    power = (lf_hf * np.exp(-0.5 * ((f - f1) / c1) ** 2) / math.sqrt(2 * math.pi * c1 ** 2)
             + np.exp(-0.5 * ((f - f2) / c2) ** 2) / math.sqrt(2 * math.pi * c2 ** 2))
    phase = rng.uniform(0.0, 2 * math.pi, f.size)
    phase[0] = 0.0
    x = np.fft.irfft(np.sqrt(power) * np.exp(1j * phase), n)
    rr_mean = 60.0 / hr_mean
    rr_std = 60.0 * hr_std / hr_mean ** 2
    return rr_mean + (x - x.mean()) * (rr_std / (x.std() or 1.0))


def _beat_omegas(rr_1hz: np.ndarray, n_steps: int, dt: float) -> np.ndarray:
    """Angular speed per integration step: each beat keeps the RR it starts with."""
    t_rr = np.arange(rr_1hz.size, dtype=np.float64)
    t = np.arange(n_steps) * dt
    rr = np.interp(t, t_rr, rr_1hz)
    omega = np.empty(n_steps)
    start = 0
    while start < n_steps:
        stop = min(n_steps, start + max(1, round(rr[start] / dt)))
        omega[start:stop] = 2 * math.pi / rr[start]
        start = stop
    return omega


@numba.njit(cache=True)
def _derivs(x: float, y: float, z: float, t: float, w: float, theta: np.ndarray, a: np.ndarray,
            b: np.ndarray, resp_amp: float, resp_f: float) -> tuple[float, float, float]:
    two_pi = 2.0 * math.pi
    alpha = 1.0 - math.sqrt(x * x + y * y)
    ang = math.atan2(y, x)
    dz = 0.0
    for i in range(5):
        d = ang - theta[i]
        d -= two_pi * math.floor((d + math.pi) / two_pi)
        dz -= a[i] * d * math.exp(-0.5 * (d / b[i]) ** 2)
    dz -= z - resp_amp * math.sin(two_pi * resp_f * t)
    return alpha * x - w * y, alpha * y + w * x, dz


@numba.njit(cache=True, nogil=True)
def _integrate(omega: np.ndarray, theta: np.ndarray, a: np.ndarray, b: np.ndarray, resp_amp: float,
               resp_f: float, dt: float, stride: int, out: np.ndarray) -> None:
    """Fixed-step RK4 over one record; ``out`` receives z every ``stride`` steps."""
    x, y, z = -1.0, 0.0, 0.0   # on the limit cycle, half a beat before R
    k = 0
    for step in range(out.shape[0] * stride):
        if step % stride == 0:
            out[k] = z
            k += 1
        t = step * dt
        w = omega[step]
        h = 0.5 * dt
        x1, y1, z1 = _derivs(x, y, z, t, w, theta, a, b, resp_amp, resp_f)
        x2, y2, z2 = _derivs(x + h * x1, y + h * y1, z + h * z1, t + h, w, theta, a, b, resp_amp, resp_f)
        x3, y3, z3 = _derivs(x + h * x2, y + h * y2, z + h * z2, t + h, w, theta, a, b, resp_amp, resp_f)
        x4, y4, z4 = _derivs(x + dt * x3, y + dt * y3, z + dt * z3, t + dt, w, theta, a, b,
                             resp_amp, resp_f)
        x += dt / 6.0 * (x1 + 2.0 * x2 + 2.0 * x3 + x4)
        y += dt / 6.0 * (y1 + 2.0 * y2 + 2.0 * y3 + y4)
        z += dt / 6.0 * (z1 + 2.0 * z2 + 2.0 * z3 + z4)


def _record(params: EcgParams, record: int) -> np.ndarray:
    """(leads, samples) float32 millivolts of one record."""
    rng = np.random.default_rng((params.seed, record))
    hr = params.heart_rate + rng.uniform(-params.hr_spread, params.hr_spread)
    abnormal = rng.random() < params.abnormal
    fs_int = 2 * params.fs
    n_out = params.samples
    n_steps = n_out * 2
    dt = 1.0 / fs_int
    seconds = n_steps * dt
    n_rr = 1 << max(8, math.ceil(math.log2(seconds + 2)))
    rr = rr_tachogram(rng, n_rr, hr, params.hr_std, lf_hf=params.lf_hf)
    omega = _beat_omegas(rr, n_steps, dt)
    scale = math.sqrt(hr / 60.0)
    theta = np.radians(THETA_DEG) * np.array([math.sqrt(scale), scale, 1.0, scale, math.sqrt(scale)])
    widths = B_WAVE * scale
    amps = A_WAVE * (1.0 + rng.normal(0.0, 0.05, 5))
    if abnormal:
        widths = widths * np.array([1.0, 2.2, 2.2, 2.2, 1.0])
        amps = amps * np.array([1.0, 0.6, 0.55, 0.6, -1.5])
    z = np.empty(n_out)
    _integrate(omega, theta, amps, widths, 0.005, 0.25, dt, 2, z)
    lo, hi = z.min(), z.max()
    mv = -0.4 + (z - lo) * (1.6 / ((hi - lo) or 1.0))
    leads = np.empty((params.leads, n_out), np.float32)
    for lead in range(params.leads):
        gain = LEAD_GAIN[lead % len(LEAD_GAIN)]
        leads[lead] = gain * mv + rng.normal(0.0, params.noise_mv, n_out)
    return leads


def simulate(params: EcgParams) -> np.ndarray:
    """All records as a ``(records, leads, samples)`` float32 array (millivolts)."""
    out = np.empty((params.records, params.leads, params.samples), np.float32)

    def fill(record: int) -> None:
        out[record] = _record(params, record)
    # The integrator releases the GIL: one record per core. Each record has its own
    # random stream, so the result does not depend on the order or the thread count.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fill, range(params.records)))
    return out


def write_parquet(path: str | Path, signals: np.ndarray, fs: float, *,
                  lead_names: tuple[str, ...] = LEAD_NAMES) -> Path:
    """Write ``(records, leads, samples)`` as the long table record, lead, time, value."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records, leads, samples = signals.shape
    n = records * leads * samples
    table = pa.table({
        "record": np.repeat(np.arange(records, dtype=np.int32), leads * samples),
        "lead": np.tile(np.repeat(np.arange(leads, dtype=np.int8), samples), records),
        "time": np.tile((np.arange(samples, dtype=np.float64) / fs).astype(np.float32), records * leads),
        "value": signals.reshape(n),
    })
    meta = {"zerocopy.demo": str({"records": records, "leads": leads, "samples": samples,
                                  "fs": fs, "lead_names": list(lead_names[:leads])})}
    table = table.replace_schema_metadata(meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=1 << 22, compression="snappy")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return path


def cache_dir() -> Path:
    root = os.environ.get("ZEROCOPY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "zerocopy")
    return Path(root) / "demo"


def cached_parquet(params: EcgParams, cache: str | Path | None = None) -> Path:
    """The Parquet file of these parameters, generated once into the cache folder."""
    folder = Path(cache) if cache is not None else cache_dir()
    key = "-".join(f"{k}{v}" for k, v in asdict(params).items())
    path = folder / f"ecgsyn-v{FORMAT_VERSION}-{key}.parquet"
    if not path.exists():
        write_parquet(path, simulate(params), params.fs)
    return path
