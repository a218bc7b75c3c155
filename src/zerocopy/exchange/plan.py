"""The generic planner: routes between frameworks, chosen per object, explained.

Routes are simple paths (at most ``MAX_HOPS`` edges) through the edge graph, enumerated
once per (source, target) pair and ranked: sharing routes by cost first, then routes that
copy. For one object the planner walks the ranked routes, projects the object's facts
through each hop and takes the first route whose checks all pass. The result is a
:class:`Plan`: ``explain()`` prints it, with the cheaper routes it rejected and why;
``to()`` runs it (:meth:`Plan.run`, the only place edges run), so they cannot disagree.

Two rules hold for every route, whatever its frameworks (both read only the edges' data):
nulls never reach an array and chunks become one buffer only by a copy (``data_rule``);
an array that arrives as an array never passes through a column or a table on the way
(``detour``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from zerocopy import _cuda
from zerocopy._display import plan_html, plan_rich
from zerocopy._units import human_bytes
from zerocopy.errors import (
    NotZeroCopyError,
    NullValuesError,
    UnsupportedConversionError,
    ZeroCopyError,
    message,
)
from zerocopy.exchange import cache
from zerocopy.exchange.edges import DECLINED, PASS, SAME, Edge, Options, Refusal, moved_info
from zerocopy.exchange.info import ARRAY, TABLE, Info

__all__ = ["Guarded", "Hop", "Plan", "detour", "make_plan", "routes"]

MAX_HOPS = 5
_PLAIN = Options()


@dataclass(frozen=True)
class Hop:
    """One edge of a plan: the facts before and after it, the options it runs with, and
    the GPU to make current while it runs (None: leave the current device as it is)."""

    edge: Edge
    before: Info
    after: Info
    options: Options = _PLAIN
    gpu: int | None = None

    @property
    def copied_bytes(self) -> int:
        return self.before.nbytes if self.edge.copies else 0

    def describe(self) -> str:
        action = f"COPY {human_bytes(self.copied_bytes)}" if self.edge.copies else "zero-copy"
        return (f"{self.edge.source} -> {self.edge.target}  via {self.edge.protocol}: "
                f"{self.edge.call}  [{action}]")


@dataclass
class Plan:
    """The chosen route for one object, and what was considered."""

    source: Info
    target: str
    options: Options
    hops: tuple[Hop, ...]
    caveats: list[str] = field(default_factory=list)
    rejected: list[tuple[tuple[Edge, ...], Refusal]] = field(default_factory=list)
    # What run() calls, read once: (edge.run, options) per hop, and whether a hop needs
    # its GPU made current (several GPUs only).
    _steps: tuple[tuple[Callable[[Any, Options], Any], Options], ...] = field(
        init=False, repr=False, compare=False)
    switches_gpu: bool = field(init=False, repr=False, compare=False)
    # run() is all of zerocopy.to for this plan: no copy promise to check on the result
    # (copy=None) and no unasked copy to report to the copy policy (nothing copies).
    runs_alone: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._steps = tuple((hop.edge.run, hop.options) for hop in self.hops)
        self.switches_gpu = any(hop.gpu is not None for hop in self.hops)
        self.runs_alone = self.options.copy is None and not self.copies

    @functools.cached_property
    def fast(self) -> Callable[[Any], Any]:
        """What the fast lane calls for a plan that runs alone: the hops' specialised calls
        (Edge.fast) chained, where every hop has one; else run(). Made once per plan, by
        detached() (the form the caches keep) while planning; plans that never reach a
        cache (explain()'s) never build them."""
        return self._specialised() or self.run

    def _specialised(self) -> Callable[[Any], Any] | None:
        if not self.hops or self.switches_gpu or not self.runs_alone:
            return None
        calls: list[Callable[[Any], Any]] = []
        passing = False  # the hop before was left out (PASS): this one must read the source
        for hop in self.hops:
            call = (hop.edge.fast(hop.before, self.source.framework) if hop.edge.fast is not None
                    and hop.options.stream is None else None)
            if call is None or (passing and not getattr(call, "may_decline", False)):
                return None
            passing = call is PASS
            if not passing and call is not SAME:
                calls.append(call)
        if passing or not calls or any(getattr(c, "may_decline", False) for c in calls[:-1]):
            return None  # only the last hop may decline: the earlier ones' work would be lost
        chain = _chain(calls)
        if not getattr(calls[-1], "may_decline", False):
            return chain
        if not all(getattr(c, "keeps_type", False) for c in calls[:-1]):
            # A declining call reads the source's own object (its adapter's reader): every
            # call before it must hand on an object of the source's class.
            return None
        run = self.run

        def declinable(x: Any) -> Any:
            out = chain(x)
            return run(x) if out is DECLINED else out

        return declinable

    @property
    def copies(self) -> bool:
        return any(hop.edge.copies for hop in self.hops)

    @property
    def copied_bytes(self) -> int:
        return sum(hop.copied_bytes for hop in self.hops)

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(hop.edge.protocol for hop in self.hops)

    @property
    def moves(self) -> bool:
        """Does the plan copy the data to another device (``device=``, or a target that
        lives only on the other side)?"""
        return any(hop.edge.device is not None for hop in self.hops)

    def run(self, obj: Any) -> Any:
        """Run the hops on ``obj`` (the object this plan was made for, or one with the same
        signature) and return the target's object. ``zerocopy.to`` runs plans only
        through this method; it adds the check of the ``copy`` promise on the result."""
        if self.switches_gpu:
            return self._run_on_gpus(obj)
        for run, options in self._steps:
            obj = run(obj, options)
        return obj

    def _run_on_gpus(self, obj: Any) -> Any:
        for hop in self.hops:
            if hop.gpu is None:
                obj = hop.edge.run(obj, hop.options)
            else:
                with _cuda.on_device(hop.gpu):  # several GPUs: convert where the data lives
                    obj = hop.edge.run(obj, hop.options)
        return obj

    def detached(self) -> Plan:
        """The same plan without the object it was made for (an Info holds the object and
        its pointer reader): what a cache may keep without keeping the data alive."""
        if self.source.obj is None:  # detached already
            return self
        kept = replace(self, source=_bare(self.source), caveats=list(self.caveats),
                       rejected=list(self.rejected),
                       hops=tuple(replace(h, before=_bare(h.before), after=_bare(h.after))
                                  for h in self.hops))
        kept.fast  # noqa: B018 - specialised while planning, not on the lane's first call
        return kept

    def __str__(self) -> str:
        verdict = (f"COPIES {human_bytes(self.copied_bytes)}" if self.copies else "ZERO-COPY")
        lines = [f"{self.source.describe()}  ->  {self.target}: {verdict}"]
        if not self.hops:
            lines.append("  (already a native object of the target: returned as is)")
        lines += [f"  {i}. {hop.describe()}" for i, hop in enumerate(self.hops, 1)]
        lines += [f"  caveat: {c}" for c in self.caveats]
        lines += [f"  not taken: {line}" for line in self.not_taken()]
        return "\n".join(lines)

    def not_taken(self, limit: int = 4, per_reason: int = 3) -> list[str]:
        """The rejected routes worth showing, each once. Edges of one pair differ by
        protocol, so one route text can be refused several times: it keeps the refusal
        nearest the target (the real obstacle). Routes refused for the same reason share one
        line; at most ``limit`` reasons and ``per_reason`` routes each are shown. ``print``,
        Jupyter and the CLI show these lines."""
        nearest: dict[str, Refusal] = {}
        for route, refusal in self.rejected:
            if refusal.quiet:
                continue
            path = _route_text(route)
            if path not in nearest or refusal.left < nearest[path].left:
                nearest[path] = refusal
        by_reason: dict[str, list[str]] = {}
        for path, refusal in nearest.items():
            by_reason.setdefault(refusal.reason, []).append(path)
        lines = []
        for reason, paths in list(by_reason.items())[:limit]:
            more = f" (+{len(paths) - per_reason} more)" if len(paths) > per_reason else ""
            lines.append(f"{', '.join(paths[:per_reason])}{more}: {reason}")
        return lines

    __repr__ = __str__

    def _repr_html_(self) -> str:  # Jupyter
        return plan_html(self)

    def __rich__(self) -> Any:  # rich.print(plan), the CLI
        return plan_rich(self)


def _chain(calls: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    if len(calls) == 1:
        return calls[0]
    if len(calls) == 2:
        first, second = calls
        return lambda x: second(first(x))
    return functools.reduce(lambda f, g: lambda x: g(f(x)), calls)


def _bare(info: Info) -> Info:
    new = moved_info(info, info.framework)
    new.obj, new._pointer = None, None
    new._ptr = info._ptr or 0
    return new


def _route_text(route: tuple[Edge, ...]) -> str:
    return " -> ".join([route[0].source, *(e.target for e in route)])


# ---------------------------------------------------------------- route enumeration

def _graph(edges: Iterable[Edge]) -> dict[str, list[Edge]]:
    out: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        out[edge.source].append(edge)
    return out


def routes(edges: tuple[Edge, ...], source: str, target: str) -> tuple[tuple[Edge, ...], ...]:
    """Ranked simple routes from ``source`` to ``target`` (kept in the exchange's one cache,
    per edge set and pair)."""
    key = ("routes", edges, source, target)
    found = cache.get(key)
    if found is None:
        found = cache.put(key, _routes(edges, source, target))
    return found


def _routes(edges: tuple[Edge, ...], source: str, target: str) -> tuple[tuple[Edge, ...], ...]:
    graph = _graph(edges)
    found: list[tuple[Edge, ...]] = []

    def walk(node: str, path: tuple[Edge, ...], seen: frozenset[str]) -> None:
        if node == target and path:
            found.append(path)  # and walk on: a copy hop at the target may follow
        if len(path) == MAX_HOPS:
            return
        for edge in graph.get(node, ()):
            # A copy hop may revisit its own node (numpy -> aligned numpy copy), once.
            revisit = edge.target == node and edge.copies
            if (edge.target in seen and not revisit) or (revisit and any(e.copies for e in path)):
                continue
            walk(edge.target, (*path, edge), seen | {edge.target})

    walk(source, (), frozenset({source}))
    # Sharing routes first; among them the cheapest; copies after, fewest copies first.
    found.sort(key=lambda r: (sum(e.copies for e in r), sum(e.cost for e in r), len(r)))
    return tuple(found)


# ---------------------------------------------------------------- choosing a route

def data_rule(info: Info, edge: Edge) -> Refusal | None:
    """What holds for every edge, whatever its frameworks: an array is one buffer with no
    null mask. So nulls never reach (or stay in) an array, whether the hop shares or
    copies (a copy would turn them into whatever bytes sit under the mask), and a column
    split into chunks (separate buffers) becomes an array only through a copy."""
    result_kind = edge.result_kind or info.kind
    if info.nulls and ARRAY in (info.kind, result_kind):
        named = [n for n in (info.extra.get("null_columns") or ()) if n is not None]
        where = f" (in column {', '.join(map(repr, named))})" if named else ""
        return Refusal(
            f"the data has {info.nulls} null{'s' if info.nulls != 1 else ''}{where} and an array "
            "has no null mask", _NULL_HINTS.get(info.framework, _NULL_HINTS[""]),
            fixable=False, error=NullValuesError)
    chunks = info.extra.get("chunks", 1) if info.extra else 1
    if chunks > 1 and result_kind == ARRAY and not edge.copies:
        return Refusal(f"the column is split into {chunks} chunks (separate buffers); an array is one",
                       "let zerocopy copy (copy=None), or read the data in one chunk "
                       "(zerocopy.read_parquet combines them once)")
    return None


_NULL_HINTS = {
    "numpy": "fill the masked values first: x.filled(value), or keep np.ma.getmaskarray(x) beside "
             "x.data yourself",
    "pandas": "fill them first (df.fillna(value) / s.fillna(value), or s.to_numpy(dtype=..., "
              "na_value=value)), or drop them (dropna)",
    "polars": "fill them first (fill_null(value)), or drop them (drop_nulls)",
    "pyarrow": "fill them first (pyarrow.compute.fill_null(x, value)), or drop them (drop_null)",
    "cudf": "fill them first (s.fillna(value)), or drop them (dropna)",
    "": "fill or drop the nulls first, or keep the data in a table framework",
}


def detour(info: Info, route: tuple[Edge, ...]) -> Refusal | None:
    """An array that arrives as an array never passes through a column or a table on the
    way. Wrapping a buffer in a column framework and unwrapping it again shares the same
    memory, so no check refuses it, but it costs what no route cost says (with cuDF
    installed, Numba -> CAI -> cudf.Series -> Series.values took 100-240x the direct
    CAI route on an H200). Only where the route ends as a column or a table (the target
    holds columns) may an array become one on the way. Read from the edges' result kinds:
    no framework is named."""
    if info.kind != ARRAY:
        return None
    kinds = [info.kind]
    for edge in route:
        kinds.append(edge.result_kind or kinds[-1])
    if kinds[-1] != ARRAY or all(kind == ARRAY for kind in kinds):
        return None
    return Refusal("an array does not pass through a column or a table on its way to an array",
                   fixable=False, quiet=True, left=len(route) - 1)  # no check ran


def _try_route(route: tuple[Edge, ...], info: Info, options: Options,
               memo: dict[tuple[Edge, ...], Any]) -> tuple[tuple[Hop, ...], list[str]] | Refusal:
    """The hops of ``route`` for this object, or why it is refused. A hop's outcome depends
    only on the route up to it, so ``memo`` (one per planning) keeps it per prefix: routes
    that share a refused or accepted prefix do not check it again."""
    refusal = detour(info, route)
    if refusal is not None:
        return refusal
    hops: list[Hop] = []
    caveats: list[str] = []
    current = info
    for index, edge in enumerate(route):
        prefix = route[:index + 1]
        step = memo.get(prefix)
        if step is None:
            step = memo[prefix] = _try_hop(edge, current, options, index)
        if isinstance(step, Refusal):
            return replace(step, left=len(route) - index - 1)
        hop, caveat = step
        hops.append(hop)
        if caveat:
            caveats.append(caveat)
        current = hop.after
    return tuple(hops), caveats


def _try_hop(edge: Edge, current: Info, options: Options, index: int) -> tuple[Hop, str | None] | Refusal:
    if current.kind not in edge.kinds:
        return Refusal(f"{edge.call} takes {'/'.join(sorted(edge.kinds))}, not a {current.kind}",
                       fixable=False, quiet=True)
    if edge.reads_object and index:
        # Its check reads the object itself (where a table's columns lie), and past the first
        # hop that object exists only once the route runs: planning cannot look at it.
        return Refusal(f"{edge.call} reads the {edge.source} object itself, which this route "
                       "makes only when it runs", fixable=False, quiet=True)
    refusal = data_rule(current, edge) or edge.check(current, options)
    # A copy hop fixes what a fresh buffer fixes (layout, alignment, flags), not the rest.
    if refusal is not None and not (edge.copies and refusal.fixable):
        return refusal
    caveat = edge.caveat(current) if edge.caveat is not None and not edge.copies else None
    return Hop(edge, current, edge.after(current), options), caveat


def make_plan(edges: tuple[Edge, ...], info: Info, target: str, options: Options) -> Plan:
    """Pick the route for this object; raise a typed error when none fits the options.

    The routes come ranked, so the first one whose checks pass and that keeps the kind is
    the cheapest admissible one: the walk stops there."""
    if info.framework == target and not options.copy:
        return Plan(info, target, options, ())
    rejected: list[tuple[tuple[Edge, ...], Refusal]] = []
    candidates = routes(edges, info.framework, target)
    fallback: Plan | None = None
    memo: dict[tuple[Edge, ...], Any] = {}
    # Where no route can keep the kind, the first admissible route is the answer.
    keepable = _can_keep(edges, info, target, candidates)
    for route in candidates:
        copies = any(e.copies for e in route)
        if options.copy is False and copies:
            continue
        if options.copy is True and not copies:
            continue
        outcome = _try_route(route, info, options, memo)
        if isinstance(outcome, Refusal):
            rejected.append((route, outcome))
            continue
        hops, caveats = outcome
        plan = Plan(info, target, options, hops, caveats, list(rejected))
        # A table stays a table, a column a column, where the target has that kind; a table
        # that passes through an array on the way loses its column names, so such a route
        # is only a fallback.
        if not keepable or _keeps_kind(info, hops):
            return _with_reason(plan)
        fallback = fallback or plan
    # A route that changes the kind (a table arriving as a tensor) only where the target
    # cannot keep the kind at all: a table refused as a table must not come back a tensor.
    if fallback is not None and info.kind != TABLE:
        # Its refusals are those before it, as ever. Only an array or a column gets here: a
        # check that reads the object takes tables, so no guard misses a route after it.
        return _with_reason(fallback)
    error = _no_route_error(info, target, options, candidates, rejected)
    if options.copy is False and isinstance(error, NotZeroCopyError):
        # copy=False names the first refusal a copy would fix (read-only, layout), but the
        # route it stopped may be refused later for good (float64 to JAX without x64): where
        # no copy would help either, that is what the caller must hear first. Planned again
        # on the error path only.
        try:
            make_plan(edges, info, target, replace(options, copy=None))
        except NotZeroCopyError:
            pass
        except ZeroCopyError as blocker:
            raise blocker from None
    raise error


def _with_reason(plan: Plan) -> Plan:
    """A copying plan says why the cheaper sharing routes were refused (read once, for the
    plan returned: not for every admissible route on the way)."""
    if plan.copies and plan.rejected:
        plan.caveats.append(f"copied because {_first_fixable(plan.rejected).reason}")
    return plan


# ---------------------------------------------------------------- plans that read the object

def _refused_by_object(route: tuple[Edge, ...], refusal: Refusal, source: Info, options: Options,
                       memo: dict[tuple[Edge, ...], Any]) -> bool:
    """Could another object with the same signature pass where this route was refused? Only
    where the refusing check read the object (where a table's columns lie), or read a
    pointer that a hop before it took from the object rather than from the source's own
    pointer (whose alignment the plan cache's key holds already)."""
    if refusal.quiet:  # no check ran there: the kinds, the detour rule, a later object hop
        return False
    at = len(route) - refusal.left - 1
    edge = route[at]
    if edge.reads_object:
        return True
    if not edge.needs_pointer or not any(e.reads_object for e in route[:at]):
        return False
    hops = _try_route(route[:at], source, options, memo)  # the prefix passed: hops
    return isinstance(hops, Refusal) or hops[0][-1].after.ptr != source.ptr


@dataclass(frozen=True)
class Guarded:
    """A plan whose choice read the object itself, kept with what decided it for that
    object: the routes refused by such a check, and whether the chosen route holds such a
    check. Another object with the same signature gets the same plan when those routes are
    still refused and the chosen one still passes (:meth:`holds`): only those checks run
    again, not the whole planning."""

    plan: Plan
    refused: tuple[tuple[Edge, ...], ...]
    route: tuple[Edge, ...] | None  # the chosen route, where a check of it read the object

    @classmethod
    def of(cls, plan: Plan) -> Guarded | None:
        """The guarded form of ``plan`` (one planning, made for its object: not a device
        move); None where no check read the object (the signature decides the plan alone)."""
        memo: dict[tuple[Edge, ...], Any] = {}
        refused = tuple(route for route, refusal in plan.rejected
                        if _refused_by_object(route, refusal, plan.source, plan.options, memo))
        chosen = tuple(hop.edge for hop in plan.hops)
        route = chosen if any(edge.reads_object for edge in chosen) else None
        if not refused and route is None:
            return None
        return cls(plan.detached(), refused, route)

    def holds(self, info: Info) -> bool:
        """Does the plan hold for this object (one with the plan's signature)?"""
        memo: dict[tuple[Edge, ...], Any] = {}
        options = self.plan.options
        for route in self.refused:
            if not isinstance(_try_route(route, info, options, memo), Refusal):
                return False  # a cheaper route shares this object: plan afresh
        return self.route is None or not isinstance(_try_route(self.route, info, options, memo), Refusal)


def _can_keep(edges: tuple[Edge, ...], info: Info, target: str,
              candidates: tuple[tuple[Edge, ...], ...]) -> bool:
    """Does some route deliver the source's kind (a table as a table...)? Read from the
    edges alone, once per pair and kind."""
    key = ("keeps kind", edges, info.framework, target, info.kind)
    found = cache.get(key)
    if found is None:
        found = cache.put(key, any(_route_keeps(route, info.kind) for route in candidates))
    return bool(found)


def _route_keeps(route: tuple[Edge, ...], kind: str) -> bool:
    """The edges' side of ``_keeps_kind``: a table stays a table at every hop, another kind
    arrives as itself."""
    now = kind
    for edge in route:
        if now not in edge.kinds:
            return False
        now = edge.result_kind or now
        if kind == TABLE and now != TABLE:
            return False
    return now == kind


def _kind_after(route: tuple[Edge, ...], kind: str) -> str | None:
    """The kind a route delivers, or None where one of its edges does not take the kind."""
    for edge in route:
        if kind not in edge.kinds:
            return None
        kind = edge.result_kind or kind
    return kind


def _keeps_kind(info: Info, hops: tuple[Hop, ...]) -> bool:
    if info.kind == TABLE:
        return all(hop.after.kind == TABLE for hop in hops)
    return hops[-1].after.kind == info.kind


def _first_fixable(rejected: list[tuple[tuple[Edge, ...], Refusal]]) -> Refusal:
    # The refusal nearest the target names the real obstacle (Polars -> JAX: the alignment
    # JAX checks, not the read-only flag that only NumPy's own DLPack exporter minds); among
    # equals, the cheapest route's. Routes that already copy say nothing about sharing.
    sharing = [(r, refusal) for r, refusal in rejected if not any(e.copies for e in r)] or rejected
    fixable = [refusal for _, refusal in sharing if refusal.fixable]
    if fixable:
        return min(fixable, key=lambda refusal: refusal.left)
    loud = [refusal for _, refusal in rejected if not refusal.quiet]
    return (loud or [rejected[0][1]])[0]


def _no_route_error(info: Info, target: str, options: Options,
                    candidates: tuple[tuple[Edge, ...], ...],
                    rejected: list[tuple[tuple[Edge, ...], Refusal]]) -> Exception:
    if not candidates:
        return UnsupportedConversionError(message(
            f"No conversion path from {info.framework} to {target}",
            got=info.describe(),
            hint="zerocopy.frameworks() lists what is installed; `zerocopy matrix` shows every pair"))
    hard = [(route, r) for route, r in rejected if not r.fixable and not r.quiet]
    if hard and (options.copy is not False or len(hard) == len(rejected)):
        # A table refused as a table never comes back as anything else, so the real obstacle
        # is on a route that keeps it a table (Polars' unique column names), not a detour's
        # (a table is no Series).
        kept = [r for route, r in hard if info.kind == TABLE and _route_keeps(route, TABLE)]
        refusal = (kept or [hard[0][1]])[0]
        error = refusal.error or UnsupportedConversionError
        return error(message(f"Cannot convert {info.describe()} to {target}: {refusal.reason}",
                             hint=refusal.hint or None))
    refusal = _first_fixable(rejected) if rejected else Refusal("no sharing route exists")
    return NotZeroCopyError(message(
        f"{info.framework} -> {target} cannot share memory (copy=False): {refusal.reason}",
        got=info.describe(),
        hint=refusal.hint or "pass copy=None to allow a copy; zerocopy.explain() shows the plan"))
