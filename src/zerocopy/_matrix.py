"""The live conversion matrix: every ordered pair really converted and checked.

A cell is "Z" only when the result's data pointer equals the source's AND a write through
the source's memory is seen in the result; "C" when zerocopy copied (with the plan's
reason); "E" with the typed error when the pair cannot hold the data. Nothing is
hard-coded: the cells come from running the conversions here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zerocopy._dtypes import numpy_dtype
from zerocopy._probes import ProbeUnavailable, make_device_source, make_source, pointer, values
from zerocopy.adapters import adapter, installed
from zerocopy.exchange.convert import explain, to

__all__ = ["Cell", "matrix", "pairs", "probe_pair"]


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    dtype: str
    status: str  # "Z", "C", "E" or "n/a" (the source framework cannot hold the dtype)
    route: str
    reason: str


def _probe_values(dtype: str, n: int) -> np.ndarray:
    if dtype == "bool":
        return np.arange(n) % 3 == 0
    return (np.arange(n) % 100 + 1).astype(numpy_dtype(dtype))


def probe_pair(source_name: str, target_name: str, dtype: str = "float32", n: int = 64,
               gpu: bool = False) -> Cell:
    """One cell; ``gpu``: the source is a real device array on cuda:0."""
    data = _probe_values(dtype, n)
    try:
        source, writer = (make_device_source if gpu else make_source)(source_name, data)
    except ProbeUnavailable as exc:
        return Cell(source_name, target_name, dtype, "n/a", "", str(exc))
    try:
        plan = explain(source, target_name)
        result = to(source, target_name)
    except Exception as exc:
        return Cell(source_name, target_name, dtype, "E", "", f"{type(exc).__name__}: {_first_line(exc)}")
    route = " > ".join(p for p in plan.protocols) or "native"
    if plan.copies:
        reason = next((c for c in plan.caveats if c.startswith("copied because")), "copies")
        return Cell(source_name, target_name, dtype, "C", route, reason)
    shared = pointer(result) == pointer(source)
    assert values(result).reshape(-1)[0] != 0  # the probe starts non-zero
    writer.reshape(-1).view(np.uint8)[: data.itemsize] = 0  # element 0 := 0 / False
    if gpu:
        import cupy

        cupy.cuda.runtime.deviceSynchronize()
    seen = values(result).reshape(-1)[0] == 0
    if shared and seen:
        return Cell(source_name, target_name, dtype, "Z", route, "")
    return Cell(source_name, target_name, dtype, "E", route,
                f"BUG: plan said zero-copy, pointer {'same' if shared else 'differs'}, "
                f"write {'seen' if seen else 'not seen'}")


def _first_line(exc: BaseException) -> str:
    return str(exc).split(". Hint:")[0].splitlines()[0][:160]


def pairs(frameworks: list[str], dtypes: list[str]) -> list[tuple[str, str, str]]:
    """(source, target, dtype) of every cell over the installed ``frameworks``."""
    names = [n for n in frameworks if installed(n)]
    return [(source, target, dtype) for dtype in dtypes
            for source, target in itertools.product(names, names) if source != target]


def matrix(frameworks: list[str], dtypes: list[str], gpu: bool = False,
           step: Callable[[str], None] | None = None) -> list[Cell]:
    """Every cell; ``step(label)`` is called after each one (the CLI's progress bar)."""
    cells = []
    for source, target, dtype in pairs(frameworks, dtypes):
        cells.append(probe_pair(source, target, dtype, gpu=gpu))
        if step is not None:
            step(f"{source}->{target} {dtype}")
    return cells


def as_json(cells: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(c) for c in cells]


def versions(frameworks: list[str]) -> dict[str, str]:
    return {n: adapter(n).version() for n in frameworks if installed(n)}
