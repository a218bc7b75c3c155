"""``zerocopy bench layout``: records <-> columns and tables <-> tensors, against memcpy.

CPU (always): for each case, in one run, side by side: memcpy of the same bytes
(``np.copyto`` into a prefaulted buffer, and a fresh ``.copy()``), our call into
prefaulted buffers (``out=``) and with fresh outputs, and the frameworks' own one-liners.
Ratios are to the prefaulted memcpy; fresh-allocation figures are also shown against the
fresh memcpy, because page faults, not copying, bound any call that allocates.
Cases: AoS -> SoA and SoA -> AoS for 4 x float32 (16 B), a mixed record (int64, float32,
float32, int8, bool) packed (18 B) and aligned (24 B); table -> C-order tensor and
C-order tensor -> table for 8 float32 columns; host overhead: each call with ``out=`` on
64 records of 2, 8 and 32 fields, microseconds per call (best and median of interleaved
rounds; the work itself is well under a microsecond).

GPU (``--gpu``): (N, k) float32 for k = 2, 3, 4, 8, 16, 32 and the mixed record packed and
aligned, both directions: our kernel and our API call against the device-to-device copy,
next to CuPy ``a.T.copy()`` and torch ``.t().contiguous()``.

Bytes, CPU and GPU alike: every row counts the bytes it must read plus the bytes it must
write, each once: a copy of B bytes moves 2 B; records <-> columns moves the record bytes
plus the column bytes (less than twice the records when the record has padding: the
aligned mixed record is 24 B, its fields 18 B, so 42 B per record, not 48).

Nothing here imports a framework at module level.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.lib.recfunctions as rfn

from zerocopy import registry
from zerocopy.layout import (
    RecordLayout,
    _gpu,
    column_block,
    record_layout,
    stack,
    to_columns,
    to_records,
    unstack,
)

__all__ = ["add_arguments", "main"]

MIXED = [("a", "i8"), ("b", "f4"), ("c", "f4"), ("d", "i1"), ("e", "?")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", action="store_true", help="run the GPU cases (needs CuPy)")
    parser.add_argument("--json", metavar="PATH", help="write all rows to PATH")
    parser.add_argument("--mb", type=int, default=128,
                        help="MiB of records per CPU case (default 128)")
    parser.add_argument("--gpu-mb", type=int, default=1024,
                        help="MiB of records per GPU case (default 1024)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed runs per row (best and median kept)")
    parser.add_argument("--only", metavar="WORDS",
                        help="run only the CPU cases whose label contains one of these "
                             "comma-separated words (4xf32, packed, aligned, table, overhead)")
    parser.add_argument("--threads", type=int, default=None,
                        help="Numba threads for our kernel (default: all cores)")
    parser.add_argument("--no-one-liners", action="store_true",
                        help="skip the frameworks' one-liners (faster)")
    parser.add_argument("--format", choices=("table", "markdown"), default=None,
                        help="tables with a summary first, or markdown for notes "
                             "(default: table on a terminal, markdown in a pipe or a log)")


@dataclass
class Row:
    section: str
    label: str
    seconds: float | None  # best of the timed runs
    nbytes: int  # bytes read + bytes written, each counted once
    kind: str = "other"  # memcpy | memcpy-fresh | ours | ours-fresh | one-liner | error
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    median: float | None = None  # median of the timed runs (this VM is shared: both matter)

    @property
    def gbps(self) -> float | None:
        return self.nbytes / self.seconds / 1e9 if self.seconds else None


# ------------------------------------------------------------------------- timing


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` timed runs after one warm-up run."""
    fn()  # warm-up: JIT compile, first-touch of prefaulted buffers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - start)
        del res
    times.sort()
    return times[0], times[len(times) // 2]


def _row(section: str, label: str, fn: Callable[[], object], nbytes: int, kind: str,
         repeat: int) -> Row:
    try:
        best, median = _best(fn, repeat)
        return Row(section, label, best, nbytes, kind, median=median)
    except Exception as exc:  # a one-liner that cannot do it is a finding, not a crash
        return Row(section, label, None, nbytes, "error", f"{type(exc).__name__}: {exc}"[:90])


# ---------------------------------------------------------------------- CPU cases


def _field_dtypes(dtype: np.dtype) -> dict[str, np.dtype]:
    """name -> dtype of each field of a structured dtype."""
    fields = dtype.fields
    return {name: fields[name][0] for name in dtype.names or ()} if fields else {}


def _records(dtype: np.dtype, nbytes: int) -> np.ndarray:
    n = nbytes // dtype.itemsize
    raw = np.random.default_rng(0).integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    aos = raw.view(dtype)
    for name in dtype.names or ():  # sane values (bools 0/1) so one-liners behave normally
        if aos[name].dtype.kind == "b":
            aos[name] = aos[name].view(np.uint8) & 1
        elif aos[name].dtype.kind == "f":
            aos[name] = np.arange(n) % 1000
    return aos


def _memcpy_rows(section: str, src_bytes: np.ndarray, repeat: int) -> list[Row]:
    dst = np.empty_like(src_bytes)
    dst.fill(1)  # prefault
    return [_row(section, "memcpy: np.copyto(dst, src)  [prefaulted, 1 thread]",
                 lambda: np.copyto(dst, src_bytes), 2 * src_bytes.nbytes, "memcpy", repeat),
            _row(section, "memcpy: src.copy()  [fresh allocation]", src_bytes.copy,
                 2 * src_bytes.nbytes, "memcpy-fresh", repeat)]


def _moved(n: int, dtype: np.dtype) -> int:
    """Bytes a records <-> columns conversion reads plus writes: records + columns."""
    return n * (dtype.itemsize + sum(f.width for f in record_layout(dtype).fields))


def _aos_cases(dtype: np.dtype, label: str, repeat: int, one_liners: bool, nbytes: int) -> list[Row]:
    aos = _records(dtype, nbytes)
    names = list(dtype.names or ())
    size = _moved(len(aos), dtype)
    sec = f"AoS->SoA {label} ({dtype.itemsize} B/rec)"
    block = column_block(len(aos), _field_dtypes(dtype))
    for c in block.column_arrays():
        c.fill(0)
    rows = _memcpy_rows(sec, aos.view(np.uint8), repeat)
    rows += [_row(sec, "ours: to_columns(aos, out=block)  [prefaulted]",
                  lambda: to_columns(aos, out=block), size, "ours", repeat),
             _row(sec, "ours: to_columns(aos)  [fresh]", lambda: to_columns(aos), size,
                  "ours-fresh", repeat)]
    if one_liners:
        rows += _aos_one_liners(sec, aos, names, repeat)
    cols = to_columns(aos)
    sec2 = f"SoA->AoS {label} ({dtype.itemsize} B/rec)"
    out = np.empty(len(aos), dtype)
    out.view(np.uint8).fill(0)
    rows += _memcpy_rows(sec2, aos.view(np.uint8), repeat)
    rows += [_row(sec2, "ours: to_records(cols, dtype=dt, out=buf)  [prefaulted]",
                  lambda: to_records(cols, dtype=dtype, out=out), size, "ours", repeat),
             _row(sec2, "ours: to_records(cols, dtype=dt)  [fresh]",
                  lambda: to_records(cols, dtype=dtype), size, "ours-fresh", repeat)]
    if one_liners:
        rows += _soa_one_liners(sec2, cols, dtype, repeat)
    return rows


def _aos_one_liners(sec: str, aos: np.ndarray, names: list[str], repeat: int) -> list[Row]:
    size = _moved(len(aos), aos.dtype)
    rows = [_row(sec, "[aos[f].copy() for f in names]", lambda: [aos[f].copy() for f in names],
                 size, "one-liner", repeat),
            _row(sec, "rfn.structured_to_unstructured(aos, copy=True)",
                 lambda: rfn.structured_to_unstructured(aos, copy=True), size, "one-liner",
                 repeat)]
    one_liners: list[tuple[str, str, Callable[[Any], object]]] = [
        ("pandas", "pd.DataFrame(aos)", lambda pd: pd.DataFrame(aos)),
        ("polars", "pl.from_numpy(aos)", lambda pl: pl.from_numpy(aos)),
        ("pyarrow", "pa.RecordBatch.from_arrays([pa.array(aos[f]) ...])",
         lambda pa: pa.RecordBatch.from_arrays([pa.array(aos[f]) for f in names], names)),
    ]
    for mod, label, fn in one_liners:
        lib = _maybe(mod)
        if lib is not None:
            rows.append(_row(sec, label, partial(fn, lib), size, "one-liner", repeat))
    if _maybe("pyarrow") is not None:
        rows.append(_row(sec, "ours: to_columns(aos, to='pyarrow')  [fresh]",
                         lambda: to_columns(aos, to="pyarrow"), size, "ours-fresh", repeat))
    return rows


def _soa_one_liners(sec: str, cols: dict[str, np.ndarray], dtype: np.dtype, repeat: int) -> list[Row]:
    n = len(next(iter(cols.values())))
    size = _moved(n, dtype)

    def field_loop() -> np.ndarray:
        out = np.empty(n, dtype)
        for name, col in cols.items():
            out[name] = col
        return out

    rows = [_row(sec, "out = np.empty(n, dt); out[f] = col for each field", field_loop,
                 size, "one-liner", repeat),
            _row(sec, "np.rec.fromarrays(cols, dtype=dt)",
                 lambda: np.rec.fromarrays(list(cols.values()), dtype=dtype), size,
                 "one-liner", repeat)]
    pl = _maybe("polars")
    if pl is not None:
        df = pl.DataFrame(cols)
        rows.append(_row(sec, "polars: df.to_numpy(structured=True)",
                         lambda: df.to_numpy(structured=True), size, "one-liner", repeat))
    return rows


def _table_cases(nbytes: int, repeat: int, one_liners: bool) -> list[Row]:
    k = 8
    n = nbytes // (4 * k)
    a = np.random.default_rng(1).standard_normal((n, k)).astype(np.float32)
    names = [f"c{i}" for i in range(k)]
    cols = {nm: np.ascontiguousarray(a[:, i]) for i, nm in enumerate(names)}
    sec = f"table -> C-order tensor ({n} x {k} float32)"
    out = np.empty((n, k), np.float32)
    out.fill(0)
    rows = _memcpy_rows(sec, a.reshape(-1), repeat)
    tables = _tables(cols)
    for tname, table in tables.items():
        rows.append(_row(sec, f"ours: stack({tname}, out=buf)  [prefaulted]",
                         partial(stack, table, out=out), 2 * a.nbytes, "ours", repeat))
        rows.append(_row(sec, f"ours: stack({tname})  [fresh]", partial(stack, table),
                         2 * a.nbytes, "ours-fresh", repeat))
    if one_liners:
        rows += _table_one_liners(sec, tables, 2 * a.nbytes, repeat)
    sec2 = f"C-order tensor -> table ({n} x {k} float32)"
    rows += _memcpy_rows(sec2, a.reshape(-1), repeat)
    # every host table framework installed here (the registry's: pyarrow, pandas, polars)
    for to in [t for t in registry.names(kind="table", memory="host")
               if _maybe(registry.record(t).import_name) is not None]:
        rows.append(_row(sec2, f"ours: unstack(a, names, to={to!r})  [fresh]",
                         partial(unstack, a, names, to=to), 2 * a.nbytes, "ours-fresh",
                         repeat))
    if one_liners:
        rows += _untable_one_liners(sec2, a, names, repeat)
    return rows


def _tables(cols: dict[str, np.ndarray]) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    if (pa := _maybe("pyarrow")) is not None:
        tables["pyarrow Table"] = pa.table(cols)
    if (pl := _maybe("polars")) is not None:
        tables["polars DataFrame"] = pl.DataFrame(cols)
    if (pd := _maybe("pandas")) is not None:
        tables["pandas DataFrame"] = pd.DataFrame(cols)
    return tables or {"dict of arrays": cols}


def _table_one_liners(sec: str, tables: dict[str, Any], size: int, repeat: int) -> list[Row]:
    rows = []
    lines: dict[str, list[tuple[str, Callable[[Any], object]]]] = {
        "pyarrow Table": [("t.to_tensor(row_major=True).to_numpy()",
                           lambda t: t.to_tensor(row_major=True).to_numpy()),
                          ("np.asarray(t)", np.asarray)],
        "polars DataFrame": [("df.to_numpy(order='c')", lambda d: d.to_numpy(order="c"))],
        "pandas DataFrame": [("np.ascontiguousarray(df.to_numpy())",
                              lambda d: np.ascontiguousarray(d.to_numpy()))]}
    for tname, table in tables.items():
        for label, fn in lines.get(tname, []):
            rows.append(_row(sec, f"{tname}: {label}", partial(fn, table), size,
                             "one-liner", repeat))
    if "polars DataFrame" in tables and _maybe("jax") is not None:
        df = tables["polars DataFrame"]
        rows.append(_row(sec, "polars DataFrame: df.to_jax()",
                         lambda: df.to_jax().block_until_ready(), size, "one-liner", repeat))
    return rows


def _untable_one_liners(sec: str, a: np.ndarray, names: list[str], repeat: int) -> list[Row]:
    rows = []
    if (pd := _maybe("pandas")) is not None:
        rows.append(_row(sec, "pd.DataFrame(a)", lambda: pd.DataFrame(a), 2 * a.nbytes,
                         "one-liner", repeat))
    if (pl := _maybe("polars")) is not None:
        rows.append(_row(sec, "pl.from_numpy(a)", lambda: pl.from_numpy(a), 2 * a.nbytes,
                         "one-liner", repeat))
    if (pa := _maybe("pyarrow")) is not None:
        rows.append(_row(sec, "pa.table({n: a[:, i] ...})",
                         lambda: pa.table({n: a[:, i] for i, n in enumerate(names)}),
                         2 * a.nbytes, "one-liner", repeat))
    return rows


def _overhead_cases(repeat: int) -> list[Row]:
    """Per-call host cost of the layout calls with ``out=`` on 64 records (k = 2, 8, 32)."""
    rows: list[Row] = []
    n = 64
    for k in (2, 8, 32):
        kinds = {"float32": np.dtype([(f"f{i}", "f4") for i in range(k)]),
                 "mixed aligned": np.dtype([(f"f{i}", MIXED[i % 5][1]) for i in range(k)],
                                           align=True)}
        for kind, dt in kinds.items():
            sec = f"host overhead, {k} fields {kind}, {n} records (us per call)"
            aos = np.zeros(n, dt)
            block = column_block(n, _field_dtypes(dt))
            cols = {f: np.zeros(n, d) for f, d in _field_dtypes(dt).items()}
            buf = np.zeros(n, dt)
            calls: dict[str, Callable[[], object]] = {
                "to_columns(aos, out=block)": partial(to_columns, aos, out=block),
                "to_records(block, dtype=dt, out=buf)":
                    partial(to_records, block, dtype=dt, out=buf),
                "to_columns(aos, out=dict of arrays)": partial(to_columns, aos, out=cols),
                "to_records(dict of arrays, dtype=dt, out=buf)":
                    partial(to_records, cols, dtype=dt, out=buf)}
            if kind == "float32":
                t = np.zeros((n, k), np.float32)
                calls["stack(block, out=t)"] = partial(stack, block, out=t)
            times: dict[str, list[float]] = {label: [] for label in calls}
            for fn in calls.values():
                fn()  # plan, compile
            for _ in range(max(5, 2 * repeat)):  # interleaved rounds: the noise hits all alike
                for label, fn in calls.items():
                    times[label].append(min(timeit.repeat(fn, number=200, repeat=2)) / 200)
            for label, ts in times.items():
                ts.sort()
                med = ts[len(ts) // 2]
                rows.append(Row(sec, f"ours: {label}", ts[0], 0, "overhead",
                                note=f"{ts[0] * 1e6:.1f} us (median {med * 1e6:.1f} us)",
                                median=med))
    return rows


def _maybe(module: str) -> Any:
    """The module, or None where it is not installed (one-liners of absent frameworks are skipped)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def cpu_part(args: argparse.Namespace) -> list[Row]:
    nbytes = args.mb << 20
    one = not args.no_one_liners
    only = [w.strip() for w in (getattr(args, "only", None) or "").split(",") if w.strip()]
    threads = getattr(args, "threads", None)
    if threads:
        import numba

        numba.set_num_threads(threads)
    from zerocopy.cli.console import progress

    rows = []
    cases = [(np.dtype([(f"f{i}", "f4") for i in range(4)]), "4xf32"),
             (np.dtype(MIXED), "mixed packed"), (np.dtype(MIXED, align=True), "mixed aligned")]
    cases = [(d, label) for d, label in cases if not only or any(w in label for w in only)]
    tables = not only or "table" in only
    overhead = not only or "overhead" in only
    with progress(len(cases) + tables + overhead, "bench layout") as step:
        for dtype, label in cases:
            rows += _aos_cases(dtype, label, args.repeat, one, nbytes)
            step(label)
        if tables:
            rows += _table_cases(nbytes, args.repeat, one)
            step("table <-> tensor")
        if overhead:
            rows += _overhead_cases(args.repeat)
            step("host overhead")
    return rows


# ----------------------------------------------------------------------- GPU part


def _gpu_time(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call from CUDA events around ``repeat`` back-to-back calls."""
    import cupy

    fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3 / repeat


def _gpu_row(section: str, label: str, fn: Callable[[], object], nbytes: int, kind: str,
             repeat: int) -> Row:
    try:  # nbytes: read + written, counted by the caller
        return Row(section, label, _gpu_time(fn, repeat), nbytes, kind)
    except Exception as exc:
        return Row(section, label, None, nbytes, "error", f"{type(exc).__name__}: {exc}"[:90])


def _gpu_case(dtype: np.dtype, label: str, nbytes: int, repeat: int) -> list[Row]:
    import cupy

    layout = record_layout(dtype)
    n = nbytes // dtype.itemsize
    raw = cupy.random.randint(0, 2, n * dtype.itemsize, dtype=cupy.uint8)
    copy = 2 * raw.nbytes  # the device copy reads and writes every byte once
    size = _moved(n, dtype)  # ours and the one-liners: records + columns
    dst = cupy.empty_like(raw)
    block = column_block(n, {f.name: f.column_dtype for f in layout.fields}, device="cuda")
    cols = block.column_arrays()
    sec = f"GPU AoS->SoA {label} ({dtype.itemsize} B/rec, N={n})"
    rows = [_gpu_row(sec, "device copy: dst[...] = src", lambda: cupy.copyto(dst, raw), copy,
                     "memcpy", repeat),
            _gpu_row(sec, "ours: kernel only", lambda: _gpu.gather(raw, n, layout, cols),
                     size, "ours", repeat),
            _gpu_row(sec, "ours: to_columns(raw, dtype=dt, out=block)",
                     lambda: to_columns(raw, dtype=dtype, out=block), size, "ours", repeat)]
    uniform = layout.uniform_dtype()
    mat = raw.view(uniform).reshape(n, len(layout.fields)) if uniform is not None else None
    rows += _gpu_baselines_gather(sec, mat, raw, layout, size, repeat)
    sec2 = f"GPU SoA->AoS {label} ({dtype.itemsize} B/rec, N={n})"
    out = cupy.empty_like(raw)
    rows += [_gpu_row(sec2, "device copy: dst[...] = src", lambda: cupy.copyto(dst, raw), copy,
                      "memcpy", repeat),
             _gpu_row(sec2, "ours: kernel only", lambda: _gpu.scatter(cols, n, layout, out),
                      size, "ours", repeat),
             _gpu_row(sec2, "ours: to_records(block, dtype=dt, out=buf)",
                      lambda: to_records(block, dtype=dtype, out=out), size, "ours", repeat)]
    if mat is not None:
        soa = cupy.ascontiguousarray(mat.T)
        rows.append(_gpu_row(sec2, "cupy: soa.T.copy()", lambda: soa.T.copy(), size,
                             "one-liner", repeat))
        torch = _maybe("torch")
        if torch is not None:
            ts = torch.from_dlpack(soa)
            rows.append(_gpu_row(sec2, "torch: soa.t().contiguous()",
                                 lambda: ts.t().contiguous(), size, "one-liner", repeat))
    return rows


def _gpu_baselines_gather(sec: str, mat: Any, raw: Any, layout: RecordLayout, size: int,
                          repeat: int) -> list[Row]:
    rows = []
    if mat is not None:
        rows.append(_gpu_row(sec, "cupy: a.T.copy()", lambda: mat.T.copy(), size, "one-liner",
                             repeat))
        torch = _maybe("torch")
        if torch is not None:
            ta = torch.from_dlpack(mat)
            rows.append(_gpu_row(sec, "torch: a.t().contiguous()", lambda: ta.t().contiguous(),
                                 size, "one-liner", repeat))
        return rows
    recs = raw.reshape(-1, layout.itemsize)
    rows.append(_gpu_row(sec, "cupy: recs[:, o:o+w].copy() per field",
                         lambda: [recs[:, f.offset:f.offset + f.width].copy()
                                  for f in layout.fields], size, "one-liner", repeat))
    return rows


def gpu_part(args: argparse.Namespace) -> list[Row]:
    nbytes = args.gpu_mb << 20
    rows = []
    for k in (2, 3, 4, 8, 16, 32):
        rows += _gpu_case(np.dtype([(f"f{i}", "f4") for i in range(k)]), f"{k}xf32", nbytes,
                          args.repeat)
    rows += _gpu_case(np.dtype(MIXED), "mixed packed", nbytes, args.repeat)
    rows += _gpu_case(np.dtype(MIXED, align=True), "mixed aligned", nbytes, args.repeat)
    return rows


# ----------------------------------------------------------------------- report


def _machine(gpu: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "cpus": os.cpu_count(), "cpu": _cpu_model()}
    info["numpy"] = np.__version__
    numba = _maybe("numba")
    if numba is not None:
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    if gpu:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["cupy"] = cupy.__version__
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ratios(rows: list[Row]) -> None:
    """Fill ratio to the prefaulted memcpy (and to the fresh one) of each section."""
    base: dict[str, dict[str, float]] = {}
    for r in rows:
        if r.kind in {"memcpy", "memcpy-fresh"} and r.gbps:
            base.setdefault(r.section, {})[r.kind] = r.gbps
    for r in rows:
        b = base.get(r.section, {})
        if r.gbps and "memcpy" in b:
            r.extra["vs_memcpy"] = r.gbps / b["memcpy"]
        if r.gbps and "memcpy-fresh" in b and r.kind.endswith("fresh"):
            r.extra["vs_fresh_memcpy"] = r.gbps / b["memcpy-fresh"]
    best_one: dict[str, float] = {}
    for r in rows:
        if r.kind == "one-liner" and r.gbps:
            best_one[r.section] = max(best_one.get(r.section, 0.0), r.gbps)
    for r in rows:
        if r.kind.startswith("ours") and r.gbps and r.section in best_one:
            r.extra["vs_best_one_liner"] = r.gbps / best_one[r.section]


def _print(rows: list[Row], machine: dict[str, Any]) -> None:
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    for line in summary(rows):
        print(f"- {line}")
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            print(f"\n## {section}\n| call | best | median | GB/s (best) | vs memcpy "
                  "| vs fresh memcpy | vs best one-liner |\n|---|---|---|---|---|---|---|")
        t = f"{r.seconds * 1e3:.2f} ms" if r.seconds else "ERR"
        t += f" | {r.median * 1e3:.2f} ms" if r.median else " | "
        g = f"{r.gbps:.2f}" if r.gbps else r.note
        cells = [f"{r.extra[k]:.2f}x" if k in r.extra else "" for k in
                 ("vs_memcpy", "vs_fresh_memcpy", "vs_best_one_liner")]
        print(f"| `{r.label}` | {t} | {g} | " + " | ".join(cells) + " |")


def summary(rows: list[Row]) -> list[str]:
    """Per section: our best call against memcpy and against the best one-liner."""
    lines = []
    for section in dict.fromkeys(r.section for r in rows):
        costs = [r for r in rows if r.section == section and r.kind == "overhead" and r.seconds]
        if costs:
            worst = max(costs, key=lambda r: r.seconds or 0.0)
            lines.append(f"{section}: {min(r.seconds or 0.0 for r in costs) * 1e6:.1f}-"
                         f"{(worst.seconds or 0.0) * 1e6:.1f} us (slowest: {worst.label})")
        ours = [r for r in rows if r.section == section and r.kind.startswith("ours") and r.gbps]
        if not ours:
            continue
        best = max(ours, key=lambda r: r.gbps or 0.0)
        ratios = [f"{best.extra[k]:.2f}x {name}" for k, name in
                  (("vs_memcpy", "memcpy"), ("vs_best_one_liner", "the best one-liner")) if k in best.extra]
        lines.append(f"{section}: ours {best.gbps:.2f} GB/s" + (f" ({', '.join(ratios)})" if ratios else ""))
    return lines


def _show(rows: list[Row], machine: dict[str, Any]) -> None:
    from zerocopy.cli.console import out, table

    console = out()
    console.print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), style="dim",
                  markup=False)
    for line in summary(rows):
        console.print(line, style="bold", markup=False)
    for section in dict.fromkeys(r.section for r in rows):
        body = []
        for r in (r for r in rows if r.section == section):
            body.append((r.label, f"{r.seconds * 1e3:.2f} ms" if r.seconds else "ERR",
                         f"{r.median * 1e3:.2f} ms" if r.median else "",
                         f"{r.gbps:.2f}" if r.gbps else r.note,
                         *(f"{r.extra[k]:.2f}x" if k in r.extra else "" for k in
                           ("vs_memcpy", "vs_fresh_memcpy", "vs_best_one_liner"))))
        console.print()
        console.print(table(("call", "best", "median", "GB/s", "vs memcpy", "vs fresh memcpy",
                             "vs best one-liner"), body, title=section))


def main(args: argparse.Namespace) -> int:
    rows = cpu_part(args) if not args.gpu else []
    if args.gpu:
        rows += gpu_part(args)
    _ratios(rows)
    machine = _machine(args.gpu)
    if (getattr(args, "format", None) or ("table" if sys.stdout.isatty() else "markdown")) == "markdown":
        _print(rows, machine)
    else:
        _show(rows, machine)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "rows": [asdict(r) | {"gbps": r.gbps} for r in rows]},
                      fh, indent=1)
    return 0
