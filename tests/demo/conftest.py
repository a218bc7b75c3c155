"""The demo's quick CPU run, made once per session: tests/demo/test_demo.py reads it, and
tests/demo/test_demo_cluster.py compares the cluster mode with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.demo.runs import run_demo


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the generated signals: every run here reads the same records."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> tuple[dict, Path, str]:
    tmp = tmp_path_factory.mktemp("demo")
    proc = run_demo("--quick", "--device", "cpu", "--json", str(tmp / "demo.json"), "--out",
                    str(tmp / "out"), "--cache", str(demo_cache))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "demo.json").read_text()), tmp / "out", proc.stdout
