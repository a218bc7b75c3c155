"""``to`` and ``explain``: one plan, run or printed.

``explain(obj, target, ...)`` returns the :class:`~zerocopy.exchange.plan.Plan` for the
call, made afresh; ``to(obj, target, ...)`` runs the same plan with ``Plan.run``, kept in
the exchange's one cache (``exchange/cache.py``) per object signature, target and options,
and checks the ``copy`` promise on the result. A copy between devices is a hop of the plan
like any other (an edge with ``device`` set), with the host view before it and the route on
the new device after it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from zerocopy import _cuda, _native, copies
from zerocopy._detect import framework_of
from zerocopy.errors import (
    DeviceError,
    FrameworkError,
    FrameworkNotInstalledError,
    InvalidArgumentError,
    NotZeroCopyError,
    OutOfMemoryError,
    UnsupportedConversionError,
    UnsupportedObjectError,
    ZeroCopyError,
    did_you_mean,
    message,
)
from zerocopy.exchange import cache
from zerocopy.exchange.edges import Edge, Options
from zerocopy.exchange.info import Info
from zerocopy.exchange.plan import Guarded, Hop, Plan, make_plan
from zerocopy.registry import ALIASES, DEVICE_ONLY, FRAMEWORKS, HOST_ONLY, adapter, edges, installed, resolve

__all__ = ["clear_caches", "explain", "inspect", "to"]

# The plan cache's markers: this choice depends on the pointer (one plan per alignment), or
# on the object itself across a device move (planned on every call, as explain() does).
_ALIGNMENT_BIT = "aligned"
_THIS_OBJECT_ONLY = "this object only"
_OPTIONS = {None: Options(), True: Options(copy=True), False: Options(copy=False)}


def clear_caches() -> None:
    """Forget every route and plan ``to`` learned (the next calls plan afresh).

    Plans are kept per object signature, target and options, in one bounded cache. Call
    this after changing a setting a plan depended on (``jax_enable_x64``, a framework
    installed or patched while the program runs); tests call it between cases."""
    cache.clear()


class _Reader(NamedTuple):
    """How to read objects of one class: its adapter's ``inspect``, ``fast_key`` (a cheap
    tuple that decides the plan as fully as the Info does but for alignment, or None) and
    ``fast_pointer`` (where the data of an object with a fast key starts, as ``Info.ptr``
    says, or None: plans chosen by alignment then stay out of the fast lane)."""

    inspect: Callable[[Any], Info]
    fast_key: Callable[[Any], Any] | None
    fast_pointer: Callable[[Any], int | None] | None


_get = cache.get  # the fast lane's one lookup (the store clears in place: always current)


def _reader(obj: Any) -> _Reader:
    kind: Any = type(obj)  # a class is hashable (mypy's Hashable does not see type[Any] so)
    reader = cache.get(kind)
    if reader is None:
        name = framework_of(obj)
        if name is None:
            raise UnsupportedObjectError(message(
                "Not an array, column or table of a supported framework",
                got=f"{kind.__module__}.{kind.__qualname__}",
                hint="lists, scalars and None are not zero-copy sources: wrap them with np.asarray first"))
        module = adapter(name)
        reader = cache.put(kind, _Reader(module.inspect, getattr(module, "fast_key", None),
                                         getattr(module, "fast_pointer", None)))
    return reader


def inspect(obj: Any) -> Info:
    """Facts zerocopy reads about ``obj`` (framework, kind, dtype, layout, flags)."""
    return _reader(obj).inspect(obj)


def _installed_target(name: str) -> str:
    if not installed(name):
        raise FrameworkNotInstalledError(message(
            f"The target {name} is not installed here",
            hint=f"pip install {adapter(name).PIP}; zerocopy.frameworks() lists what is installed"))
    return name


def resolve_target(target: Any) -> str:
    """The framework a target names (a name, an alias or the module), or a typed error that
    says what came and the closest valid names (``to``, ``explain`` and the layout API's
    ``to=`` all read targets here)."""
    try:
        return resolve(target)
    except UnsupportedConversionError as exc:
        spelling = getattr(target, "__name__", target)
        if not isinstance(spelling, str):
            raise
        guess = did_you_mean(spelling.partition(".")[0], {**{n: n for n in FRAMEWORKS}, **ALIASES})
        raise UnsupportedConversionError(message(
            f"Unknown target framework {target!r}", expected=f"one of {', '.join(FRAMEWORKS)} "
            "(or an alias: np, pt, tf, pd, pl, pa...)", got=repr(target),
            hint=f"{guess + ' ' if guess else ''}zerocopy.frameworks() lists what is installed "
                 "here")) from exc


def _target_name(target: str) -> str:
    name = cache.get(("target", target))
    if name is None:
        name = cache.put(("target", target), _installed_target(resolve_target(target)))
    return name


def checked_copy(copy: Any) -> bool | None:
    """``copy`` itself when it is None, True or False, else :class:`InvalidArgumentError`:
    it decides whether memory may be shared, so a truthy string or 1 must not guess. Every
    public call with a ``copy`` argument checks it here (the layout API too)."""
    if copy is None or copy is True or copy is False:
        return copy
    raise InvalidArgumentError(message(
        "copy must be None, True or False", got=repr(copy),
        hint="None: share when possible, else copy (explain() says why); False: share or raise "
             "NotZeroCopyError; True: always an independent copy"))


# ---------------------------------------------------------------- one plan per call shape

def _plan(info: Info, name: str, options: Options, move: tuple[str, tuple[str, int]] | None) -> Plan:
    """The plan for this object: the route the planner picks, or, across devices, a host
    view (where the target copies onto the device), the device copy, then the route on the
    new device. Each hop runs on the GPU that holds its data where there are several."""
    if move is None:
        chosen = make_plan(edges(), info, name, options)
    else:
        chosen = _moving_plan(info, name, options, *move)
    on_gpu = [hop.before.device[0] != "cpu" and hop.edge.device is None for hop in chosen.hops]
    if any(on_gpu) and not _cuda.single_gpu():  # the mover picks its devices itself
        chosen = replace(chosen, hops=tuple(replace(hop, gpu=hop.before.device[1]) if gpu else hop
                                            for hop, gpu in zip(chosen.hops, on_gpu, strict=True)))
    return chosen


def _moving_plan(info: Info, name: str, options: Options, mover: str, want: tuple[str, int]) -> Plan:
    where = "cpu" if want[0] == "cpu" else f"cuda:{want[1]}"
    view = None
    if mover != info.framework:  # the target copies host data onto the device: from a host view
        view = make_plan(edges(), info, "numpy", Options())
    current = view.hops[-1].after if view is not None and view.hops else info
    edge = Edge(current.framework, _moved_framework(mover, want), "device copy",
                f"{mover}: copy to {where}" + (" (through a host view)" if view is not None else ""),
                _mover(mover, want), copies=True, cost=10.0, device=want)
    moved = Hop(edge, current, edge.after(current), Options(options.copy))
    # The moved data is a fresh buffer of our own: the rest shares it where it can.
    rest = make_plan(edges(), moved.after, name,
                     Options(None if options.copy is not False else False, None, options.stream))
    why = ("asked for with device=" + repr(options.device) if options.device is not None
           else f"{name} cannot hold data on {info.device[0]}")
    before = view.hops if view is not None else ()
    return Plan(info, name, options, (*before, moved, *rest.hops),
                [f"moved to {where} on purpose ({why}): a copy of {info.nbytes} bytes",
                 *(view.caveats if view is not None else ()), *rest.caveats],
                [*(view.rejected if view is not None else ()), *rest.rejected])


def _mover(mover: str, want: tuple[str, int]) -> Callable[[Any, Options], Any]:
    def move(x: Any, options: Options) -> Any:
        return adapter(mover).move(x, want)

    return move


def _tried(chosen: Plan) -> list[tuple[Edge, ...]]:
    return [route for route, _ in chosen.rejected] + [tuple(h.edge for h in chosen.hops)]


def _object_sensitive(chosen: Plan) -> bool:
    """Did a check read the object itself (where a table's columns lie)? Only edges whose
    check ran count (a quiet refusal ran none at its hop)."""
    checked = [route[:len(route) - refusal.left - refusal.quiet] for route, refusal in chosen.rejected]
    checked.append(tuple(h.edge for h in chosen.hops))
    return any(e.reads_object for route in checked for e in route)


def _pointer_sensitive(chosen: Plan) -> bool:
    """Did alignment take part in this choice (a route read the pointer before or in the
    chosen one)? Then the cache keeps one choice per alignment."""
    return any(e.needs_pointer for route in _tried(chosen) for e in route)


# What took part in choosing a plan besides the object's signature, target and options
# (what _cached_plan says; the fast lane keeps plans of the first two kinds).
_SIGNATURE, _ALIGNMENT, _OBJECT = "signature", "alignment", "object"


def _cached_plan(info: Info, name: str, options: Options) -> tuple[Plan, str]:
    """(the plan for this object's signature, target and options, what else took part in
    choosing it: _SIGNATURE nothing, _ALIGNMENT the pointer's, _OBJECT the object itself).
    A miss plans afresh and keeps the plan without the object; a plan whose checks read
    the object itself is kept with those checks (:class:`~zerocopy.exchange.plan.Guarded`),
    which run again for the next object."""
    move = _move_for(info, name, options) if _may_move(info, name, options) else None
    # The key holds the resolved move too: a device chosen as "the current one" is part of
    # the plan, not of the arguments. A stream in the key is kept alive while its plan is
    # cached (bounded; streams are few and long-lived).
    key: tuple[Any, ...] = ("plan", info.signature(), name, options.copy, options.device,
                            options.stream, move)
    try:
        chosen = cache.get(key)
    except TypeError:  # an unhashable device or stream spelling: planned on every call
        return _plan(info, name, options, move), _OBJECT
    sensitive = chosen is _ALIGNMENT_BIT
    if sensitive:  # one entry per alignment
        key = (*key, info.ptr % 64 == 0)
        chosen = cache.get(key)
    if chosen is _THIS_OBJECT_ONLY:
        return _plan(info, name, options, move), _OBJECT
    if type(chosen) is Guarded:
        if chosen.holds(info):
            return chosen.plan, _OBJECT
        chosen = None  # another route for this object: plan afresh, keep the newer plan
    if chosen is None:
        chosen = _plan(info, name, options, move)
        if not sensitive and _pointer_sensitive(chosen):
            cache.put(key, _ALIGNMENT_BIT)
            key, sensitive = (*key, info.ptr % 64 == 0), True
        if chosen.moves:  # several plannings, on several objects' facts: no guard
            if _object_sensitive(chosen):
                cache.put(key, _THIS_OBJECT_ONLY)
                return chosen, _OBJECT
        else:
            guarded = Guarded.of(chosen)
            if guarded is not None:
                cache.put(key, guarded)
                return chosen, _OBJECT
        cache.put(key, chosen.detached())
    return chosen, _ALIGNMENT if sensitive else _SIGNATURE


def plan(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
         stream: Any = None) -> Plan:
    """The plan for ``obj`` -> ``target`` made afresh for this object (what ``explain``
    returns; ``to`` runs the same plan, kept per signature)."""
    options = Options(copy=checked_copy(copy), device=device, stream=stream)
    info, name = inspect(obj), _installed_target(resolve_target(target))
    move = _move_for(info, name, options) if _may_move(info, name, options) else None
    return _plan(info, name, options, move)


# ---------------------------------------------------------------- devices

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


def _may_move(info: Info, name: str, options: Options) -> bool:
    return options.device is not None or info.device[0] != "cpu" or name in DEVICE_ONLY


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


# ---------------------------------------------------------------- to

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
        # The fast lane, written out here because it is the whole call for a repeated
        # conversion: a fast key (the adapter's cheap tuple that decides the route as fully
        # as the Info does) finds the plan without inspect(). Only a plain bool or None
        # copy looks it up: 1 == True would find True's plan. With the C extension the
        # same lane runs in C (_lane.c); MISS sends the call on to the planner.
        lane = None
        if device is None and stream is None and (copy is None or copy is False or copy is True):
            if _c_lane is not None:
                out = _c_lane(obj, target, copy)
                if out is not _MISS:
                    return out
                return _to(obj, target, copy, device, stream, None)
            kind: Any = type(obj)
            reader = _get(kind)
            if reader is not None and reader.fast_key is not None:
                fast = reader.fast_key(obj)
                if fast is not None:
                    lane = (kind, fast, target, copy)
                    chosen = _get(lane)
                    if chosen is _ALIGNMENT_BIT:  # one plan per alignment: where is the data?
                        where = reader.fast_pointer(obj) if reader.fast_pointer is not None else None
                        chosen = _get((*lane, where % 64 == 0)) if where is not None else None
                    if chosen is not None:
                        return chosen.fast(obj) if chosen.runs_alone else _run(obj, chosen, None)
        return _to(obj, target, copy, device, stream, lane)
    except ZeroCopyError:
        raise
    except Exception as exc:
        raise _typed(exc, obj, target) from exc


def _bind_c_lane() -> tuple[Any, Any]:
    """The C fast lane bound to this module's store, marker and ``_run`` (or (None, None)
    on the pure-Python path)."""
    speedups = _native.speedups()
    if speedups is None:
        return None, None
    speedups.lane_setup(cache.items(), _ALIGNMENT_BIT, _run)
    return speedups.lane, speedups.MISS


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


def _to(obj: Any, target: Any, copy: bool | None, device: Any, stream: Any,
        lane: tuple[Any, ...] | None = None) -> Any:
    """``to`` past the fast lane: inspect, find or make the plan, run it. ``lane``: the
    fast-lane key ``to`` computed (None: not computed yet, or the call cannot take it)."""
    if copy is not None and copy is not True and copy is not False:
        checked_copy(copy)
    kind: Any = type(obj)
    reader = _get(kind) or _reader(obj)
    if lane is None and device is None and stream is None and reader.fast_key is not None:
        fast = reader.fast_key(obj)  # the class's first call: its reader was not known yet
        lane = (kind, fast, target, copy) if fast is not None else None
    info = reader.inspect(obj)
    name = _target_name(target) if isinstance(target, str) else _installed_target(resolve_target(target))
    options = _OPTIONS[copy] if device is None and stream is None else Options(copy, device, stream)
    chosen, decided_by = _cached_plan(info, name, options)
    # Routes that the object itself took part in, device moves and GPU switches never enter
    # the fast lane: its key holds neither the object, the current device nor the device
    # count. Routes that alignment took part in enter it one per alignment, where the
    # adapter reads the pointer cheaply (the lane's key then says "ask the pointer").
    if (lane is not None and decided_by != _OBJECT and not chosen.moves and not chosen.switches_gpu
            and isinstance(target, str | type(sys))):
        if decided_by == _SIGNATURE:
            cache.put(lane, chosen.detached())
        elif reader.fast_pointer is not None and reader.fast_pointer(obj) is not None:
            # (A None, as for a pandas frame, would make both entries dead weight, written
            # again on every call: such objects keep the slow lane.)
            cache.put(lane, _ALIGNMENT_BIT)
            cache.put((*lane, info.ptr % 64 == 0), chosen.detached())
    return _run(obj, chosen, info)


def _run(source: Any, chosen: Plan, info: Info | None) -> Any:
    """Run the plan, then check the ``copy`` promise on the result."""
    copy = chosen.options.copy
    if copies.WATCHING and copy is None and chosen.copies:
        _report_copy(source, info, chosen)  # before the work: "raise" must not copy first
    result = chosen.run(source)
    if copy is None:
        return result
    return _keep_promise(info or inspect(source), source, result, chosen, copy)


def _report_copy(source: Any, info: Info | None, chosen: Plan) -> None:
    """Tell the copy policy about a copy the caller did not ask for (a device move was
    asked for, by ``device=`` or by the target's kind of memory: not reported)."""
    if copies.copy_policy() == "allow":  # watching, but not in this thread or not any more
        return
    fresh = plan(source, chosen.target, device=chosen.options.device, stream=chosen.options.stream)
    copied = [hop for hop in fresh.hops if hop.edge.copies and hop.edge.device is None]
    if not copied:
        return
    reasons = [c.removeprefix("copied because ") for c in fresh.caveats if c.startswith("copied because")]
    copies.copied((info or fresh.source).describe(), fresh.target, sum(h.copied_bytes for h in copied),
                  reasons[0] if reasons else "no route could share this object")


def _keep_promise(info: Info, source: Any, result: Any, chosen: Plan, copy: bool) -> Any:
    """``copy=True`` never shares, ``copy=False`` never copies: checked on the result itself,
    so a framework that copies or shares behind its edge's back cannot break the promise."""
    shares = shares_memory(source, result, info)
    if shares is None or shares != copy:  # kept: copy=False shares, copy=True does not
        return result
    name = chosen.target
    if copy is False:
        raise NotZeroCopyError(message(
            f"{info.describe()} -> {name}: the sharing route copied after all "
            f"({' -> '.join([info.framework, *(h.edge.target for h in chosen.hops)])})",
            hint="pass copy=None to accept the copy; zerocopy.explain() shows the plan"))
    # copy=True and the result still shares: a framework kept a view where it was asked to
    # copy. One more copy in the target framework keeps the promise.
    again = _to(result, name, True, None, None) if chosen.hops else None
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


_c_lane, _MISS = _bind_c_lane()
