"""``to`` and ``explain``: one plan, run or printed."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from zerocopy import _cuda, copies
from zerocopy._detect import framework_of
from zerocopy.errors import (
    DeviceError,
    FrameworkError,
    FrameworkNotInstalledError,
    InvalidArgumentError,
    NotZeroCopyError,
    OutOfMemoryError,
    UnsupportedObjectError,
    ZeroCopyError,
    message,
)
from zerocopy.exchange import cai, streams
from zerocopy.exchange.edges import Edge, Options, fresh_copy_info
from zerocopy.exchange.info import Info
from zerocopy.exchange.plan import Hop, Plan, make_plan
from zerocopy.registry import DEVICE_ONLY, HOST_ONLY, adapter, edges, installed, resolve

__all__ = ["explain", "inspect", "to"]

# Chosen routes, keyed by everything the checks read. The pointer's alignment is part of
# the key only for pairs whose checks read it.
_ROUTES: dict[tuple[Any, ...], tuple[tuple[Edge, ...], bool]] = {}
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
def _target_name(target: Any) -> str:
    return _installed_target(resolve(target))


def _installed_target(name: str) -> str:
    if not installed(name):
        raise FrameworkNotInstalledError(message(
            f"The target {name} is not installed here",
            hint=f"pip install {adapter(name).PIP}; zerocopy.frameworks() lists what is installed"))
    return name


def _checked_copy(copy: Any) -> bool | None:
    # `copy` decides whether memory may be shared: a truthy string or 1 must not guess.
    if copy is None or copy is True or copy is False:
        return copy
    raise InvalidArgumentError(message(
        "copy must be None, True or False", got=repr(copy),
        hint="None: share when possible, else copy (explain() says why); False: share or raise "
             "NotZeroCopyError; True: always an independent copy"))


def _pointer_sensitive(chosen: Plan) -> bool:
    """Did alignment take part in this choice (a route read the pointer before or in the
    chosen one)? Then the cache keeps one choice per alignment."""
    tried = [route for route, _ in chosen.rejected] + [tuple(h.edge for h in chosen.hops)]
    return any(e.needs_pointer for route in tried for e in route)


def _route_for(info: Info, name: str, copy: bool | None, device: Any,
               options: Options) -> tuple[tuple[Edge, ...], bool]:
    """(route, whether alignment took part in choosing it)."""
    key = (info.signature(), name, copy, device)
    cached = _ROUTES.get(key)
    if cached is not None and cached[1]:  # alignment-sensitive: one entry per alignment
        key = (*key, info.ptr % 64 == 0)
        cached = _ROUTES.get(key)
    if cached is None:
        chosen = make_plan(edges(), info, name, options)
        sensitive = _pointer_sensitive(chosen)
        cached = (tuple(hop.edge for hop in chosen.hops), sensitive)
        with _ROUTES_LOCK:
            if len(_ROUTES) >= _MAX_CACHED:
                _ROUTES.clear()
            if sensitive:
                _ROUTES[key[:4]] = ((), True)
                key = (*key[:4], info.ptr % 64 == 0)
            _ROUTES[key] = cached
    return cached


# The fast lane: a framework module may offer ``fast_key(obj)``, a cheap tuple that decides
# the route as fully as the object's Info does (or None: take the slow lane). Routes that
# alignment took part in, and device moves, never enter it.
_FAST_KEYERS: dict[type, Callable[[Any], Any] | None] = {}
_FAST_ROUTES: dict[tuple[Any, ...], tuple[Edge, ...]] = {}
_OPTIONS = {None: _PLAIN, True: Options(copy=True), False: Options(copy=False)}


def _fast_keyer(obj: Any) -> Callable[[Any], Any] | None:
    kind = type(obj)
    if kind not in _FAST_KEYERS:
        name = framework_of(obj)
        _FAST_KEYERS[kind] = getattr(adapter(name), "fast_key", None) if name else None
    return _FAST_KEYERS[kind]


def plan(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
         stream: Any = None) -> Plan:
    options = Options(copy=_checked_copy(copy), device=device, stream=stream)
    info, name = inspect(obj), _installed_target(resolve(target))
    move = _move_for(info, name, options)
    if move is None:
        return make_plan(edges(), info, name, options)
    mover, want = move
    after = fresh_copy_info(info, _moved_framework(mover, want))
    after.device = want
    where = "cpu" if want[0] == "cpu" else f"cuda:{want[1]}"
    edge = Edge(info.framework, after.framework, "device copy",
                f"{mover}: copy to {where}" + (" (through a host view)" if mover != info.framework else ""),
                lambda x, o: x, copies=True, cost=10.0)
    rest = make_plan(edges(), after, name, Options(None if copy is not False else False, None, stream))
    why = ("asked for with device=" + repr(device) if device is not None
           else f"{name} cannot hold data on {info.device[0]}")
    return Plan(info, name, options, (Hop(edge, info, after), *rest.hops),
                [f"moved to {where} on purpose ({why}): a copy of {info.nbytes} bytes", *rest.caveats])


def _device_of(spec: Any) -> tuple[str, int]:
    """("cpu", 0) or ("cuda", n) from "cpu", "cuda", "cuda:1", an int, or a torch/JAX device."""
    if isinstance(spec, tuple) and len(spec) == 2:
        return ("cpu", 0) if spec[0] == "cpu" else ("cuda", int(spec[1]))
    if isinstance(spec, int) and not isinstance(spec, bool):
        return ("cuda", spec)
    kind = getattr(spec, "type", None) or getattr(spec, "platform", None)
    if kind is not None:  # torch.device / jax Device
        index = getattr(spec, "index", None) if hasattr(spec, "index") else getattr(spec, "id", 0)
        text = f"{kind}:{index or 0}"
    else:
        text = str(spec)
    head, _, tail = text.lower().partition(":")
    if head == "cpu":
        return ("cpu", 0)
    if head in ("cuda", "gpu") and (not tail or tail.isdigit()):
        return ("cuda", int(tail) if tail else _current_cuda())
    raise DeviceError(message("Unknown device", got=repr(spec), expected="'cpu', 'cuda', 'cuda:N' or an int"))


def _current_cuda() -> int:
    try:
        return _cuda.current_device()
    except (ImportError, ZeroCopyError, RuntimeError) as exc:
        raise DeviceError(message(
            "No CUDA device can be used here", got=f"{type(exc).__name__}: {exc}",
            hint="GPU targets need a CUDA GPU with its driver and cupy or cuda-bindings; "
                 "use device='cpu' or a host framework")) from exc


def _moved_framework(mover: str, want: tuple[str, int]) -> str:
    # Device-only frameworks hand host copies out as NumPy arrays.
    return "numpy" if want[0] == "cpu" and mover in DEVICE_ONLY else mover


def _move_for(info: Info, name: str, options: Options) -> tuple[str, tuple[str, int]] | None:
    """(framework that copies, device) when the conversion crosses devices, else None."""
    here = ("cpu", 0) if info.device[0] == "cpu" else ("cuda", info.device[1])
    if options.device is not None:
        want = _device_of(options.device)
    elif here[0] != "cpu" and name in HOST_ONLY:
        want = ("cpu", 0)
    elif here[0] == "cpu" and name in DEVICE_ONLY:
        want = ("cuda", _current_cuda())
    else:
        return None
    if want == here:
        return None
    if (want[0] == "cpu" and name in DEVICE_ONLY) or (want[0] != "cpu" and name in HOST_ONLY):
        raise DeviceError(message(f"{name} cannot hold data on {want[0]}",
                                  hint="pick a target framework that lives on that device"))
    if options.copy is False:
        raise NotZeroCopyError(message(
            f"{info.describe()} -> {name} on {want[0]}:{want[1]} moves the data between devices, "
            "which is a copy (copy=False)",
            hint="pass copy=None to allow the copy; zerocopy.explain() shows it"))
    mover = name if here[0] == "cpu" else info.framework
    if not hasattr(adapter(mover), "move"):
        raise DeviceError(message(f"zerocopy cannot move {mover} data between devices",
                                  hint="move it with the framework's own call first"))
    return mover, want


def _run_move(obj: Any, info: Info, mover: str, want: tuple[str, int]) -> Any:
    if mover != info.framework:  # host -> device by the target: start from a host view
        obj = to(obj, "numpy")
    return adapter(mover).move(obj, want)


def to(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
       stream: Any = None) -> Any:
    """``obj`` as a native object of ``target``, sharing memory whenever possible.

    ``target``: a framework name (``"numpy"``, ``"torch"``, ``"jax"``, ``"tensorflow"``,
    ``"pyarrow"``, ``"pandas"``, ``"polars"``, ``"mxnet"``, ``"cupy"``, ``"numba"``,
    ``"cudf"``), an alias (``"np"``, ``"pytorch"``, ``"tf"``, ``"pa"``, ``"pd"``, ``"pl"``...) or
    the module itself.

    ``copy=None`` shares when layout, dtype and device allow, and copies otherwise;
    ``copy=False`` never copies and raises :class:`~zerocopy.NotZeroCopyError` naming why;
    ``copy=True`` always returns an independent copy. Both promises are checked on the
    result. The result keeps ``obj`` alive.

    Every failure is a :class:`~zerocopy.ZeroCopyError`: ``NotZeroCopyError``,
    ``NullValuesError`` (nulls have no place in an array), ``UnsupportedDtypeError`` (no
    silent casts), ``UnsupportedObjectError``, ``FrameworkNotInstalledError``,
    ``DeviceError``, ``InvalidArgumentError``, and ``FrameworkError`` when a framework
    itself fails a planned step (its own exception is the ``__cause__``).
    """
    try:
        return _to(obj, target, copy, device, stream)
    except ZeroCopyError:
        raise
    except Exception as exc:
        raise _typed(exc, obj, target) from exc


def _typed(exc: Exception, obj: Any, target: Any) -> ZeroCopyError:
    """A framework's exception as ours, so no framework error escapes ``to``/``explain``."""
    what = f"{type(obj).__module__}.{type(obj).__qualname__} -> {target!r}"
    if isinstance(exc, ModuleNotFoundError):
        return FrameworkNotInstalledError(message(
            f"A module this conversion needs is missing ({exc.name})", got=what,
            hint=f"install it (pip install {exc.name}); zerocopy.frameworks() lists what is here"))
    if isinstance(exc, MemoryError):
        return OutOfMemoryError(message("Out of memory during the conversion", got=what,
                                        hint="free memory or convert in smaller parts"))
    return FrameworkError(message(
        f"A framework failed a step of the conversion {what}: {type(exc).__name__}: {exc}",
        hint="zerocopy.explain(obj, target) shows the planned steps; please report this with "
             "that plan"))


def _to(obj: Any, target: Any, copy: bool | None, device: Any, stream: Any) -> Any:
    if copy is not None and copy is not True and copy is not False:
        _checked_copy(copy)  # before the fast lane: 1 == True would find True's route
    keyer = None
    if device is None and stream is None:
        keyer = _FAST_KEYERS.get(type(obj), _fast_keyer)
        if keyer is _fast_keyer:  # a class not seen yet
            keyer = _fast_keyer(obj)
    fast_key = keyer(obj) if keyer is not None else None
    if fast_key is not None:
        route = _FAST_ROUTES.get((type(obj), fast_key, target, copy))
        if route is not None:
            return _run(obj, route, _OPTIONS[copy], None, target, None)
    info = inspect(obj)
    name = _target_name(target) if isinstance(target, str) else _installed_target(resolve(target))
    if device is not None or info.device[0] != "cpu" or name in DEVICE_ONLY:
        move = _move_for(info, name, Options(copy, device, stream))
        if move is not None:
            moved = _run_move(obj, info, *move)
            return _to(moved, name, None if copy is not False else False, None, stream)
    options = _PLAIN if copy is None and device is None and stream is None else Options(copy, device, stream)
    route, sensitive = _route_for(info, name, copy, device, options)
    on_one_device = info.device[0] == "cpu" or _cuda.single_gpu()
    if fast_key is not None and not sensitive and on_one_device and isinstance(target, str | type(sys)):
        with _ROUTES_LOCK:
            if len(_FAST_ROUTES) >= _MAX_CACHED:
                _FAST_ROUTES.clear()
            _FAST_ROUTES[(type(obj), fast_key, target, copy)] = route
    return _run(obj, route, options, info, name, None if on_one_device else info.device[1])


def _run(source: Any, route: tuple[Edge, ...], options: Options, info: Info | None, target: Any,
         gpu: int | None) -> Any:
    """Run the route's hops (on the GPU that holds the data, with several), then check the
    ``copy`` promise on the result."""
    if copies.WATCHING and options.copy is None and any(edge.copies for edge in route):
        _report_copy(source, info, target)  # before the work: "raise" must not copy first
    obj = source
    if gpu is None:
        for edge in route:
            obj = edge.run(obj, options)
    else:
        with _cuda.on_device(gpu):  # several GPUs: convert where the data lives
            for edge in route:
                obj = edge.run(obj, options)
    if options.copy is None:
        return obj
    name = target if info is not None else _target_name(target)
    return _keep_promise(info or inspect(source), source, obj, name, options.copy, route)


def _report_copy(source: Any, info: Info | None, target: Any) -> None:
    if copies.copy_policy() == "allow":  # watching, but not in this thread or not any more
        return
    chosen = plan(source, target)
    reasons = [c.removeprefix("copied because ") for c in chosen.caveats if c.startswith("copied because")]
    copies.copied((info or chosen.source).describe(), chosen.target, chosen.copied_bytes,
                  reasons[0] if reasons else "no route could share this object")


def _keep_promise(info: Info, source: Any, result: Any, name: str, copy: bool,
                  route: tuple[Edge, ...]) -> Any:
    """``copy=True`` never shares, ``copy=False`` never copies: checked on the result itself,
    so a framework that copies or shares behind its edge's back cannot break the promise."""
    shares = shares_memory(source, result, info)
    if shares is None or shares != copy:  # kept: copy=False shares, copy=True does not
        return result
    if copy is False:
        raise NotZeroCopyError(message(
            f"{info.describe()} -> {name}: the sharing route copied after all "
            f"({' -> '.join([info.framework, *(e.target for e in route)])})",
            hint="pass copy=None to accept the copy; zerocopy.explain() shows the plan"))
    # copy=True and the result still shares: a framework kept a view where it was asked to
    # copy. One more copy in the target framework keeps the promise.
    again = _to(result, name, True, None, None) if route else None
    if again is None or shares_memory(source, again, info):
        raise FrameworkError(message(
            f"{info.describe()} -> {name}: the copy shares memory with the source",
            hint="please report this with zerocopy.explain(obj, target, copy=True)"))
    return again


def _extent(info: Info) -> tuple[int, int] | None:
    """[lo, hi) bytes an array or column spans; None where it cannot be told (tables).
    Host and device pointers live in one (unified) address space, so GPU data compares too."""
    if info.kind == "table" or info.size == 0:
        return None
    ptr = info.ptr
    if not ptr:
        return None
    lo = hi = ptr
    for n, step in zip(info.shape, info.strides or _c_strides(info), strict=True):
        if step < 0:
            lo += (n - 1) * step
        else:
            hi += (n - 1) * step
    return lo, hi + info.itemsize


def _c_strides(info: Info) -> tuple[int, ...]:
    strides, step = [], info.itemsize
    for n in reversed(info.shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def shares_memory(a: Any, b: Any, a_info: Info | None = None) -> bool | None:
    """Do ``a`` and ``b`` (objects of any supported frameworks) overlap in memory?

    True or False for arrays and columns, on the host or a GPU; None where it cannot be
    told (tables, empty data)."""
    if a is b:
        return True
    first = _extent(a_info or inspect(a))
    second = _extent(inspect(b)) if first is not None else None
    if first is None or second is None:
        return None
    return first[0] < second[1] and second[0] < first[1]


def explain(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
            stream: Any = None) -> Plan:
    """The plan ``to`` follows for these arguments: hops, protocols, copies, caveats and
    the cheaper routes that were rejected, with the reason. ``print()`` it.

    Raises what ``to`` would raise for the same arguments, before touching any data."""
    try:
        return plan(obj, target, copy=copy, device=device, stream=stream)
    except ZeroCopyError:
        raise
    except Exception as exc:
        raise _typed(exc, obj, target) from exc
