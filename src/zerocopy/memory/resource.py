"""The External Allocator Interface (EAI): one tiny protocol every pool and adaptor speaks.

The article's interface is ``allocate(bytes, stream)`` / ``deallocate(ptr, bytes, stream)``.
We add one keyword, ``framework=``, to ``allocate`` only: it names who asked, so adaptors
can account per framework. Deallocation is attributed by pointer (an adaptor remembers who
allocated what), never by context, because frees run from finalizers on whatever thread
the garbage collector happens to be on.

Pointers and streams are plain ``int`` (a ``cudaStream_t`` as an integer; ``None`` means
the legacy default stream, 0), so resources, adaptors and hooks never need each other's
types. RMM's Python package is the model: a resource, adaptors wrapping an ``upstream``,
and one current resource per device.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol, TypeVar, runtime_checkable

from zerocopy.errors import InvalidArgumentError, message

__all__ = [
    "DIRECT",
    "MemoryResource",
    "ResourceAdaptor",
    "find",
    "get_current_resource",
    "layers",
    "reset_current_resources",
    "set_current_resource",
]

# Attribution for allocations made by calling a resource directly (no framework hook).
DIRECT = "direct"

T = TypeVar("T")


@runtime_checkable
class MemoryResource(Protocol):
    """Anything with the EAI's two methods is a resource."""

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int: ...

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None: ...


class ResourceAdaptor:
    """Base of every adaptor: forwards to ``upstream``; subclasses add one concern each."""

    def __init__(self, upstream: MemoryResource) -> None:
        if not isinstance(upstream, MemoryResource):
            raise InvalidArgumentError(message("upstream must have allocate/deallocate",
                                               got=type(upstream).__name__))
        self.upstream = upstream

    def allocate(self, nbytes: int, stream: int | None = None, *,
                 framework: str | None = None) -> int:
        return self.upstream.allocate(nbytes, stream, framework=framework)

    def deallocate(self, ptr: int, nbytes: int, stream: int | None = None) -> None:
        self.upstream.deallocate(ptr, nbytes, stream)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.upstream!r})"


def layers(resource: MemoryResource) -> Iterator[MemoryResource]:
    """The resource, then its upstream, and so on down to the base resource."""
    seen: set[int] = set()
    current: MemoryResource | None = resource
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "upstream", None)


def find(resource: MemoryResource | None, kind: type[T]) -> T | None:
    """The first layer of ``resource`` that is a ``kind`` (report() uses this), or None."""
    if resource is None:
        return None
    for layer in layers(resource):
        if isinstance(layer, kind):
            return layer
    return None


# One current resource per device, as in RMM; share() sets it, report() reads it.
_current: dict[int, MemoryResource] = {}
_current_lock = threading.Lock()


def set_current_resource(resource: MemoryResource | None, device: int = 0) -> MemoryResource | None:
    """Make ``resource`` the current one for ``device``; returns the previous one (for undo)."""
    with _current_lock:
        previous = _current.pop(device, None)
        if resource is not None:
            _current[device] = resource
    return previous


def get_current_resource(device: int = 0) -> MemoryResource | None:
    """The resource share() installed for ``device``, or None when nothing is shared."""
    return _current.get(device)


def reset_current_resources() -> None:
    """Forget every current resource (tests' autouse fixture calls this)."""
    with _current_lock:
        _current.clear()
