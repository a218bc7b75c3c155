"""Compare the two ways' results and sum them up (the numbers the summary and report show)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXACT", "TOLERANCE", "compare", "pipeline_seconds", "summary"]

EXACT = ("peak_rows", "peak_cols", "window")   # bit for bit
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}        # latents, reconstruction errors, scores
LABEL_AGREEMENT = 0.999                         # k-means labels (near-ties may flip)


def compare(work: Path, modes: tuple[str, str] = ("naive", "zerocopy")) -> dict[str, Any]:
    """What matches between the ways; ``ok`` is the verdict (results_match)."""
    a, b = (np.load(work / f"{m}.npz") for m in modes)
    checks: dict[str, Any] = {}
    for key in EXACT:
        checks[key] = bool(a[key].shape == b[key].shape and a[key].tobytes() == b[key].tobytes())
    for key in ("z", "err", "score"):
        x, y = a[key], b[key]
        same_shape = x.shape == y.shape
        checks[key] = bool(same_shape and np.allclose(x, y, rtol=TOLERANCE["rtol"], atol=TOLERANCE["atol"]))
        checks[f"{key}_max_abs_diff"] = float(np.max(np.abs(x - y))) if same_shape and x.size else None
    agree = float(np.mean(a["labels"] == b["labels"])) if a["labels"].shape == b["labels"].shape else 0.0
    checks["labels"] = agree >= LABEL_AGREEMENT
    checks["labels_agreement"] = agree
    checks["ok"] = all(checks[k] for k in (*EXACT, "z", "err", "score", "labels"))
    checks["tolerance"] = (f"peaks and beat windows bit for bit; latents, errors and scores within "
                           f"rtol {TOLERANCE['rtol']:g}, atol {TOLERANCE['atol']:g}; "
                           f"cluster labels agree on >= {LABEL_AGREEMENT:.1%} of beats")
    return checks


def pipeline_seconds(run: dict[str, Any]) -> float:
    return sum(s["seconds"] for s in run["stages"] if s["stage"] != "startup")


def summary(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals per way and the ratios naive / zerocopy."""
    out: dict[str, Any] = {}
    for mode, run in runs.items():
        out[mode] = {
            "seconds": pipeline_seconds(run),
            "cpu_seconds": sum(s["cpu_seconds"] for s in run["stages"] if s["stage"] != "startup"),
            "startup_seconds": sum(s["seconds"] for s in run["stages"] if s["stage"] == "startup"),
            "handoff_seconds": sum(h["seconds"] for h in run["handoffs"]),
            "bytes_copied": sum(h["copied_bytes"] for h in run["handoffs"]),
            "bytes_handed": sum(h["nbytes"] for h in run["handoffs"]),
            "peak_host_bytes": run["peak_host_bytes"],
            "peak_device_bytes": run.get("peak_device_bytes"),
            "beats": run["beats"],
            "heart_rate": run["heart_rate"],
        }
    for mode, run in runs.items():
        if run.get("cluster"):
            out[mode]["cluster"] = run["cluster"]
    if {"naive", "zerocopy"} <= out.keys():
        n, z = out["naive"], out["zerocopy"]

        def ratio(key: str) -> float | None:
            return n[key] / z[key] if z[key] else None
        out["speedup"] = ratio("seconds")
        out["handoff_speedup"] = ratio("handoff_seconds")
        out["host_memory_ratio"] = ratio("peak_host_bytes")
        if n["peak_device_bytes"] and z["peak_device_bytes"]:
            out["device_memory_ratio"] = n["peak_device_bytes"] / z["peak_device_bytes"]
    return out
