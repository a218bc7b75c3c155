"""Rich and HTML views of plans, inspections, memory reports and column blocks.

The classes' ``_repr_html_`` (Jupyter) and ``__rich__`` (rich, the CLI) call these
functions; nothing here runs at import time and rich is imported only inside ``*_rich``.
Every view shows the same facts as the object's ``str()``, laid out as tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

__all__ = ["block_html", "info_html", "plan_html", "plan_rich", "report_html", "report_rich"]

_STYLE = ("border-collapse:collapse;font-family:monospace;font-size:90%;"
          "text-align:left")
_COPY = "color:#b35c00;font-weight:bold"
_ZERO = "color:#227a22;font-weight:bold"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th style='padding:2px 8px'>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    cap = f"<caption style='text-align:left'>{caption}</caption>" if caption else ""
    return f"<table style='{_STYLE}'>{cap}<tr>{head}</tr>{body}</table>"


def _list(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    return (f"<div><b>{escape(title)}</b><ul style='margin:0'>"
            + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul></div>")


# ------------------------------------------------------------------------------ plans


def _not_taken(plan: Any) -> list[str]:
    return list(plan.not_taken())  # the same lines print(plan) shows, each route once


def _verdict(plan: Any) -> str:
    return f"COPIES {_size(plan.copied_bytes)}" if plan.copies else "ZERO-COPY"


def _hop_rows(plan: Any) -> list[tuple[str, ...]]:
    return [(str(i), f"{h.edge.source} -> {h.edge.target}", h.edge.protocol, h.edge.call,
             f"COPY {_size(h.copied_bytes)}" if h.edge.copies else "zero-copy")
            for i, h in enumerate(plan.hops, 1)]


def plan_html(plan: Any) -> str:
    style = _COPY if plan.copies else _ZERO
    head = (f"<div><code>{escape(plan.source.describe())}</code> &rarr; <b>{escape(plan.target)}</b>: "
            f"<span style='{style}'>{_verdict(plan)}</span></div>")
    hops = (_table(("#", "hop", "protocol", "call", "cost"), _hop_rows(plan)) if plan.hops
            else "<div>already a native object of the target: returned as is</div>")
    return ("<div>" + head + hops + _list("caveats", plan.caveats)
            + _list("not taken", _not_taken(plan)) + "</div>")


def plan_rich(plan: Any) -> Any:
    from rich.console import Group
    from rich.markup import escape as esc
    from rich.table import Table
    from rich.text import Text

    style = "bold yellow" if plan.copies else "bold green"
    head = Text.assemble((plan.source.describe(), "cyan"), "  ->  ", (plan.target, "bold"),
                         ": ", (_verdict(plan), style))
    parts: list[Any] = [head]
    if plan.hops:
        hops = Table(show_edge=False, pad_edge=False, header_style="bold", box=None)
        for name in ("#", "hop", "protocol", "call", "cost"):
            hops.add_column(name, overflow="fold")
        for row in _hop_rows(plan):
            cost = f"[yellow]{esc(row[4])}[/]" if row[4].startswith("COPY") else f"[green]{row[4]}[/]"
            hops.add_row(*map(esc, row[:4]), cost)
        parts.append(hops)
    else:
        parts.append(Text("  (already a native object of the target: returned as is)"))
    parts += [Text.assemble(("  caveat: ", "yellow"), c) for c in plan.caveats]
    parts += [Text.assemble(("  not taken: ", "dim"), line) for line in _not_taken(plan)]
    return Group(*parts)


# ------------------------------------------------------------------------- inspections


def _info_rows(info: Any) -> list[tuple[str, str]]:
    rows = [("framework", info.framework), ("kind", info.kind), ("dtype", info.dtype or "mixed"),
            ("shape", "x".join(map(str, info.shape)) or "scalar"),
            ("strides (bytes)", "" if info.strides is None else str(info.strides)),
            ("layout", info.layout), ("device", f"{info.device[0]}:{info.device[1]}"),
            ("bytes", _size(info.nbytes)), ("read-only", str(info.readonly)),
            ("requires_grad", str(info.requires_grad)), ("nulls", str(info.nulls))]
    return rows


def info_html(info: Any) -> str:
    return _table(("fact", "value"), _info_rows(info),
                  caption=f"<code>{escape(info.describe())}</code>")


# ---------------------------------------------------------------------- memory reports


def _report_rows(report: Any) -> list[tuple[str, ...]]:
    return [(f.framework, f.mode, "yes" if f.per_allocation else "pool", _size(f.current_bytes),
             _size(f.peak_bytes), str(f.allocations), str(f.live),
             _size(f.limit) if f.limit else "-") for f in report.frameworks]


_REPORT_HEADER = ("framework", "mode", "hooks", "current", "peak", "allocs", "live", "limit")


def _report_summary(report: Any) -> list[str]:
    lines = []
    if report.pool is not None:
        p = report.pool
        lines.append(f"pool: reserved {_size(p.reserved)} (peak {_size(p.reserved_high)}), "
                     f"used {_size(p.used)} (peak {_size(p.used_high)})")
    if report.total is not None:
        t = report.total
        lines.append(f"through zerocopy: current {_size(t.current_bytes)}, peak "
                     f"{_size(t.peak_bytes)}, {t.total_count} allocations, {t.current_count} live")
    lines.append(f"outstanding allocations: {len(report.leaks)}")
    return lines


def report_html(report: Any) -> str:
    summary = "".join(f"<div>{escape(line)}</div>" for line in _report_summary(report))
    table = _table(_REPORT_HEADER, _report_rows(report)) if report.frameworks else ""
    events = _list(f"governance events ({len(report.events)})",
                   [f"{e.kind}: {e.detail}" for e in report.events[-10:]])
    leaks = _list(f"outstanding allocations ({len(report.leaks)})",
                  [a.format().splitlines()[0] for a in report.leaks[:20]])
    return (f"<div><b>zerocopy memory report</b> ({escape(report.resource)}){summary}"
            f"{table}{events}{leaks}</div>")


def report_rich(report: Any) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text.assemble(("zerocopy memory report", "bold"), f" ({report.resource})")]
    parts += [Text(line) for line in _report_summary(report)]
    if report.frameworks:
        view = Table(show_edge=False, pad_edge=False, header_style="bold", box=None)
        for name in _REPORT_HEADER:
            view.add_column(name, overflow="fold")
        for row in _report_rows(report):
            view.add_row(*row)
        parts.append(view)
    parts += [Text(f"  {e.kind}: {e.detail}") for e in report.events[-10:]]
    parts += [Text("  " + a.format().replace("\n", "\n  "), style="red") for a in report.leaks[:20]]
    return Group(*parts)


# ----------------------------------------------------------------------- column blocks


def block_html(block: Any) -> str:
    rows = []
    for name, dtype, shape, offset in zip(block.names, block._dtypes, block._shapes,
                                          block._offsets, strict=True):
        end = offset + block.n_rows * dtype.itemsize * math.prod(shape)
        rows.append((name, str(dtype), "x".join(map(str, shape)) or "scalar", f"[{offset}, {end})"))
    uniform = block.uniform_dtype
    tensor = (f"tensor(): F-order ({block.n_rows}, {len(block.names)}) {uniform} view, no copy"
              if uniform is not None else "tensor(): unavailable (columns differ in dtype or shape)")
    caption = (f"ColumnBlock on {escape(block.device)}: {block.n_rows} rows x {len(block.names)} "
               f"columns, one buffer of {_size(block.buffer.nbytes)}")
    return _table(("column", "dtype", "cell shape", "bytes"), rows, caption) + f"<div>{escape(tensor)}</div>"
