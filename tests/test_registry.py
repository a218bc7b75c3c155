"""The registry is the one list of frameworks: every record has an adapter (and, where it
says so, a hook) of the common shape, every spelling resolves to one framework, and every
list elsewhere is the registry's, derived."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from zerocopy import adapters, registry
from zerocopy._detect import framework_of
from zerocopy.bench import exchange as bench_exchange
from zerocopy.cli import matrix as cli_matrix
from zerocopy.errors import InvalidArgumentError, UnsupportedConversionError
from zerocopy.exchange.edges import CAI, DLPACK, Edge
from zerocopy.memory import hooks

RECORDS = registry.RECORDS
NAMES = [r.name for r in RECORDS]

ADAPTER_SHAPE = ("NAME", "IMPORT_NAME", "PIP", "PROTOCOLS", "EDGES",
                 "inspect", "dtypes", "version", "devices", "make", "to_host")
HOOK_SHAPE = ("NAME", "PACKAGE", "INSTALL_HINT", "MODES", "capabilities", "check", "install",
              "framework_stats", "release_cache", "oom_type")


@pytest.mark.parametrize("record", RECORDS, ids=NAMES)
def test_every_record_has_an_adapter_of_the_common_shape(record: registry.Framework) -> None:
    module = registry.adapter(record.name)
    assert module.__name__ == record.adapter_module
    missing = [name for name in ADAPTER_SHAPE if not hasattr(module, name)]
    assert not missing, f"{record.adapter_module} lacks {missing}"
    # The adapter and its record state the same facts.
    assert (record.name, record.import_name, record.pip) == (module.NAME, module.IMPORT_NAME, module.PIP)
    assert set(module.PROTOCOLS) == {"exports", "imports"}
    assert all(isinstance(edge, Edge) for edge in module.EDGES)
    for function in ADAPTER_SHAPE[5:]:
        assert callable(getattr(module, function)), f"{record.name}.{function}"
    # Frameworks the GPU matrix probes copy NumPy values onto a device with their move().
    if record.device_probe:
        assert callable(getattr(module, "move", None)), f"{record.name} has a device probe but no move()"


@pytest.mark.parametrize("record", [r for r in RECORDS if r.hook_module], ids=lambda r: r.name)
def test_every_hook_the_registry_names_exists_with_the_hook_shape(record: registry.Framework) -> None:
    module = hooks.hook(record.name)
    assert module.__name__ == record.hook_module
    assert record.name == module.NAME
    missing = [name for name in HOOK_SHAPE if not hasattr(module, name)]
    assert not missing, f"{record.hook_module} lacks {missing}"
    for mode in module.MODES:
        assert module.capabilities(mode).framework == record.name


def test_a_framework_without_a_pool_has_no_hook_module() -> None:
    hook_files = {p.stem for p in _package_dir(hooks).glob("[!_]*.py")}
    assert hook_files == set(registry.names(hook=True))


def test_every_adapter_module_is_in_the_registry() -> None:
    adapter_files = {p.stem for p in _package_dir(adapters).glob("[!_]*.py")}
    assert adapter_files == set(NAMES)


def test_records_state_facts_of_the_known_kinds() -> None:
    for record in RECORDS:
        assert record.memory in ("host", "device", "both"), record.name
        assert record.kinds and set(record.kinds) <= {"array", "column", "table"}, record.name
        assert record.name in record.modules or record.import_name in record.modules, record.name


def test_every_spelling_names_one_framework() -> None:
    spellings = Counter(s for r in RECORDS for s in {r.name, *r.aliases, *r.modules})
    assert [s for s, n in spellings.items() if n > 1] == []


@pytest.mark.parametrize("record", RECORDS, ids=NAMES)
def test_names_aliases_and_modules_resolve(record: registry.Framework) -> None:
    for spelling in (record.name, record.name.upper(), *record.aliases, *record.modules):
        assert registry.resolve(spelling) == record.name, spelling
    # A module object, or a submodule's name, resolves by its top-level package.
    module = ModuleType(f"{record.modules[-1]}.sub")
    assert registry.resolve(module) == record.name
    assert registry.record(record.name) is record


def test_unknown_spellings_are_typed_errors_that_list_the_frameworks() -> None:
    with pytest.raises(UnsupportedConversionError, match=r"Unknown target framework .torhc.*numpy, torch"):
        registry.resolve("torhc")
    with pytest.raises(UnsupportedConversionError, match="framework name or module"):
        registry.resolve(42)
    with pytest.raises(InvalidArgumentError, match="Unknown framework 'np'"):
        registry.record("np")  # record() takes names only; resolve() reads aliases


@pytest.mark.parametrize("record", RECORDS, ids=NAMES)
def test_detection_reads_the_records_modules(record: registry.Framework) -> None:
    for module in record.modules:
        cls = type("Probe", (), {"__module__": f"{module}.core"})
        assert framework_of(cls()) == record.name, module
    assert framework_of(type("Probe", (), {"__module__": "somewhere.else"})()) is None


def test_the_derived_lists_are_the_registrys() -> None:
    host, device, both = (tuple(r.name for r in RECORDS if r.memory == m) for m in ("host", "device", "both"))
    assert registry.HOST_ONLY == host == ("numpy", "pyarrow", "pandas", "polars")
    assert registry.DEVICE_ONLY == device == ("cupy", "numba", "cudf")
    assert set(registry.CPU_FRAMEWORKS) == set(host + both)
    assert set(registry.GPU_FRAMEWORKS) == set(device + both)
    assert list(registry.FRAMEWORKS) == NAMES
    assert {r.name: r.hook_module for r in RECORDS if r.hook_module} == registry.HOOKS
    assert hooks.HOOKS == registry.HOOKS
    # adapters/ re-exports the registry's names, so older imports keep working.
    for name in adapters.__all__:
        assert getattr(adapters, name) is getattr(registry, name), name
    assert registry.names(kind="table") == ("pyarrow", "pandas", "polars", "cudf")
    assert "pyarrow" in registry.names(kind="array")  # pa.Tensor


def test_the_command_line_and_bench_defaults_are_the_registrys() -> None:
    main_host = registry.names(memory=("host", "both"), main_env=True)
    assert tuple(cli_matrix.DEFAULT) == main_host
    assert tuple(bench_exchange.CPU) == main_host
    assert "mxnet" not in main_host  # its own environment (NumPy < 1.24)
    assert tuple(cli_matrix.GPU_DEFAULT) == registry.names(device_probe=True)


def test_installed_asks_find_spec_of_the_import_name() -> None:
    for record in RECORDS:
        expected = importlib.util.find_spec(record.import_name) is not None
        assert registry.installed(record.name) is expected, record.name
    here = registry.names(installed=True)
    assert "numpy" in here and set(here) | set(registry.names(installed=False)) == set(NAMES)


def test_edges_join_installed_frameworks_and_protocols_only() -> None:
    ends = {*registry.names(installed=True), DLPACK, CAI}
    found = registry.edges()
    assert found and all(e.source in ends and e.target in ends for e in found)


def test_importing_every_adapter_and_hook_module_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from zerocopy import registry\n"
        "from zerocopy.memory.hooks import hook\n"
        "for name in registry.names():\n"
        "    registry.adapter(name)\n"
        "for name in registry.HOOKS:\n"
        "    hook(name)\n"
        "heavy = {m for r in registry.RECORDS if r.name != 'numpy' for m in r.modules}\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _package_dir(package: ModuleType) -> Path:
    assert package.__file__ is not None
    return Path(package.__file__).parent


def test_a_hooked_framework_is_loaded_when_its_modules_or_its_pool_package_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cudf", "rmm", "cupy", "cupy_backends"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert not hooks.loaded("cudf") and not hooks.loaded("cupy")
    monkeypatch.setitem(sys.modules, "rmm", ModuleType("rmm"))  # what the cuDF hook drives
    monkeypatch.setitem(sys.modules, "cupy_backends", ModuleType("cupy_backends"))
    assert hooks.loaded("cudf") and hooks.loaded("cupy")


def test_the_report_asks_a_hook_for_its_counters_when_the_registry_says_it_is_loaded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """memory.report reads a framework's own counters only where it runs (hooks.loaded: its
    record's modules or its hook's package, RMM for cuDF), with no framework named."""
    report = importlib.import_module("zerocopy.memory.report")  # the module: the package exports report()
    for name in ("cupy", "cupy_backends", "cudf", "rmm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in ("cupy", "cudf"):
        monkeypatch.setattr(hooks.hook(name), "framework_stats", lambda name=name: {name: 1})
    assert report._framework_stats("cupy") is None and report._framework_stats("cudf") is None
    monkeypatch.setitem(sys.modules, "cupy_backends", ModuleType("cupy_backends"))
    monkeypatch.setitem(sys.modules, "rmm", ModuleType("rmm"))
    assert report._framework_stats("cupy") == {"cupy": 1}
    assert report._framework_stats("cudf") == {"cudf": 1}


# ----------------------------------------------------------------- pyproject.toml's lists
ROOT = Path(__file__).parents[1]
# Framework modules: every record's, NumPy excepted (zerocopy's one dependency).
FRAMEWORK_MODULES = {m for r in RECORDS if r.name != "numpy" for m in r.modules}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _check_imports() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_ruff_bans_every_framework_module_at_module_level() -> None:
    """TID253: a framework (and its companions, scripts/check_imports.py's COMPANIONS) is
    imported inside the function that needs it. A new record's modules must be listed."""
    lint = _pyproject()["tool"]["ruff"]["lint"]
    banned = set(lint["flake8-tidy-imports"]["banned-module-level-imports"])
    missing = sorted(FRAMEWORK_MODULES - banned)
    assert not missing, (f"pyproject.toml: add {missing} to [tool.ruff.lint.flake8-tidy-imports] "
                         "banned-module-level-imports (the registry's records name these modules)")
    companions = set(_check_imports().COMPANIONS)
    assert not companions - banned, f"pyproject.toml: ban {sorted(companions - banned)} too (COMPANIONS)"
    # Beyond those, only the modules the comment there names: rich, and two of ours that
    # load a framework on import.
    assert banned - FRAMEWORK_MODULES - companions == {
        "rich", "zerocopy.cli.console", "zerocopy.layout._cpu_numba"}


def _imported_framework_modules() -> set[str]:
    """Framework modules named by an import statement anywhere in src/zerocopy (what mypy
    follows; require("x") and import_module("x") it never sees)."""
    found = set()
    for path in (ROOT / "src" / "zerocopy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found & FRAMEWORK_MODULES


def test_mypy_types_every_imported_framework_module_as_any() -> None:
    """mypy skips the frameworks (typed Any, the same on every machine): each framework module
    src/zerocopy imports is in the override, and none that it does not (mypy reports an
    unused section)."""
    overrides = [o for o in _pyproject()["tool"]["mypy"]["overrides"] if o.get("follow_imports") == "skip"]
    assert len(overrides) == 1
    listed = {m.removesuffix(".*") for m in overrides[0]["module"]} & FRAMEWORK_MODULES
    imported = _imported_framework_modules()
    assert not imported - listed, (
        f"pyproject.toml: add {sorted(f'{m}.*' for m in imported - listed)} to the "
        "[[tool.mypy.overrides]] with follow_imports = \"skip\" (src/zerocopy imports them)")
    assert not listed - imported, (
        f"pyproject.toml: remove {sorted(f'{m}.*' for m in listed - imported)} from the mypy "
        "override: nothing in src/zerocopy imports them any more")
