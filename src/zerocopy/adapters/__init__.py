"""The framework registry: one module per framework, all of the same shape.

Each module has NAME, IMPORT_NAME, PIP, PROTOCOLS, EDGES and the functions ``inspect``,
``dtypes``, ``version``, ``devices``, ``make`` (a probe from NumPy values, for tests and the
matrix) and ``to_host`` (values back as NumPy, for comparisons). Only the module imports
its framework, and only inside those functions.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

from zerocopy.errors import UnsupportedConversionError, message
from zerocopy.exchange.edges import Edge

__all__ = ["ALIASES", "CPU_FRAMEWORKS", "DEVICE_ONLY", "FRAMEWORKS", "GPU_FRAMEWORKS", "HOST_ONLY",
           "adapter", "edges", "installed", "resolve"]

FRAMEWORKS: dict[str, str] = {
    "numpy": "zerocopy.adapters.numpy",
    "torch": "zerocopy.adapters.torch",
    "jax": "zerocopy.adapters.jax",
    "tensorflow": "zerocopy.adapters.tensorflow",
    "pyarrow": "zerocopy.adapters.pyarrow",
    "pandas": "zerocopy.adapters.pandas",
    "polars": "zerocopy.adapters.polars",
    "mxnet": "zerocopy.adapters.mxnet",
}
CPU_FRAMEWORKS = tuple(FRAMEWORKS)
FRAMEWORKS.update({
    "cupy": "zerocopy.adapters.cupy",
    "numba": "zerocopy.adapters.numba",
    "cudf": "zerocopy.adapters.cudf",
})
# Frameworks that hold CUDA device memory (torch and jax hold both kinds).
GPU_FRAMEWORKS = ("cupy", "torch", "jax", "numba", "cudf")
DEVICE_ONLY = ("cupy", "numba", "cudf")  # host data reaches them only by a copy
HOST_ONLY = ("numpy", "pyarrow", "pandas", "polars")  # device data reaches them only by a copy

ALIASES: dict[str, str] = {
    "np": "numpy", "pytorch": "torch", "jnp": "jax", "jaxlib": "jax", "tf": "tensorflow",
    "arrow": "pyarrow", "pa": "pyarrow", "pd": "pandas", "pl": "polars", "mx": "mxnet",
    "cp": "cupy", "cupy_backends": "cupy", "numba_cuda": "numba",
}


def resolve(target: object) -> str:
    """Framework name of a target given as a name, an alias or the module itself."""
    name = getattr(target, "__name__", target)
    if not isinstance(name, str):
        raise UnsupportedConversionError(message(
            "A target is a framework name or module", got=repr(target),
            hint=f"one of {', '.join(FRAMEWORKS)}"))
    name = name.partition(".")[0].lower()
    name = ALIASES.get(name, name)
    if name not in FRAMEWORKS:
        raise UnsupportedConversionError(message(
            f"Unknown target framework {target!r}", expected=", ".join(FRAMEWORKS)))
    return name


@cache
def adapter(name: str) -> ModuleType:
    return importlib.import_module(FRAMEWORKS[name])


@cache
def installed(name: str) -> bool:
    module = adapter(name).IMPORT_NAME
    return importlib.util.find_spec(module) is not None


@cache
def edges() -> tuple[Edge, ...]:
    """Every edge of every installed framework (adapter modules never import frameworks)."""
    found: list[Edge] = []
    for name in FRAMEWORKS:
        if installed(name):
            found.extend(adapter(name).EDGES)
    names = {n for n in FRAMEWORKS if installed(n)} | {"dlpack", "cai"}
    return tuple(e for e in found if e.source in names and e.target in names)
