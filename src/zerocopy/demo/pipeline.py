"""One run of the ECG pipeline in one way (``naive`` or ``zerocopy``) on one device.

Stages: load (Parquet -> pandas, cuDF on a GPU) -> filter (FFT band-pass: JAX on the CPU,
CuPy on a GPU) -> peaks (Numba kernel) -> beats (Numba kernel writes beat records, the
layout engine makes the beats x window matrix and the beats table) -> train (PyTorch 1-D
convolutional autoencoder) -> score (JAX k-means on the latents, anomaly scores;
TensorFlow classifier where asked) -> table (join, pandas/cuDF) -> write (Parquet).

``run()`` is meant to run in a fresh process per way (``python -m zerocopy.demo.worker``):
peak memory is then the way's own. Results are written to ``<work>/<mode>.npz`` so the
parent can compare the ways bit for bit.
"""

from __future__ import annotations

import ast
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import zerocopy
import zerocopy.memory as zm
from zerocopy.demo.kernels import (
    beat_dtype,
    cut_beats_cpu,
    cut_beats_gpu,
    find_peaks_cpu,
    find_peaks_gpu,
    record_views,
)
from zerocopy.demo.ledger import Clock, Ledger, array_digest
from zerocopy.demo.ways import WAYS
from zerocopy.errors import LayoutError, message

__all__ = ["Config", "Records", "record_stages", "run", "warm_up_records"]


@dataclass
class Config:
    data: str
    work: str
    device: str = "cpu"
    epochs: int = 2
    width: int = 128             # samples per beat window
    train_beats: int = 16384     # beats the autoencoder trains on (a fixed, evenly spread subset)
    batch: int = 512
    latent: int = 8
    clusters: int = 4
    tensorflow: bool = False
    threads: int = 2
    seed: int = 0
    cluster: str = ""            # "local" or "local:N": stages 1-4 on a local Dask cluster
    scheduler: str = ""          # or on the workers of the Dask scheduler at this address
    partitions: int = 0          # record partitions on the cluster (0: two per worker)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the stages

def shape_of(path: str) -> dict[str, Any] | None:
    """records/leads/samples/fs from the embedded generator's Parquet metadata."""
    if not path.endswith(".parquet"):
        return None
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    text = meta.get(b"zerocopy.demo")
    return ast.literal_eval(text.decode()) if text else None


def read_table(path: str, gpu: bool, records: list[int] | None = None) -> Any:
    """The whole table, or the rows of ``records`` (a Parquet file's, read with a filter)."""
    filters = None if records is None else [("record", "in", records)]
    if gpu:
        try:
            import cudf

            if path.endswith(".parquet"):
                return cudf.read_parquet(path, filters=filters)
            return cudf.read_csv(path)
        except ImportError:
            pass
    import pandas as pd

    return pd.read_parquet(path, filters=filters) if path.endswith(".parquet") else pd.read_csv(path)


def checked_layout(df: Any, shape: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Check (or make) the long table sorted by record, lead, time with equal-length
    records; return it and its shape."""
    missing = {"record", "lead", "time", "value"} - set(df.columns)
    if missing:
        raise LayoutError(message("the signal table lacks columns", expected="record, lead, time, value",
                                  got=", ".join(map(str, df.columns)),
                                  hint="rename the columns of your CSV/Parquet file"))
    if shape is not None:
        return df, shape
    if str(df["value"].dtype) != "float32":   # CSV floats are float64: one explicit cast, both ways
        df = df.assign(value=df["value"].astype("float32"))
    for name in ("record", "lead"):   # names (strings) become codes, in sorted order
        if df[name].dtype.kind not in "iu":
            df = df.assign(**{name: df[name].astype("category").cat.codes.astype("int32")})
    df = df.sort_values(["record", "lead", "time"], ignore_index=True)
    sizes = df.groupby(["record", "lead"]).size()
    if len(set(sizes.to_numpy().tolist())) != 1:
        raise LayoutError(message("records differ in length", expected="one length for every (record, lead)",
                                  got=f"lengths {sorted(set(sizes.to_numpy().tolist()))[:5]}",
                                  hint="cut the recordings to a common length first"))
    t = np.asarray(df["time"].to_numpy()[:2], dtype=np.float64)
    fs = round(1.0 / float(t[1] - t[0]))
    leads = int(df["lead"].nunique())
    records = sizes.index.get_level_values(0).unique()
    return df, {"records": len(records), "leads": leads, "samples": int(sizes.iloc[0]),
                "fs": fs, "lead_names": [str(x) for x in range(leads)],
                "record_ids": [int(r) for r in records]}


def _bandpass_mask(n: int, fs: float, lo: float = 0.5, hi: float = 40.0) -> np.ndarray:
    """Frequency response: a raised-cosine band-pass (lo..hi Hz, 0.5 and 10 Hz skirts)."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    up = np.clip((f - lo / 2) / (lo / 2), 0, 1)
    down = np.clip((hi + 10 - f) / 10, 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * up * down)).astype(np.float32)


_JAX_FILTER = None


def _filter_jax(x: Any, mask: np.ndarray) -> Any:
    global _JAX_FILTER  # noqa: PLW0603 (compiled once per process)
    import jax
    import jax.numpy as jnp

    if _JAX_FILTER is None:
        @jax.jit
        def bandpass(x: Any, mask: Any) -> Any:
            return jnp.fft.irfft(jnp.fft.rfft(x, axis=1) * mask, n=x.shape[1], axis=1)
        _JAX_FILTER = bandpass
    return _JAX_FILTER(x, jnp.asarray(mask)).block_until_ready()


def _filter_cupy(x: Any, mask: np.ndarray) -> Any:
    import cupy

    spec = cupy.fft.rfft(x, axis=1)
    spec *= cupy.asarray(mask)
    return cupy.fft.irfft(spec, n=x.shape[1], axis=1).astype(cupy.float32, copy=False)


def _thresholds(y: Any) -> Any:
    """Per record: mean + 2.5 standard deviations of the filtered signal."""
    return (y.mean(axis=1) + 2.5 * y.std(axis=1)).astype(np.float32)


# --------------------------------------------------------------------- the autoencoder

def _model(width: int, latent: int) -> Any:
    import torch
    from torch import nn

    class AutoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv1d(1, 8, 7, stride=2, padding=3), nn.ReLU(),
                nn.Conv1d(8, 16, 5, stride=2, padding=2), nn.ReLU(),
                nn.Flatten(), nn.Linear(16 * (width // 4), latent))
            self.decoder = nn.Sequential(
                nn.Linear(latent, 16 * (width // 4)), nn.ReLU(), nn.Unflatten(1, (16, width // 4)),
                nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose1d(8, 1, 4, stride=2, padding=1))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.encoder(x)
            return z, self.decoder(z)

    return AutoEncoder()


def _train(x: Any, cfg: Config, device: str, progress: Any) -> tuple[Any, list[float]]:
    import torch

    torch.manual_seed(cfg.seed)
    model = _model(cfg.width, cfg.latent).to(device)
    n = x.shape[0]
    pick = torch.from_numpy(np.linspace(0, n - 1, min(n, cfg.train_beats)).astype(np.int64)).to(device)
    train = x[pick].reshape(-1, 1, cfg.width)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(train), generator=gen).to(device)
        total = 0.0
        for start in range(0, len(train), cfg.batch):
            xb = train[order[start:start + cfg.batch]]
            _, rec = model(xb)
            loss = torch.mean((rec - xb) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        losses.append(total / len(train))
        progress(f"epoch {epoch + 1}/{cfg.epochs}: loss {losses[-1]:.5f}")
    return model, losses


def _encode(model: Any, x: Any, cfg: Config, store: Any) -> tuple[Any, Any, Any]:
    """Latents and reconstruction errors of every beat; writes into ``store`` (a column
    block, zerocopy way) or concatenates the batches (naive way)."""
    import torch

    n, chunk = x.shape[0], 8192
    if store is not None:
        z_out, err_out = store[0].tensor("torch"), store[1].tensor("torch")[:, 0]
    zs, errs = [], []
    with torch.no_grad():
        for start in range(0, n, chunk):
            xb = x[start:start + chunk].reshape(-1, 1, cfg.width)
            z, rec = model(xb)
            err = torch.mean((rec - xb) ** 2, dim=(1, 2))
            if store is not None:
                z_out[start:start + len(xb)] = z
                err_out[start:start + len(xb)] = err
            else:
                zs.append(z)
                errs.append(err)
    if store is not None:
        return store, z_out, err_out
    z = torch.cat(zs)
    return z, z, torch.cat(errs)


_JAX_KMEANS = None


def _kmeans(z: Any, err: Any, k: int) -> tuple[Any, Any]:
    """JAX k-means (20 Lloyd steps from evenly spread beats) and an anomaly score per beat:
    distance to the own centroid plus the standardised reconstruction error."""
    global _JAX_KMEANS  # noqa: PLW0603 (compiled once per process)
    import jax
    import jax.numpy as jnp

    if _JAX_KMEANS is None:
        @jax.jit
        def kmeans(z: Any, err: Any, init: Any) -> Any:
            def assign(c: Any) -> Any:
                d = jnp.sum((z[:, None, :] - c[None, :, :]) ** 2, axis=2)
                return jnp.argmin(d, axis=1), d

            def step(_: Any, c: Any) -> Any:
                labels, _ = assign(c)
                onehot = jax.nn.one_hot(labels, c.shape[0], dtype=z.dtype)
                counts = onehot.sum(axis=0)[:, None]
                return jnp.where(counts > 0, (onehot.T @ z) / jnp.maximum(counts, 1), c)

            c = jax.lax.fori_loop(0, 20, step, z[init])
            labels, d = assign(c)
            own = jnp.sqrt(jnp.take_along_axis(d, labels[:, None], axis=1)[:, 0])
            score = own / jnp.mean(own) + (err - jnp.mean(err)) / jnp.std(err)
            return labels.astype(jnp.int32), score
        _JAX_KMEANS = kmeans
    init = np.linspace(0, z.shape[0] - 1, k).astype(np.int32)
    labels, score = _JAX_KMEANS(z, err, init)
    return labels.block_until_ready(), score.block_until_ready()


def _classify_tf(z: Any, labels: Any, k: int) -> float:
    """A tiny TensorFlow softmax classifier (latents -> cluster id); training accuracy."""
    import tensorflow as tf

    tf.random.set_seed(0)
    y = tf.cast(labels, tf.int32)
    w = tf.Variable(tf.zeros((z.shape[1], k)))
    b = tf.Variable(tf.zeros((k,)))
    for _ in range(100):
        with tf.GradientTape() as tape:
            logits = tf.matmul(z, w) + b
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        gw, gb = tape.gradient(loss, [w, b])
        w.assign_sub(0.5 * gw)
        b.assign_sub(0.5 * gb)
    pred = tf.argmax(tf.matmul(z, w) + b, axis=1, output_type=tf.int32)
    return float(tf.reduce_mean(tf.cast(pred == y, tf.float32)))


# ------------------------------------------------------------------------------ run

@dataclass
class Records:
    """What the record-level stages (load, filter, peaks, beats) give the rest of the run."""

    window: Any        # beats x window matrix
    beats: Any         # beats table: record, peak, rr, amp
    peak_rows: Any     # signal row of each beat (record index x leads + lead, over the whole set)
    peak_cols: Any
    filtered: np.ndarray   # the first 10 s of every filtered signal (the report's picture)
    rows: int
    samples: int
    fs: float


def record_stages(way: Any, clock: Clock, cfg: Config, progress: Any = print,
                  part: tuple[int, int] | None = None) -> Records:
    """Stages 1-4 over every record, or over ``part`` = (first record, count): each record
    is filtered, searched and cut on its own, so a partition of records gives exactly its
    share of the whole run's results (the demo's cluster mode runs one task per partition)."""
    gpu = cfg.device == "cuda"
    sync = device_sync(gpu)
    with clock.stage("load", sync):
        df, shape = _load(cfg.data, gpu, part)
        rows, samples, fs = shape["records"] * shape["leads"], shape["samples"], float(shape["fs"])
        values = way.column(df, "value")
        signal = values.reshape(rows, samples)
        ids = shape.get("record_ids", range(shape["records"]))
        record_of_row = np.repeat(np.asarray(ids, dtype=np.int32), shape["leads"])
    progress(f"loaded {rows} signals x {samples} samples at {fs:g} Hz ({signal.nbytes / 2**20:.0f} MiB)")

    pre = cfg.width * 3 // 8
    half = int(0.25 * fs)
    mask = _bandpass_mask(samples, fs)
    with clock.stage("filter", sync):
        if gpu:
            y = _filter_cupy(signal, mask)
        else:
            y = way.from_jax(_filter_jax(way.to_jax(signal, "signal"), mask), "filtered")

    with clock.stage("peaks", sync):
        if gpu:
            import cupy

            thr = _thresholds(y)
            y_kernel = way.to_numba(y, "filtered")
            peak_rows, peak_cols = find_peaks_gpu(y_kernel, thr, half, pre, cfg.width - pre)
        else:
            thr = _thresholds(y)
            peak_rows, peak_cols = find_peaks_cpu(y, thr, half, pre, cfg.width - pre)
    n = len(peak_rows)
    progress(f"{n} R-peaks")

    with clock.stage("beats", sync):
        store, views = way.beat_store(n, cfg.width)
        if gpu:
            cut_beats_gpu(y_kernel, peak_rows, peak_cols, cupy.asarray(record_of_row), pre, fs, views)
        else:
            cut_beats_cpu(y, peak_rows, peak_cols, record_of_row, pre, fs, views)
        window, beats = way.beats(store, cfg.width)
    head = np.ascontiguousarray(to_host(y[:, : min(samples, int(10 * fs))]))
    return Records(window, beats, peak_rows, peak_cols, head, rows, samples, fs)


def _load(path: str, gpu: bool, part: tuple[int, int] | None) -> tuple[Any, dict[str, Any]]:
    """The signal table (all records, or the ``part`` = (first, count) records) and its shape."""
    shape = shape_of(path)
    if part is None:
        return checked_layout(read_table(path, gpu), shape)
    if shape is None:
        raise LayoutError(message("a record partition needs the demo's Parquet layout", got=path,
                                  hint="zerocopy demo --cluster normalises --data files first"))
    first, count = part
    ids = list(shape.get("record_ids", range(shape["records"])))[first:first + count]
    df = read_table(path, gpu, records=ids)
    return df, {**shape, "records": count, "record_ids": ids}


def run(mode: str, cfg: Config, progress: Any = print) -> dict[str, Any]:
    gpu = cfg.device == "cuda"
    ledger = Ledger(mode)
    clock = Clock(ledger, **device_probes(gpu, mode))
    way = WAYS[mode](ledger, gpu)
    import torch

    # On a GPU a few kernels have no deterministic variant: warn there instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=gpu)
    torch.set_num_threads(cfg.threads)
    sync = device_sync(gpu)
    out: dict[str, Any] = {}
    rec, out["cluster"] = _records(mode, cfg, way, clock, progress)
    window, beats, peak_rows, peak_cols = rec.window, rec.beats, rec.peak_rows, rec.peak_cols
    rows, samples, fs, n = rec.rows, rec.samples, rec.fs, len(rec.peak_rows)

    tdev = "cuda" if gpu else "cpu"
    names = [f"z{i}" for i in range(cfg.latent)]
    with clock.stage("train", sync):
        x = way.to_torch(window, "X")
        model, losses = _train(x, cfg, tdev, progress)
        store = way.latent_store(n, names, tdev)
        latents, z, err = _encode(model, x, cfg, store)

    with clock.stage("score", sync):
        zj = way.torch_to_jax(z, "z")
        ej = way.torch_to_jax(err, "err")
        labels, score = _kmeans(zj, ej, cfg.clusters)
        accuracy = None
        if cfg.tensorflow:
            # TF gets the latents from torch: a JAX array imported from the F-order column
            # block exports F strides through DLPack, which TensorFlow refuses (zerocopy
            # plans it as C-order; see the demo's report on issue 9).
            accuracy = _classify_tf(way.to_tensorflow(z, "z"), way.to_tensorflow(labels, "labels"),
                                    cfg.clusters)
        labels_out = way.from_jax(labels, "labels")
        score_out = way.from_jax(score, "score")

    with clock.stage("table", sync):
        table = way.table(beats, latents, err, names, {"cluster": labels_out, "score": score_out})

    with clock.stage("write", sync):
        result_path = Path(cfg.work) / f"beats-{mode}.parquet"
        table.to_parquet(result_path)
    clock.close()

    results: dict[str, Any] = {key: to_host(value) for key, value in (
        ("peak_rows", peak_rows), ("peak_cols", peak_cols), ("window", window), ("z", z), ("err", err),
        ("labels", labels_out), ("score", score_out))}
    np.savez(Path(cfg.work) / f"{mode}.npz", filtered=rec.filtered, **results,
             examples=_examples(model, results["window"], cfg))
    out.update(
        mode=mode, device=cfg.device, rows=rows, samples=samples, fs=fs, beats=n,
        heart_rate=_heart_rate(results["peak_rows"], results["peak_cols"], fs),
        digests={key: array_digest(value) for key, value in results.items()},
        losses=losses, tf_accuracy=accuracy, result=str(result_path),
        stages=[s.to_dict() for s in clock.stages], handoffs=[h.to_dict() for h in ledger.entries],
        peak_host_bytes=Clock.max_rss(), peak_device_bytes=_device_peak(clock))
    return out


def _records(mode: str, cfg: Config, way: Any, clock: Clock,
             progress: Any) -> tuple[Records, dict[str, Any] | None]:
    """Start-up and stages 1-4: here, or per record partition on a Dask cluster
    (``cfg.cluster`` / ``cfg.scheduler``; then also what ran where)."""
    sync = device_sync(cfg.device == "cuda")
    if not (cfg.cluster or cfg.scheduler):
        with clock.stage("startup", sync):
            _warm_up(cfg)
        return record_stages(way, clock, cfg, progress), None
    from zerocopy.demo.cluster import Workers  # noqa: PLC0415 (cluster.py builds on this module)

    with clock.stage("startup", sync):   # the cluster's start counts as start-up too
        _warm_up(cfg)
        workers = Workers.open(mode, cfg, progress)
    try:
        return workers.record_stages(way, clock, progress), workers.info
    finally:
        workers.close()


def _warm_up(cfg: Config) -> None:
    """Start every framework and load every kernel once, the same in both ways, so that
    the stages time the pipeline and not one-time runtime start-up."""
    import torch

    tiny = warm_up_records()
    for obj, target in ((tiny, "torch"), (torch.from_numpy(tiny), "jax")):
        zerocopy.to(obj, target)
    torch.tensor(tiny)
    model = _model(16, 2)
    model(torch.from_numpy(tiny[:, :16]).reshape(4, 1, 16))[1].sum().backward()
    if cfg.tensorflow:
        import tensorflow as tf

        tf.convert_to_tensor(tiny)


def warm_up_records() -> np.ndarray:
    """What the record-level stages start (JAX, pandas, the CPU kernels, the hand-offs);
    the cluster mode runs it on every worker. Returns the tiny signal it used."""
    import jax.numpy as jnp
    import pandas as pd

    tiny = zerocopy.empty((4, 256), np.float32)
    tiny[:] = np.sin(np.arange(256, dtype=np.float32))
    frozen = tiny.copy()
    frozen.flags.writeable = False   # NumPy views of JAX and pandas data are read-only
    for signal in (tiny, frozen):
        rows, cols = find_peaks_cpu(signal, np.zeros(4, np.float32), 2, 8, 8)
        n = len(rows)
        records = record_views(np.empty(n * beat_dtype(16).itemsize, np.uint8), n, 16)
        columns = {name: np.empty_like(view) for name, view in records.items()}
        for out in (records, columns):   # strided record fields and contiguous columns
            cut_beats_cpu(signal, rows, cols, np.arange(4, dtype=np.int32), 8, 250.0, out)
    j = jnp.asarray(tiny)
    for obj, target in ((tiny, "jax"), (j, "numpy"), (pd.Series(tiny[0]), "numpy"), (tiny[0], "pandas")):
        zerocopy.to(obj, target)
    np.asarray(j)
    return tiny


def to_host(a: Any) -> np.ndarray:
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _examples(model: Any, window: np.ndarray, cfg: Config) -> np.ndarray:
    """Six beats and their reconstructions (for the report's picture)."""
    import torch

    pick = np.linspace(0, len(window) - 1, 6).astype(np.int64)
    x = torch.from_numpy(np.ascontiguousarray(window[pick])).reshape(-1, 1, cfg.width)
    with torch.no_grad():
        _, rec = model.cpu()(x)
    return np.stack([x[:, 0].numpy(), rec[:, 0].numpy()])


def _heart_rate(rows: np.ndarray, cols: np.ndarray, fs: float) -> float:
    """Mean heart rate (bpm) from the R-R intervals inside each record."""
    same = rows[1:] == rows[:-1]
    rr = (cols[1:] - cols[:-1])[same] / fs
    return float(60.0 / rr.mean()) if rr.size else math.nan


def device_sync(gpu: bool) -> Any:
    if not gpu:
        return None

    def sync() -> None:
        import cupy

        cupy.cuda.runtime.deviceSynchronize()
    return sync


def device_probes(gpu: bool, mode: str) -> dict[str, Any]:
    if not gpu:
        return {}
    import cupy

    def used() -> int:
        free, total = cupy.cuda.runtime.memGetInfo()
        return int(total - free)

    def frameworks() -> dict[str, int]:
        if mode == "zerocopy":
            rep = zm.report()
            return {f.framework: int(f.current_bytes) for f in rep.frameworks}
        return _naive_framework_memory()
    return {"device_used": used, "framework_memory": frameworks}


def _naive_framework_memory() -> dict[str, int]:
    """Each framework's own pool, as it reports it (naive way: one pool per framework)."""
    usage: dict[str, int] = {}
    if "cupy" in sys.modules:
        import cupy

        usage["cupy"] = int(cupy.get_default_memory_pool().total_bytes())
    if "torch" in sys.modules:
        import torch

        usage["torch"] = int(torch.cuda.memory_reserved()) if torch.cuda.is_initialized() else 0
    if "jax" in sys.modules:
        try:
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            held = stats.get("pool_bytes", stats.get("bytes_reserved", stats.get("bytes_in_use", 0)))
            usage["jax"] = int(held)
        except Exception:  # a report must not fail the run
            pass
    return usage


def _device_peak(clock: Clock) -> int | None:
    peaks = [s.peak_device_bytes for s in clock.stages if s.peak_device_bytes is not None]
    return max(peaks) if peaks else None
