"""``zerocopy bench all --out DIR``: report.md, PNG charts, JSON and logs per part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zerocopy.bench.all import charts, write
from zerocopy.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _valid_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100 and image.std() > 0.01


def test_bench_all_quick_writes_report_and_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "all", "--quick", "--parts", "memory", "--out", str(tmp_path)]) == 0
    assert "memory" in capsys.readouterr().out
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# zerocopy benchmarks") and "![memory](memory.png)" in report
    assert json.loads((tmp_path / "memory.json").read_text())["host"]["alloc_free_pair_us"]
    _valid_png(tmp_path / "memory.png")


def test_charts_from_exchange_and_layout_rows(tmp_path: Path) -> None:
    exchange = {"rows": [
        {"pair": "numpy->torch", "bytes": 1 << 20, "native": "torch.from_numpy(x)", "ours_copies": False,
         "ours_s": 2e-6, "native_copies": False, "native_s": 1e-6},
        {"pair": "numpy->jax", "bytes": 1 << 20, "native": "jnp.asarray(x)", "ours_copies": False,
         "ours_s": 3e-6, "native_copies": True, "native_s": 3e-4}]}
    layout = {"rows": [
        {"section": "AoS->SoA", "kind": "ours", "extra": {"vs_memcpy": 0.9}},
        {"section": "AoS->SoA", "kind": "one-liner", "extra": {"vs_memcpy": 0.2}},
        {"section": "AoS->SoA", "kind": "memcpy", "extra": {"vs_memcpy": 1.0}}]}
    results = [{"part": "exchange", "exit": 0, "command": "c", "data": exchange, "log": ""},
               {"part": "layout", "exit": 0, "command": "c", "data": layout, "log": ""},
               {"part": "dask", "exit": 1, "command": "c", "data": None, "log": "x\nTypeError: boom"}]
    pictures = charts(results, tmp_path)
    assert pictures == {"exchange": "exchange.png", "layout": "layout.png"}
    for name in pictures.values():
        _valid_png(tmp_path / name)
    report = write(results, pictures, tmp_path).read_text()
    assert "**failed** (exit 1)" in report and "TypeError: boom" in report
