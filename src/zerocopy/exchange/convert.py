"""``to`` and ``explain``: one plan, run or printed."""

from __future__ import annotations

import threading
from functools import cache
from collections.abc import Callable
from typing import Any

from zerocopy._detect import framework_of
from zerocopy.errors import UnsupportedObjectError, message
from zerocopy.exchange.edges import Edge, Options
from zerocopy.exchange.info import Info
from zerocopy.exchange.plan import Plan, make_plan, routes
from zerocopy.frameworks import adapter, edges, resolve

__all__ = ["explain", "inspect", "to"]

# Chosen routes, keyed by everything the checks read. The pointer's alignment is part of
# the key only for pairs whose checks read it.
_ROUTES: dict[tuple[Any, ...], tuple[tuple[Edge, ...], tuple[str, ...]]] = {}
_ROUTES_LOCK = threading.Lock()
_MAX_CACHED = 4096
_PLAIN = Options()


_INSPECTORS: dict[type, Callable[[Any], Info]] = {}


def inspect(obj: Any) -> Info:
    """Facts zerocopy reads about ``obj`` (framework, kind, dtype, layout, flags)."""
    inspector = _INSPECTORS.get(type(obj))
    if inspector is None:
        name = framework_of(obj)
        if name is None:
            raise UnsupportedObjectError(message(
                "Not an array, column or table of a supported framework",
                got=f"{type(obj).__module__}.{type(obj).__qualname__}",
                hint="lists, scalars and None are not zero-copy sources: wrap them with np.asarray first"))
        inspector = _INSPECTORS[type(obj)] = adapter(name).inspect
    return inspector(obj)


@cache
def _needs_pointer(source: str, target: str) -> bool:
    return any(e.needs_pointer for route in routes(edges(), source, target) for e in route)


@cache
def _target_name(target: Any) -> str:
    return resolve(target)


def _key(info: Info, target: str, copy: bool | None, device: Any) -> tuple[Any, ...]:
    aligned = (info.ptr % 64 == 0) if _needs_pointer(info.framework, target) else None
    return (info.signature(), target, copy, device, aligned)


def plan(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
         stream: Any = None) -> Plan:
    options = Options(copy=copy, device=device, stream=stream)
    return make_plan(edges(), inspect(obj), resolve(target), options)


def to(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
       stream: Any = None) -> Any:
    """``obj`` as a native object of ``target``, sharing memory whenever possible.

    ``copy=None`` shares when layout, dtype and device allow, and copies otherwise;
    ``copy=False`` never copies and raises :class:`~zerocopy.NotZeroCopyError` naming why;
    ``copy=True`` always returns an independent copy. The result keeps ``obj`` alive.
    """
    info = inspect(obj)
    name = _target_name(target) if isinstance(target, str) else resolve(target)
    options = _PLAIN if copy is None and device is None and stream is None else Options(copy, device, stream)
    key = _key(info, name, copy, device)
    cached = _ROUTES.get(key)
    if cached is None:
        chosen = make_plan(edges(), info, name, options)
        cached = (tuple(hop.edge for hop in chosen.hops), tuple(chosen.caveats))
        with _ROUTES_LOCK:
            if len(_ROUTES) >= _MAX_CACHED:
                _ROUTES.clear()
            _ROUTES[key] = cached
    for edge in cached[0]:
        obj = edge.run(obj, options)
    return obj


def explain(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
            stream: Any = None) -> Plan:
    """The plan ``to`` follows for these arguments: hops, protocols, copies, caveats and
    the cheaper routes that were rejected, with the reason. ``print()`` it."""
    return plan(obj, target, copy=copy, device=device, stream=stream)
