"""The frameworks zerocopy knows: one record of facts each, the only list of them.

Adding a framework is one record here, one adapter module (``adapters/<name>.py``) and,
for a framework with its own GPU memory pool, one hook module (``memory/hooks/<name>.py``).
Detection, ``resolve``, the memory hooks, pool governance, the command line, the
benchmarks' defaults, the layout targets, ``zerocopy.dask``'s serializers and the import
test all read this table.

This module is the ground floor: importing it imports no framework and no other zerocopy
module but ``errors``. Adapter modules are imported only when ``adapter(name)`` is called.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Container, Iterable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from zerocopy.errors import InvalidArgumentError, UnsupportedConversionError, message

if TYPE_CHECKING:
    from zerocopy.exchange.edges import Edge

__all__ = ["ALIASES", "CPU_FRAMEWORKS", "DEVICE_ONLY", "FRAMEWORKS", "GPU_FRAMEWORKS", "HOOKS",
           "HOST_ONLY", "RECORDS", "DaskSerializer", "Framework", "adapter", "edges", "installed",
           "names", "record", "resolve"]

Memory = Literal["host", "device", "both"]
Kind = Literal["array", "column", "table"]  # the kinds of zerocopy.exchange.info.Info
Family = Literal["dask", "cuda"]  # distributed's serializer families


@dataclass(frozen=True, kw_only=True)
class DaskSerializer:
    """How ``zerocopy.dask`` carries a framework's tensors between workers.

    ``families``: distributed's families zerocopy registers for it, ``"dask"`` (one host
    frame, any transport) and/or ``"cuda"`` (one device frame, UCX and the like); a family
    left out keeps distributed's own serializer. ``class_modules``: the top-level modules of
    the classes its adapter's ``tensor_classes()`` returns, where distributed waits
    (``register_lazy``) for the first one it meets, so registering imports nothing; the first
    is the one whose presence in ``sys.modules`` means the framework is imported.
    ``distributed_module``: distributed's own serializer module for it, imported before ours
    are registered so that it never overwrites them later."""

    families: tuple[Family, ...]
    class_modules: tuple[str, ...]
    distributed_module: str | None = None


@dataclass(frozen=True, kw_only=True)
class Framework:
    """The facts about one framework that code outside its adapter needs."""

    name: str                   # the name zerocopy.to, the CLI and the reports use
    import_name: str            # installed means: this module can be found (nothing imported)
    pip: str                    # what to install (also the install hint)
    modules: tuple[str, ...]    # top-level modules its classes come from (detection)
    memory: Memory              # where its objects can live; host-only and device-only
                                # frameworks reach the other side only through a copy
    kinds: tuple[Kind, ...]     # what its objects are, first the one `to(array, name)` gives
    adapter_module: str
    hook_module: str | None = None   # routing to the shared GPU pool (None: no pool of its own)
    aliases: tuple[str, ...] = ()    # other spellings people type (np, tf, pd ...)
    main_env: bool = True       # installs beside the others; False: tests run in an env of its own
    device_probe: bool = False  # zerocopy.testing builds device arrays of it (the GPU matrix)
    dask: DaskSerializer | None = None  # zerocopy.dask's serializers carry its tensors

    def loaded(self, modules: Container[str]) -> bool:
        """True if one of its modules is in ``modules`` (pass ``sys.modules``: nothing is imported)."""
        return any(module in modules for module in self.modules)


_ADAPTERS = "zerocopy.adapters"
_HOOKS = "zerocopy.memory.hooks"

RECORDS: tuple[Framework, ...] = (
    Framework(name="numpy", import_name="numpy", pip="numpy", aliases=("np",),
              modules=("numpy",), memory="host", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.numpy"),
    Framework(name="torch", import_name="torch", pip="torch", aliases=("pytorch", "pt"),
              modules=("torch",), memory="both", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.torch", hook_module=f"{_HOOKS}.torch",
              device_probe=True,
              dask=DaskSerializer(families=("dask", "cuda"), class_modules=("torch",),
                                  distributed_module="distributed.protocol.torch")),
    # JAX arrays are classes of the private top-level package jaxlib.
    Framework(name="jax", import_name="jax", pip="jax", aliases=("jnp",),
              modules=("jax", "jaxlib"), memory="both", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.jax", hook_module=f"{_HOOKS}.jax",
              device_probe=True,
              dask=DaskSerializer(families=("dask", "cuda"), class_modules=("jax", "jaxlib"))),
    # Keras 3 tensors under TensorFlow are TensorFlow's. GPU TensorFlow is
    # tensorflow[and-cuda] (CUDA 12 libraries); scripts/gpu-check runs it on its own path.
    Framework(name="tensorflow", import_name="tensorflow", pip="tensorflow-cpu", aliases=("tf",),
              modules=("tensorflow", "keras"), memory="both", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.tensorflow", hook_module=f"{_HOOKS}.tensorflow",
              device_probe=True,
              # not keras: a Keras object would make distributed import TensorFlow for it
              dask=DaskSerializer(families=("dask",), class_modules=("tensorflow",))),
    # Arrow arrays are columns; a pa.Tensor is an array.
    Framework(name="pyarrow", import_name="pyarrow", pip="pyarrow", aliases=("arrow", "pa"),
              modules=("pyarrow",), memory="host", kinds=("column", "table", "array"),
              adapter_module=f"{_ADAPTERS}.pyarrow"),
    Framework(name="pandas", import_name="pandas", pip="pandas", aliases=("pd",),
              modules=("pandas",), memory="host", kinds=("column", "table"),
              adapter_module=f"{_ADAPTERS}.pandas"),
    Framework(name="polars", import_name="polars", pip="polars", aliases=("pl",),
              modules=("polars",), memory="host", kinds=("column", "table"),
              adapter_module=f"{_ADAPTERS}.polars"),
    # MXNet 1.9.1 (retired) needs NumPy < 1.24: its tests run in tests/mxnet_env.
    Framework(name="mxnet", import_name="mxnet", pip="mxnet==1.9.1 (needs numpy<1.24)",
              aliases=("mx",), modules=("mxnet",), memory="both", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.mxnet", main_env=False),
    Framework(name="cupy", import_name="cupy", pip="cupy-cuda13x", aliases=("cp",),
              modules=("cupy", "cupy_backends"), memory="device", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.cupy", hook_module=f"{_HOOKS}.cupy",
              device_probe=True,
              # Dask's own host path for CuPy and Numba (staged once) is kept: only "cuda"
              dask=DaskSerializer(families=("cuda",), class_modules=("cupy",),
                                  distributed_module="distributed.protocol.cupy")),
    # Numba's CUDA target is the numba-cuda package (top-level numba_cuda, seen as numba.cuda).
    Framework(name="numba", import_name="numba_cuda", pip="numba-cuda",
              modules=("numba", "numba_cuda"), memory="device", kinds=("array",),
              adapter_module=f"{_ADAPTERS}.numba", hook_module=f"{_HOOKS}.numba",
              device_probe=True,
              # Where numba-cuda's DeviceNDArray says it lives varies by release (numba.cuda
              # or numba_cuda.numba.cuda): distributed waits on both top-level names.
              dask=DaskSerializer(families=("cuda",), class_modules=("numba", "numba_cuda"),
                                  distributed_module="distributed.protocol.numba")),
    # cuDF 26.10 needs NumPy < 2.5 (numba-cuda, which it imports, fails on 2.5).
    Framework(name="cudf", import_name="cudf", pip="cudf-cu13",
              modules=("cudf",), memory="device", kinds=("column", "table"),
              adapter_module=f"{_ADAPTERS}.cudf", hook_module=f"{_HOOKS}.cudf",
              device_probe=True),
)

_BY_NAME: dict[str, Framework] = {r.name: r for r in RECORDS}
# Every spelling resolve() accepts, lower case: names, aliases and class modules.
_SPELLINGS: dict[str, str] = {
    **{module: r.name for r in RECORDS for module in r.modules},
    **{alias: r.name for r in RECORDS for alias in r.aliases},
    **{r.name: r.name for r in RECORDS},
}


def record(name: str) -> Framework:
    """The record of the framework called ``name`` (exactly; see ``resolve`` for aliases)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InvalidArgumentError(message(
            f"Unknown framework {name!r}", expected=", ".join(_BY_NAME),
            hint="registry.resolve() also accepts aliases and modules")) from None


def names(*, memory: Memory | Iterable[Memory] | None = None, kind: Kind | None = None,
          hook: bool | None = None, main_env: bool | None = None,
          device_probe: bool | None = None, installed: bool | None = None) -> tuple[str, ...]:
    """Framework names in table order, each filter applied when given.

    ``memory`` is one kind or several (``("host", "both")``: frameworks whose objects can
    live in host memory); ``kind`` keeps frameworks that have objects of that kind;
    ``installed`` asks ``find_spec`` (nothing is imported)."""
    wanted = (memory,) if isinstance(memory, str) else None if memory is None else tuple(memory)
    return tuple(
        r.name for r in RECORDS
        if (wanted is None or r.memory in wanted)
        and (kind is None or kind in r.kinds)
        and (hook is None or (r.hook_module is not None) == hook)
        and (main_env is None or r.main_env == main_env)
        and (device_probe is None or r.device_probe == device_probe)
        and (installed is None or _is_installed(r.name) == installed))


def resolve(target: object) -> str:
    """Framework name of a target given as a name, an alias or the module itself."""
    name = getattr(target, "__name__", target)
    if not isinstance(name, str):
        raise UnsupportedConversionError(message(
            "A target is a framework name or module", got=repr(target),
            hint=f"one of {', '.join(_BY_NAME)}"))
    found = _SPELLINGS.get(name.partition(".")[0].lower())
    if found is None:
        raise UnsupportedConversionError(message(
            f"Unknown target framework {target!r}", expected=", ".join(_BY_NAME)))
    return found


@cache
def adapter(name: str) -> ModuleType:
    """The adapter module of ``name`` (imports the module, never the framework)."""
    return importlib.import_module(record(name).adapter_module)


@cache
def installed(name: str) -> bool:
    """Whether the framework can be imported here (asked of find_spec; nothing is imported)."""
    return importlib.util.find_spec(record(name).import_name) is not None


_is_installed = installed  # names() has a parameter of the same name


# edges() lives here rather than in exchange/ because it is a question about the table
# (which frameworks are installed, and what each adapter declares), like installed();
# exchange/ asks it and keeps no list of frameworks of its own. The adapter modules it
# imports are imported at call time, so this module stays the ground floor.
@cache
def edges() -> tuple[Edge, ...]:
    """Every edge of every installed framework whose ends are installed (or a protocol)."""
    here = names(installed=True)
    found = [edge for name in here for edge in adapter(name).EDGES]
    ends = {*here, "dlpack", "cai"}  # protocols are ends too: framework -> dlpack -> framework
    return tuple(e for e in found if e.source in ends and e.target in ends)


# Derived views, for code that wants a plain tuple or mapping.
FRAMEWORKS: dict[str, str] = {r.name: r.adapter_module for r in RECORDS}
ALIASES: dict[str, str] = {s: n for s, n in _SPELLINGS.items() if s != n}
HOOKS: dict[str, str] = {r.name: r.hook_module for r in RECORDS if r.hook_module is not None}
CPU_FRAMEWORKS = names(memory=("host", "both"))   # their objects can live in host memory
GPU_FRAMEWORKS = names(memory=("device", "both"))  # their objects can live in CUDA memory
HOST_ONLY = names(memory="host")      # device data reaches them only by a copy
DEVICE_ONLY = names(memory="device")  # host data reaches them only by a copy
