"""Which framework does an object belong to? Decided from its class, through ``sys.modules``.

Detection never imports a framework: if a class's top-level module is not imported, the
object cannot be of that framework. The answer is cached per class.
"""

from __future__ import annotations

from functools import lru_cache

from zerocopy.registry import RECORDS

__all__ = ["framework_of", "top_module"]

# Top-level module of a class -> framework name, from the registry's records. Several
# frameworks ship their classes from private top-level packages (jax arrays from ``jaxlib``).
_MODULE_TO_FRAMEWORK: dict[str, str] = {
    module: framework.name for framework in RECORDS for module in framework.modules}


def top_module(cls: type) -> str:
    return (cls.__module__ or "").partition(".")[0]


@lru_cache(maxsize=512)
def _framework_of_class(cls: type) -> str | None:
    for klass in cls.__mro__:
        name = _MODULE_TO_FRAMEWORK.get(top_module(klass))
        if name is not None:
            return name
    return None


def framework_of(obj: object) -> str | None:
    """Name of the framework whose type ``obj`` is, or None if it is of none we know."""
    cls: type = type(obj)
    return _framework_of_class(cls)
