"""``zerocopy matrix --png FILE``: the support and conversion matrices as one picture.

The successor of the article's Table 1 (which framework speaks which exchange protocol)
and Figure 2 (which conversions share memory): the protocol grid comes from each
installed framework's adapter (``zerocopy doctor``), the conversion grids from the live
probes of ``zerocopy matrix`` (a cell is Z only when the pointer is the same and a write
is seen on the other side).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROTOCOLS", "draw"]

# protocol column -> substrings of the adapters' export/import descriptions
PROTOCOLS = {
    "DLPack": ("dlpack",),
    "CUDA Array\nInterface": ("cuda array interface",),
    "NumPy array\ninterface": ("array interface",),
    "buffer\nprotocol": ("buffer protocol", "py_buffer"),
    "Arrow C data": ("arrow",),
}
STATUS_COLOURS = {"Z": "#1b9e77", "C": "#f0a202", "E": "#d7301f", "n/a": "#d9d9d9", "-": "#ffffff"}


def _speaks(texts: list[str], needles: tuple[str, ...], protocol: str) -> bool:
    found = [t.lower() for t in texts]
    if protocol.startswith("NumPy"):   # "CUDA Array Interface" is not the NumPy one
        found = [t for t in found if "cuda" not in t]
    return any(n in t for t in found for n in needles)


def _support(ax: Any, rows: list[dict[str, Any]]) -> None:
    names = [r["name"] for r in rows]
    grid = np.zeros((len(rows), len(PROTOCOLS)))
    for i, row in enumerate(rows):
        for j, (proto, needles) in enumerate(PROTOCOLS.items()):
            exports = _speaks(row["exports"], needles, proto)
            imports = _speaks(row["imports"], needles, proto)
            grid[i, j] = exports + 2 * imports
            text = {0: "", 1: "out", 2: "in", 3: "in+out"}[int(grid[i, j])]
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if row["installed"] else "#888888")
    colours = np.where(grid > 0, 1.0, 0.0) * np.array([r["installed"] for r in rows])[:, None]
    ax.imshow(colours, cmap="Greens", vmin=0, vmax=2.5, aspect="auto")
    ax.set_xticks(range(len(PROTOCOLS)), list(PROTOCOLS), fontsize=8)
    ax.set_yticks(range(len(names)), [n if r["installed"] else f"{n} (not here)"
                                      for n, r in zip(names, rows, strict=True)], fontsize=8)
    ax.set_title("exchange protocols (out: exports, in: imports)")


def _conversions(ax: Any, cells: list[Any], dtype: str, title: str) -> None:
    from matplotlib.colors import to_rgb

    names = list(dict.fromkeys([c.source for c in cells] + [c.target for c in cells]))
    grid = {(c.source, c.target): c.status for c in cells if c.dtype == dtype}
    image = np.ones((len(names), len(names), 3))
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            status = "-" if s == t else grid.get((s, t), "n/a")
            image[i, j] = to_rgb(STATUS_COLOURS[status])
            ax.text(j, i, "" if status == "-" else status, ha="center", va="center", fontsize=8)
    ax.imshow(image, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    ax.set_title(f"{title}{dtype}: Z zero-copy (proven), C copy, E typed error")


def draw(path: str | Path, cells: list[Any], gpu_cells: list[Any], dtypes: list[str],
         support: list[dict[str, Any]]) -> Path:
    """Write the picture; one conversion grid per dtype (CPU) and per dtype on the GPU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("", cells, d) for d in dtypes if cells] + [("GPU ", gpu_cells, d) for d in dtypes if gpu_cells]
    count = 1 + len(panels)
    columns = min(3, count)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 5 * rows), squeeze=False)
    flat = list(axes.flat)
    _support(flat[0], support)
    for ax, (title, group, dtype) in zip(flat[1:], panels, strict=False):
        _conversions(ax, group, dtype, title)
    for ax in flat[count:]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
