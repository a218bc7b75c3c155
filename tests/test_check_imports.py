"""scripts/check_imports.py finds what it promises to find, on a small package laid out like
ours (`make lint` runs it on the real one)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "check_imports.py"


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "zerocopy"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def _found(checker: ModuleType, package: Path) -> set[tuple[str, str]]:
    return {(f.path.relative_to(package).as_posix(), f.rule)
            for f in checker.check(package) if f.line}  # line 0: stale ALLOWED entries


def test_a_framework_named_outside_its_modules_is_found(checker: ModuleType, tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "adapters/torch.py": "def f():\n    import torch\n",                   # its own: fine
        "adapters/jax.py": "def f():\n    import torch\n",                     # another's
        "exchange/plan.py": "def f():\n    from cupy import cuda\n",
        "exchange/edges.py": "def f():\n    require('pandas')\n",
        "exchange/info.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
    })
    assert _found(checker, package) == {
        ("adapters/jax.py", "ZC1"), ("exchange/plan.py", "ZC1"), ("exchange/edges.py", "ZC1")}


def test_a_private_name_crossing_modules_is_found(checker: ModuleType, tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "layout/__init__.py": "",
        "layout/_cpu.py": "def _kernel(): ...\n",
        "layout/records.py": "from . import _cpu\nfrom zerocopy.layout._cpu import _kernel\n",
        "layout/tables.py": "from ._cpu import _kernel\n",
    })
    assert _found(checker, package) == {("layout/records.py", "ZC2"), ("layout/tables.py", "ZC2")}

