"""Small pieces every framework module uses: lazy imports, capsule carriers, and the
checks of tables made of flat columns."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from zerocopy.errors import (
    FrameworkNotInstalledError,
    LayoutError,
    UnsupportedConversionError,
    message,
)

__all__ = ["CapsuleProducer", "check_flat_columns", "require"]


# Modules seen fully imported: the hot path (every conversion step) asks only whether
# sys.modules still holds the same object.
_READY: dict[str, ModuleType] = {}


def require(module_name: str, pip_name: str | None = None) -> ModuleType:
    """Import a framework on first use, or raise the typed error with an install hint."""
    module = sys.modules.get(module_name)
    if module is not None and _READY.get(module_name) is module:
        return module
    # A module another thread is still importing is in sys.modules half-built; import_module
    # waits for that thread (the import lock), so only a finished module takes the shortcut.
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        _READY[module_name] = module
        return module
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise FrameworkNotInstalledError(message(
            f"{module_name} is needed for this conversion but is not installed",
            hint=f"pip install {pip_name or module_name}")) from exc


class CapsuleProducer:
    """Presents a raw DLPack capsule (MXNet and TensorFlow hand those out) as an object with
    ``__dlpack__``, which is what NumPy's and JAX's importers take. One use only, like the
    capsule itself."""

    __slots__ = ("_capsule", "_device", "owner")

    def __init__(self, capsule: Any, device: tuple[int, int], owner: Any) -> None:
        self._capsule, self._device, self.owner = capsule, device, owner

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device

    def __dlpack__(self, **kwargs: Any) -> Any:
        capsule, self._capsule = self._capsule, None
        if capsule is None:
            raise BufferError("this DLPack capsule was already consumed")
        return capsule


def repeated_names(names: Iterable[Any]) -> tuple[Any, ...]:
    """The column names a table holds more than once, each once, in order of first repeat
    (pandas and Arrow allow them; Polars, and anything keyed by name, cannot)."""
    names = list(names)
    if len(set(names)) == len(names):  # the common case, in C
        return ()
    seen: set[Any] = set()
    repeated: dict[Any, None] = {}
    for name in names:
        if name in seen:
            repeated[name] = None
        seen.add(name)
    return tuple(repeated)


def check_flat_columns(framework: str, kind: str | None, names: Any, arrays: Any) -> None:
    """Refuse, with typed errors, what a DataFrame of flat columns cannot be made of: a
    table type other than DataFrame, and fixed-size array columns (pandas and cuDF alike)."""
    if kind not in (None, "DataFrame"):
        raise UnsupportedConversionError(message(f"{framework} has no table type {kind!r}",
                                                 expected="DataFrame", got=repr(kind)))
    for name, array in zip(names, arrays, strict=True):
        if array.ndim != 1:
            raise LayoutError(message(
                f"column {name!r} is a fixed-size array column, which {framework} cannot hold",
                expected="1-D columns", got=f"shape {tuple(array.shape)}",
                hint="use to='pyarrow' (FixedSizeList) or to='polars' (Array)"))
