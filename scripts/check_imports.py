#!/usr/bin/env python3
"""The import boundaries of ``src/zerocopy``, checked on the syntax tree (``make lint``).

Two rules, each a promise the architecture makes (docs/architecture.md):

ZC1  Only a framework's own modules name that framework. ``import torch``,
     ``from cupy import ...``, ``require("pyarrow")`` and ``importlib.import_module("jax")``
     appear only in that framework's adapter or hook module, or in a place listed in
     ``ALLOWED`` below with the reason it needs the framework. Imports under
     ``if TYPE_CHECKING:`` are exempt: they never run.
ZC2  No private name crosses modules: ``from zerocopy.a import _b`` where ``_b`` is a
     function, class or constant of ``zerocopy.a`` (a private *module* of the same
     package, such as ``from zerocopy.layout import _cpu``, is the package's own business).
     What two modules share gets a public name in the module that owns it.

An entry of ``ALLOWED`` that no import needs any more is reported too, so the list only
shrinks. Reads files only (nothing is imported): about 0.2 s for the whole package.

Usage: ``python scripts/check_imports.py [ROOT]`` (ROOT defaults to src/zerocopy).
Exit status 1 when a rule is broken, with one ``path:line: ZCn message`` line each.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "zerocopy"
sys.path.insert(0, str(ROOT.parent))
from zerocopy import registry  # noqa: E402 (the ground floor: imports no framework)

# Packages that belong to a framework without being the modules its classes come from
# (registry.Framework.modules), and optional libraries that are not frameworks.
COMPANIONS: dict[str, str] = {
    "cupyx": "cupy",
    "rmm": "cudf",  # cuDF's allocator library, driven by the cuDF hook
    "cuda": "cuda-python",  # cuda.bindings, cuda.core: the CUDA runtime and driver
    "dask": "dask", "distributed": "dask", "dask_cuda": "dask",
    "ml_dtypes": "ml_dtypes", "matplotlib": "matplotlib", "wfdb": "wfdb",
}

# Top-level module -> the framework it loads. NumPy is zerocopy's one dependency that is a
# framework: every module may import it.
HEAVY: dict[str, str] = {
    **{module: r.name for r in registry.RECORDS if r.name != "numpy" for module in r.modules},
    **COMPANIONS,
}

# A framework's own modules, as files under ROOT: its adapter and its memory hook.
OWN: dict[str, str] = {
    module.removeprefix("zerocopy.").replace(".", "/") + ".py": r.name
    for r in registry.RECORDS for module in (r.adapter_module, r.hook_module) if module
}

EVERY = frozenset(HEAVY.values())
CUDA_RUNTIMES = frozenset({"cupy", "cuda-python"})  # the two ways to call the CUDA runtime

# Places outside the framework modules that name frameworks, with why. Keys are globs
# relative to ROOT; values are (frameworks as named in HEAVY's values, reason).
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    # The CUDA layer: the runtime is reached through cuda.bindings or CuPy's runtime module.
    "_cuda/*.py": (CUDA_RUNTIMES, "the one CUDA layer: runtime calls through cuda.bindings or CuPy"),
    # Framework modules that reach a second library for their own framework's sake.
    "adapters/pandas.py": (frozenset({"pyarrow"}), "pandas' Arrow-backed columns are read as pyarrow arrays"),
    "adapters/polars.py": (frozenset({"pyarrow"}), "polars hands its columns over as Arrow arrays"),
    "adapters/cudf.py": (frozenset({"cupy"}), "cuDF allocates on CuPy's current device"),
    "memory/hooks/cudf.py": (frozenset({"cuda-python"}), "RMM takes the pool as a cuda.bindings handle"),
    "memory/hooks/numba.py": (frozenset({"cuda-python"}), "numba-cuda takes device pointers as CUdeviceptr"),
    # Optional libraries behind one feature each.
    "io.py": (frozenset({"pyarrow"}), "Parquet and Arrow IPC files are read and written by pyarrow"),
    "_dtypes.py": (frozenset({"ml_dtypes"}), "bfloat16 and the float8 types come from ml_dtypes"),
    "cli/matrix_png.py": (frozenset({"matplotlib"}), "the matrix drawn as a PNG chart"),
    # Layout computes on NumPy and CuPy, with Numba kernels on the host.
    "layout/*.py": (frozenset({"cupy", "numba"}), "layout's GPU kernels run on CuPy, host kernels on Numba"),
    "exchange/blocks.py": (frozenset({"cupy"}), "a column block's view over a CuPy owner"),
    # Code whose job is to drive every framework by its own API.
    "bench/*.py": (EVERY, "benchmarks time each framework's own calls beside zerocopy's"),
    "demo/*.py": (EVERY, "the demo's hand-written way uses each framework's own API, by design"),
    "dask/*.py": (EVERY, "Dask plugins and serializers for each framework's tensors"),
    "testing.py": (EVERY, "probes build one test object per framework for tests, matrix and benchmarks"),
}

# Calls whose first argument, a string literal, names a module to import.
IMPORTING_CALLS = frozenset({"require", "import_module", "__import__"})


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        path = self.path.relative_to(Path.cwd()) if self.path.is_relative_to(Path.cwd()) else self.path
        return f"{path}:{self.line}: {self.rule} {self.text}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: the bodies of ``if TYPE_CHECKING:`` are left out."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _named_modules(node: ast.AST) -> Iterator[str]:
    """Absolute module names that ``node`` imports (or asks ``require`` & co to import)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        yield node.module
    elif isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        if name in IMPORTING_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            yield first.value


def _allowed(relative: str) -> tuple[frozenset[str], list[str]]:
    """Frameworks this file may name, and the ALLOWED patterns that grant them."""
    own = OWN.get(relative)
    frameworks = {own} if own else set()
    patterns = [p for p in ALLOWED if fnmatch(relative, p)]
    for pattern in patterns:
        frameworks |= ALLOWED[pattern][0]
    return frozenset(frameworks), patterns


def _module_of(path: Path, root: Path) -> list[str]:
    """Dotted parts of the module a file defines (a package's ``__init__`` is the package)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _source_module(node: ast.ImportFrom, here: list[str], is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = here if is_package else here[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_submodule(module: str, name: str, root: Path) -> bool:
    """``name`` is a module or package inside ``module`` (files under ROOT)."""
    parts = module.split(".")
    if parts[0] != root.name:
        return False
    inside = root.joinpath(*parts[1:])
    # name.py, a compiled name.cpython-311-x86_64-linux-gnu.so, or a package folder
    return any(inside.glob(f"{name}.*")) or (inside / name / "__init__.py").is_file()


def check_file(path: Path, root: Path, used: set[str]) -> list[Finding]:
    relative = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    may_name, patterns = _allowed(relative)
    here, is_package = _module_of(path, root), path.name == "__init__.py"
    findings = []
    for node in _runtime_nodes(tree):
        for module in _named_modules(node):
            framework = HEAVY.get(module.partition(".")[0])
            if framework is None:
                continue
            if framework not in may_name:
                findings.append(Finding(path, node.lineno, "ZC1", (
                    f"names {framework} ({module}) outside {framework}'s own modules; move the "
                    "code there, or list this file in ALLOWED with the reason")))
            used.update(p for p in patterns if framework in ALLOWED[p][0])
        if isinstance(node, ast.ImportFrom):
            source = _source_module(node, here, is_package)
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not name.startswith("__") and not _is_submodule(
                        source, name, root):
                    findings.append(Finding(path, node.lineno, "ZC2", (
                        f"imports the private name {name} from {source}; give it a public "
                        "name in the module that owns it")))
    return findings


def check(root: Path) -> list[Finding]:
    used: set[str] = set()
    findings = [f for path in sorted(root.rglob("*.py")) for f in check_file(path, root, used)]
    for pattern in sorted(set(ALLOWED) - used):
        findings.append(Finding(Path(__file__), 0, "ZC1", (
            f"ALLOWED[{pattern!r}] is not needed by any import any more: remove the entry")))
    return findings


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else ROOT
    findings = check(root.resolve())
    for finding in findings:
        print(finding)
    if findings:
        print(f"check_imports: {len(findings)} broken import boundar"
              f"{'y' if len(findings) == 1 else 'ies'} (rules: scripts/check_imports.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
