"""The command line: each command runs and says something true."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zerocopy.cli import main


def test_doctor_lists_every_framework(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"numpy", "torch", "jax", "pyarrow", "pandas", "polars", "mxnet"} <= names
    numpy_row = next(r for r in rows if r["name"] == "numpy")
    assert numpy_row["installed"] and numpy_row["version"]


def test_explain_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "numpy", "tensorflow", "--order", "step", "--shape", "64"]) == 0
    out = capsys.readouterr().out
    assert "COPIES" in out and "C-contiguous" in out


def test_matrix_json_cells_are_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--format", "json", "--frameworks", "numpy,torch,pandas",
                 "--dtypes", "float32,bool"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert len(cells) == 12
    assert {c["status"] for c in cells} == {"Z"}


def test_matrix_markdown_shows_copies_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--format", "markdown", "--frameworks", "numpy,polars",
                 "--dtypes", "bool"]) == 0
    out = capsys.readouterr().out
    assert "| numpy->polars | bool | C |" in out and "bits" in out


def test_python_dash_m_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "zerocopy", "--help"], capture_output=True,
                          text=True, check=True)
    for command in ("doctor", "matrix", "explain", "bench", "memory"):
        assert command in done.stdout
