"""The command line: each command runs and says something true."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import zerocopy
from zerocopy.cli import args as cli_args
from zerocopy.cli import main
from zerocopy.errors import InvalidArgumentError


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


# A 2-D pandas or Polars probe is a table: no one buffer to point at.
@pytest.mark.parametrize(("source", "shape"), [
    (source, shape) for source in ("numpy", "torch", "pandas", "polars", "pyarrow")
    for shape in [(1,), (3,), (5, 3), (1024,), (4097,), (7, 9)]
    if len(shape) == 1 or source in ("numpy", "torch", "pyarrow")])
def test_explain_probes_are_64_byte_aligned(source: str, shape: tuple[int, ...]) -> None:
    """A NumPy probe of np.zeros started 16 bytes past a boundary by chance, and explain
    then reported JAX's alignment copy that an array from zerocopy.empty never needs."""
    from zerocopy.cli.explain import probe
    from zerocopy.testing import pointer

    obj = probe(source, "float32", shape, "C")
    assert pointer(obj) % 64 == 0
    assert not zerocopy.explain(obj, "jax").copies


@pytest.mark.parametrize(("order", "shown"), [("F", "[4x6] F"), ("T", "[6x4] F"), ("step", "[2x6] strided")])
def test_explain_order_shapes_a_torch_probe_too(order: str, shown: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "torch", "numpy", "--order", order, "--shape", "4x6"]) == 0
    assert f"torch array float32 {shown}" in capsys.readouterr().out  # was [4x6] C: --order ignored


@pytest.mark.parametrize(("source", "order"), [("pandas", "F"), ("jax", "step"), ("polars", "T"),
                                               ("torch", "reverse")])
def test_explain_order_a_source_cannot_have_is_a_one_line_error(
        source: str, order: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", source, "numpy", "--order", order, "--shape", "4x6"]) == 2
    line = _one_line_error(capsys)
    assert f"--order {order}" in line and "Hint:" in line


def test_matrix_json_cells_are_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--format", "json", "--frameworks", "numpy,torch,pandas",
                 "--dtypes", "float32,bool"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert len(cells) == 12
    copies = {(c["source"], c["target"]) for c in cells if c["status"] != "Z"}
    # pandas' copy-on-write forbids writes a torch tensor (never read-only) could make.
    assert copies == {("pandas", "torch")}
    assert all("copy-on-write" in c["reason"] for c in cells if c["status"] == "C")


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


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def _options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from zerocopy.cli import COMMANDS

    description = _help([], capsys).split("\n\n")[1]  # the line under the usage
    assert all(name in description for name in COMMANDS), description  # demo was missing


def test_cli_docs_match_the_real_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/cli.md's examples parse, its table has a row per command, and every option it
    names exists where it says (it gave bench memory a --format and missed matrix --png)."""
    from zerocopy.bench import PARTS
    from zerocopy.cli import COMMANDS, _parser

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    examples = page.split("```console\n", 1)[1].split("```", 1)[0]
    for line in examples.splitlines():
        argv = shlex.split(line.split("  #")[0])[1:]
        if argv and argv != ["--version"]:
            _parser(argv).parse_args(argv)  # argparse exits on an unknown option
    found = list(re.finditer(r"^\| (`(\w+)(?:[^|\\]|\\.)*)\| (.*) \|$", page, re.M))
    rows = {m.group(2): m.group(3) for m in found}  # a first cell may hold escaped pipes
    heads = {m.group(2): m.group(1) for m in found}
    assert set(COMMANDS) <= set(rows)
    for command, text in rows.items():
        parts = list(PARTS) if command == "bench" else [None]
        real = set().union(*(_options(_help([command, *([p] if p else [])], capsys)) for p in parts))
        assert _options(text) <= real, (command, _options(text) - real)
        if command in ("doctor", "explain", "matrix", "memory"):  # named in full
            assert real - {"--help"} <= _options(text), (command, real - _options(text))
    bench = rows["bench"]
    for part, named in re.findall(r"`(\w+)`(?: \([^)]*\))?: ((?:`--[\w-]+`(?:, )?)+)", bench):
        assert _options(named) <= _options(_help(["bench", part], capsys)), part
    assert set(re.findall(r"\w+", heads["bench"])) >= set(PARTS)  # dask and all were missing


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err  # one line, no traceback
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"zerocopy {zerocopy.__version__} (zerocopy-ml")


@pytest.mark.parametrize(("argv", "words"), [
    (["explain", "numpy", "jax", "--dtype", "float64"], ["64-bit", "Hint:", "jax_enable_x64"]),
    (["explain", "numpy", "torch", "--shape", "3y4"], ["--shape", "'3y4'", "Hint:"]),
    (["explain", "numpy", "torch", "--dtype", "flot32"], ["--dtype", "float32"]),
    (["explain", "nmpy", "torch"], ["'nmpy'", "numpy, torch", "did you mean 'numpy'?"]),
    (["matrix", "--frameworks", "numpy,torhc"], ["'torhc'", "numpy, torch, jax", "did you mean 'torch'?",
                                                  "zerocopy doctor"]),
    (["matrix", "--dtypes", "float33"], ["'float33'", "bfloat16"]),
    (["bench", "exchange", "--sizes", "1XB"], ["'1XB'", "1MB"]),
    (["bench", "exchange", "--pairs", "numpy-torch"], ["SRC->DST"]),
    (["explain", "numpy"], ["required", "--help"]),
    (["matrix", "--nope"], ["unrecognized arguments: --nope", "--help"]),
])
def test_mistakes_are_one_line_errors_with_exit_2(argv: list[str], words: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2
    line = _one_line_error(capsys)
    for word in words:
        assert word in line


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
@pytest.mark.parametrize("argv", [["explain", "numpy", "cupy"], ["matrix", "--frameworks", "numpy,cupy"],
                                  ["matrix", "--gpu"], ["memory", "--gpu"]])
def test_gpu_commands_without_cuda_are_one_line_errors(argv: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "cupy" in line.lower() or "gpu" in line.lower() or "cuda" in line.lower()
    assert "Hint:" in line


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


@pytest.mark.skipif(_importable("cupy") or _importable("cuda.bindings"),
                    reason="a CUDA binding is installed here")
@pytest.mark.parametrize(("driver", "words"), [
    (False, ["no NVIDIA driver", "zerocopy memory --demo"]),
    (True, ["no CUDA runtime binding", "pip install cuda-bindings"])])
def test_memory_gpu_without_a_gpu_says_what_is_missing(driver: bool, words: list[str],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Without a GPU the hint was to install cuda-bindings, which reaches no GPU either."""
    import zerocopy.cli.memory as command

    monkeypatch.setattr(command, "nvidia_driver", lambda: driver)
    assert main(["memory", "--gpu"]) == 2
    line = _one_line_error(capsys)
    assert "Got no CUDA runtime binding" in line
    for word in words:
        assert word in line
    assert ("pip install" in line) == driver


def test_accepted_spellings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "numpy", "torch", "--shape", "3x4"]) == 0
    out = capsys.readouterr().out
    assert "[3x4]" in out and "ZERO-COPY" in out.splitlines()[0]  # the verdict comes first
    assert cli_args.shape("64,32") == (64, 32) == cli_args.shape("64x32")
    assert cli_args.sizes("1MB,64KiB,1024") == [1_000_000, 65536, 1024]
    assert cli_args.frameworks("np, tf,torch", ["numpy", "tensorflow", "torch"]) == [
        "numpy", "tensorflow", "torch"]
    with pytest.raises(InvalidArgumentError):
        cli_args.nbytes("0")


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import zerocopy.cli.explain as command

    def broken(args: object) -> int:
        raise RuntimeError("a framework fell over")

    monkeypatch.setattr(command, "main", broken)
    assert main(["explain", "numpy", "torch"]) == 1
    line = _one_line_error(capsys)
    assert "RuntimeError: a framework fell over" in line and "--debug" in line
    with pytest.raises(RuntimeError, match="fell over"):
        main(["--debug", "explain", "numpy", "torch"])


def test_doctor_summary_first_and_numba_cuda_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"zerocopy {zerocopy.__version__}") and "frameworks ready" in first
    built = importlib.util.find_spec("zerocopy._raise") is not None
    assert ("C++ part (zerocopy._raise): " + ("built" if built else "not built")) in out
    cpu_numba_only = (importlib.util.find_spec("numba") is not None
                      and importlib.util.find_spec("numba_cuda") is None)
    if cpu_numba_only:
        assert "numba-cuda not installed" in out and "numba 0." in out


def test_matrix_table_summary_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--frameworks", "numpy,polars", "--dtypes", "bool,float32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("4 cells (2 ordered pairs x 2 dtypes): 2 zero-copy")
    assert any("Polars stores bool as bits" in line for line in lines)


def test_bench_exchange_sizes_with_units_and_summary_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "exchange", "--pairs", "numpy->torch", "--sizes", "1KiB,64KB",
                 "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ") and lines[1].startswith("zero-copy on both sides: 2 cells")
    rows = [line for line in lines if line.startswith("| numpy->torch")]
    assert [row.split(" | ")[1] for row in rows] == ["1 KiB", "62 KiB"]  # 64 kB = 62.5 KiB
    assert all("| Z |" in row for row in rows)
