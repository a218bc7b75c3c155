"""Conversion edges as data.

An :class:`Edge` is one hop a framework can take: from ``source`` to ``target`` through a
protocol, with the one-liner it stands for, whether it copies, a rough cost, and a check
that reads an :class:`~zerocopy.exchange.info.Info` and says why the hop cannot share
memory (a :class:`Refusal`). Framework modules declare their edges; the planner
(``plan.py``) is generic and knows no framework by name.

Two virtual nodes join many frameworks at once: ``"dlpack"`` (any object that speaks
``__dlpack__``) and, on GPUs, ``"cai"`` (the CUDA Array Interface).

A copy between devices is an edge too (``device`` set: where the copy lands). Such edges
are not in the graph the planner searches: ``zerocopy.to`` adds one to a plan when the
caller asks for a device or the target lives only on the other side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from zerocopy.exchange.info import ARRAY, Info

__all__ = ["CAI", "DECLINED", "DLPACK", "PASS", "SAME", "Edge", "Options", "Refusal", "fresh_copy_info",
           "moved_info"]

DLPACK = "dlpack"
CAI = "cai"


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"zerocopy.exchange.edges.{self.name}"


# What a specialised hop (Edge.fast) may answer for an object it does not take on this call
# (a stream to order): the plan's full run() takes the call instead.
DECLINED = _Marker("DECLINED")
# What Edge.fast gives for a hop that hands its input on unchanged: left out of the chain.
SAME = _Marker("SAME")
# What Edge.fast may give for a hop whose work the next hop does itself when it reads the
# source directly (a producer's interface export before a hop that hands the pointer
# over): the hop is left out, but only before a hop whose call may decline.
PASS = _Marker("PASS")


@dataclass(frozen=True)
class Options:
    copy: bool | None = None
    device: Any = None
    stream: Any = None


@dataclass(frozen=True)
class Refusal:
    """Why a hop cannot share this object's memory.

    ``fixable``: a fresh compact, aligned, writable copy would make the hop work (so with
    ``copy=None`` the planner may copy); otherwise (dtype, nulls, device) no copy helps.
    ``error``: the exception class to raise when nothing works.
    """

    reason: str
    hint: str = ""
    fixable: bool = True
    error: type[Exception] | None = None
    quiet: bool = False  # a route that never applied to this kind of object: not worth showing
    left: int = 0  # hops of its route after the refusing one (nearest the target: the real reason)


Check = Callable[[Info, Options], Refusal | None]


def _no_check(info: Info, options: Options) -> Refusal | None:
    return None


def _same(info: Info, target: str, kind: str | None) -> Info:
    return moved_info(info, target, kind)


@dataclass(frozen=True, eq=False)  # identity hash: edges key caches on the hot path
class Edge:
    source: str
    target: str
    protocol: str
    call: str
    run: Callable[[Any, Options], Any]
    check: Check = _no_check
    copies: bool = False
    cost: float = 1.0
    kinds: frozenset[str] = frozenset({ARRAY})
    result_kind: str | None = None
    caveat: Callable[[Info], str | None] | None = None
    # The check reads the data pointer (alignment): plans for such pairs are cached per
    # alignment too.
    needs_pointer: bool = False
    # The check reads the object itself, beyond its Info (where a table's columns lie):
    # a plan that tried this edge holds for this object only and is never cached.
    reads_object: bool = False
    project: Callable[[Info, str, str | None], Info] = field(default=_same, repr=False)
    # A copy into a framework whose memory is immutable (Arrow, Polars, pandas views, JAX,
    # TensorFlow) is fresh but read-only: the next hop must not be planned as writable.
    immutable_result: bool = False
    # A copy to another device: ("cpu", 0) or ("cuda", n), where the result lives.
    device: tuple[str, int] | None = None
    # The hop specialised at plan time: given the facts before it and the plan's source
    # framework, a one-argument call that does what ``run`` does for objects with those
    # facts (the framework's own one-liner where nothing else is left to decide), or None.
    # The fast lane runs plans of such hops without ``run``'s per-call branches (a plan is
    # cached per signature, so the facts it was specialised for hold for every object that
    # reaches it). A call with ``may_decline = True`` may answer DECLINED (the plan's run()
    # takes that call); SAME and PASS: see their comments.
    fast: Callable[[Info, str], Any] | None = field(default=None, repr=False)

    def after(self, info: Info) -> Info:
        """The facts of the object this hop produces, without running it."""
        if not self.copies:
            return self.project(info, self.target, self.result_kind)
        new = fresh_copy_info(info, self.target, self.result_kind)
        new.readonly = self.immutable_result
        if self.device is None:
            new.extra["copied"] = self.target  # who allocated it (alignment of empty data)
        else:
            # The framework's own allocation on that device, not zerocopy's aligned one
            # (extra["copied"] stays True: empty data of unknown alignment).
            new.device = self.device
        return new


def moved_info(info: Info, framework: str, kind: str | None = None) -> Info:
    """Same memory, now seen from ``framework``."""
    new = Info.__new__(Info)
    for slot in Info.__slots__:
        setattr(new, slot, getattr(info, slot))
    new.framework = framework
    if kind is not None:
        new.kind = kind
    return new


def fresh_copy_info(info: Info, framework: str, kind: str | None = None) -> Info:
    """A new C-contiguous, writable, 64-byte aligned buffer with the same values."""
    new = moved_info(info, framework, kind)
    new.layout = "C"
    new.readonly = False
    new.requires_grad = False
    new._pointer, new._ptr = None, 0  # aligned by construction
    new.strides = None
    # One fresh buffer: chunks are combined, Arrow/Polars bits became bytes.
    new.extra = {**info.extra, "copied": True, "chunks": 1, "bits": False}
    return new


def with_options(edge: Edge, **changes: Any) -> Edge:
    return replace(edge, **changes)
