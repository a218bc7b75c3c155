"""``zerocopy demo``: both ways run, agree, and the ledger, JSON and report tell the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.demo.runs import run_demo, two_record_csv

from zerocopy.demo.ecgsyn import EcgParams
from zerocopy.demo.ledger import buffers, shared_bytes
from zerocopy.demo.pipeline import checked_layout
from zerocopy.errors import LayoutError

PNG = b"\x89PNG\r\n\x1a\n"


def test_json_has_the_issue_keys_and_both_ways_match(quick) -> None:
    record, _, _ = quick
    assert {"stages", "handoffs", "results_match", "device"} <= record.keys()
    assert record["device"] == "cpu"
    assert record["results_match"] is True
    assert record["checks"]["peak_rows"] and record["checks"]["window"]
    for stage in record["stages"]:
        assert {"mode", "stage", "seconds", "bytes_copied", "peak_bytes"} <= stage.keys()
        assert stage["seconds"] >= 0 and stage["peak_bytes"] > 0
    for handoff in record["handoffs"]:
        assert {"mode", "stage", "src", "dst", "nbytes", "copied_bytes", "seconds"} <= handoff.keys()
    modes = {s["mode"] for s in record["stages"]}
    assert modes == {"naive", "zerocopy"}
    stages = [s["stage"] for s in record["stages"] if s["mode"] == "zerocopy"]
    assert stages == ["startup", "load", "filter", "peaks", "beats", "train", "score", "table", "write"]


def test_every_hand_off_the_plan_calls_zero_copy_copied_nothing(quick) -> None:
    record, _, _ = quick
    ours = [h for h in record["handoffs"] if h["mode"] == "zerocopy"]
    planned_free = [h for h in ours if h["planned_copied_bytes"] == 0]
    assert len(planned_free) >= 6
    assert [h for h in planned_free if h["copied_bytes"]] == []
    # a planned copy says why
    assert all(h["reason"] for h in ours if h["planned_copied_bytes"])


def test_naive_copies_are_counted(quick) -> None:
    record, _, _ = quick
    naive = {h["call"]: h for h in record["handoffs"] if h["mode"] == "naive"}
    assert naive["torch.tensor(X)"]["copied_bytes"] == naive["torch.tensor(X)"]["nbytes"] > 0
    assert naive["jnp.asarray(signal)"]["copied_bytes"] > 0
    assert naive["df['value'].to_numpy()"]["copied_bytes"] == 0   # pandas hands out a view
    total = {m: sum(h["copied_bytes"] for h in record["handoffs"] if h["mode"] == m)
             for m in ("naive", "zerocopy")}
    assert total["zerocopy"] < total["naive"]


def test_summary_comes_first(quick) -> None:
    _, _, stdout = quick
    lines = [x for x in stdout.splitlines() if not x.startswith(("data:", "  ["))]
    assert lines[0].startswith("zerocopy demo on cpu:")
    assert "results match: yes" in stdout and "copy ledger" in stdout


def test_report_markdown_and_pictures_are_valid(quick) -> None:
    import matplotlib.image

    _, out, _ = quick
    report = (out / "report.md").read_text()
    assert report.startswith("# zerocopy demo report") and "## Copy ledger" in report
    pictures = [line[line.index("(") + 1:-1] for line in report.splitlines() if line.startswith("![")]
    assert {"stage_times.png", "ledger.png", "memory.png", "beats.png"} <= set(pictures)
    for name in pictures:
        data = (out / name).read_bytes()
        assert data[:8] == PNG
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0.01   # not a blank canvas
    beats = pd.read_parquet(out / "beats-zerocopy.parquet")
    assert {"record", "peak", "rr", "z0", "error", "cluster", "score"} <= set(beats.columns)
    assert beats.equals(pd.read_parquet(out / "beats-naive.parquet"))


def test_ledger_tells_a_view_from_a_copy() -> None:
    a = np.arange(1000, dtype=np.float32)
    assert shared_bytes(buffers(a), buffers(a[10:20])) == (40, 0)
    assert shared_bytes(buffers(a), buffers(a.copy())) == (0, 4000)
    frame = pd.DataFrame({"x": a, "y": a}, copy=True)
    assert shared_bytes(buffers(a), buffers(frame)) == (0, 8000)


def test_csv_rows_in_any_order_with_lead_names(tmp_path: Path) -> None:
    table, signals = two_record_csv(tmp_path / "ecg.csv")
    n = signals.shape[2]
    df, shape = checked_layout(pd.read_csv(tmp_path / "ecg.csv"), None)
    assert shape == {"records": 2, "leads": 2, "samples": n, "fs": EcgParams().fs, "lead_names": ["0", "1"],
                     "record_ids": [100, 101]}
    assert df["value"].dtype == np.float32   # the CSV's float64 cast once, the same both ways
    assert np.allclose(df["value"].to_numpy().reshape(signals.shape), signals, atol=1e-6)
    with pytest.raises(LayoutError, match="records differ in length"):
        checked_layout(table.iloc[:-1], None)
    with pytest.raises(LayoutError, match="lacks columns"):
        checked_layout(table.drop(columns="lead"), None)


@pytest.mark.gpu
def test_cuda_demo_end_to_end(tmp_path: Path) -> None:
    proc = run_demo("--quick", "--device", "cuda", "--json", str(tmp_path / "demo.json"), "--out",
                 str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["device"] == "cuda" and record["results_match"] is True
    ours = [h for h in record["handoffs"] if h["mode"] == "zerocopy" and h["planned_copied_bytes"] == 0]
    assert ours and not [h for h in ours if h["copied_bytes"]]
    assert all(s["peak_device_bytes"] for s in record["stages"])
    assert (tmp_path / "out" / "memory_timeline.png").read_bytes()[:8] == PNG
