"""Column blocks: one buffer whose columns are a table and a 2-D tensor at the same time.

A :class:`ColumnBlock` owns a single allocation (NumPy on CPU, CuPy on GPU). Each column
is a slice of it. When every column is a scalar of one dtype the columns sit back to
back, so the buffer is also an F-order ``(n_rows, k)`` tensor: the table view (pandas,
Polars, Arrow, cuDF) and the tensor view (NumPy, torch, JAX, CuPy) share every byte, and
writing through one is seen by the other. ``to_columns(..., out=block)`` fills a block in
place; ``stack(block, order="F")`` returns the tensor without a copy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zerocopy._display import block_html
from zerocopy.adapters.numpy import empty
from zerocopy.errors import LayoutError, message
from zerocopy.exchange.blocks import register
from zerocopy.layout import _interop
from zerocopy.layout._layout import check_column_dtype, check_unique_names

__all__ = ["ColumnBlock", "column_block"]

# The table a block shows by default, by where its memory is.
_DEFAULT_TABLE = {"cpu": "pyarrow", "cuda": "cudf"}

# Mixed-dtype blocks start every column on a cache line, which also satisfies Arrow's
# and SIMD loads' alignment wishes.
_ALIGN = 64


class ColumnBlock:
    """Columns that are slices of one buffer; see :func:`column_block`."""

    def __init__(self, buffer: Any, n_rows: int, names: Sequence[str],
                 dtypes: Sequence[np.dtype], shapes: Sequence[tuple[int, ...]],
                 offsets: Sequence[int]) -> None:
        self.buffer = buffer  # 1-D uint8, NumPy or CuPy: the one owner of the memory
        self.n_rows = n_rows
        self.names = tuple(names)
        self._dtypes = tuple(dtypes)
        self._shapes = tuple(tuple(s) for s in shapes)
        self._offsets = tuple(offsets)
        # Filled on first use by the layout calls: the column views, the buffer's address
        # and the plans made for this block (a call with out=block then only checks and
        # launches; see records.py).
        self._views: tuple[Any, ...] | None = None
        self._address: int | None = None
        self.plans: dict[Any, Any] = {}

    @property
    def device(self) -> str:
        return "cpu" if isinstance(self.buffer, np.ndarray) else "cuda"

    @property
    def uniform_dtype(self) -> np.dtype | None:
        """The dtype shared by all-scalar columns laid back to back, else None."""
        if not self._dtypes or any(self._shapes):
            return None
        dt = self._dtypes[0]
        step = self.n_rows * dt.itemsize
        ok = all(d == dt and o == i * step for i, (d, o) in
                 enumerate(zip(self._dtypes, self._offsets, strict=True)))
        return dt if ok else None

    def views(self) -> tuple[Any, ...]:
        """The column views, made once (what the layout calls hand out and launch on)."""
        if self._views is None:
            self._views = tuple(self.column_arrays())
        return self._views

    def address(self) -> int:
        """The buffer's address (it never moves)."""
        if self._address is None:
            buf = self.buffer
            self._address = buf.ctypes.data if isinstance(buf, np.ndarray) else buf.data.ptr
        return self._address

    def column_arrays(self) -> list[Any]:
        """Typed views (NumPy or CuPy) of the columns, in order."""
        out = []
        for dt, shape, off in zip(self._dtypes, self._shapes, self._offsets, strict=True):
            nbytes = self.n_rows * dt.itemsize * math.prod(shape)
            raw = self.buffer[off:off + nbytes]
            out.append(raw.view(dt).reshape(self.n_rows, *shape))
        return out

    @property
    def columns(self) -> dict[str, object]:
        """Name -> column view (NumPy or CuPy)."""
        return dict(zip(self.names, self.column_arrays(), strict=True))

    def tensor(self, like: str | None = None) -> Any:
        """The whole block as an F-order ``(n_rows, k)`` tensor, sharing memory."""
        dt = self.uniform_dtype
        if dt is None:
            raise LayoutError(message(
                "this block's columns do not form one tensor",
                expected="scalar columns of a single dtype", got=self._describe_dtypes(),
                hint="allocate the block with one dtype for all columns"))
        k = len(self.names)
        flat = self.buffer[:self.n_rows * k * dt.itemsize].view(dt)
        arr = flat.reshape(k, self.n_rows).T
        return arr if like is None else _interop.result(arr, like)

    def table(self, to: str | None = None) -> Any:
        """The columns as a table (default pyarrow on CPU, cuDF on GPU), sharing memory."""
        to = to or _DEFAULT_TABLE[self.device]
        return _interop.make_table(list(self.names), self.column_arrays(), to, rows=self.n_rows)

    def _describe_dtypes(self) -> str:
        return ", ".join(f"{n}:{d}{list(s) if s else ''}" for n, d, s in
                         zip(self.names, self._dtypes, self._shapes, strict=True))

    def explain(self) -> str:
        """What the block is, and which views of it share memory."""
        dt = self.uniform_dtype
        lines = [f"ColumnBlock on {self.device}: {self.n_rows} rows x {len(self.names)} "
                 f"columns, one buffer of {self.buffer.nbytes} bytes"]
        for n, d, s, o in zip(self.names, self._dtypes, self._shapes, self._offsets,
                              strict=True):
            lines.append(f"  {n:<16} {d.str:<6}{' x ' + str(s) if s else ''}  bytes "
                         f"[{o}, {o + self.n_rows * d.itemsize * math.prod(s)})")
        if dt is not None:
            lines.append(f"  tensor(): F-order ({self.n_rows}, {len(self.names)}) {dt} view "
                         "of the same bytes (no copy)")
        else:
            lines.append("  tensor(): unavailable (columns differ in dtype or shape)")
        lines.append("  table(): pyarrow/pandas/polars (cuDF on GPU) over the column views; "
                     "no copy except bool columns for Arrow/Polars (bit-packed there)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # Jupyter: the columns, their bytes, the tensor view
        return block_html(self)

    def __repr__(self) -> str:
        return (f"ColumnBlock({self.n_rows} rows, {len(self.names)} columns, "
                f"device={self.device!r})")


def column_block(n_rows: int, columns: Mapping[str, Any] | Sequence[str], *,
                 dtype: Any = None, device: str = "cpu") -> ColumnBlock:
    """Allocate an uninitialised block of ``n_rows`` rows.

    ``columns`` maps name -> dtype (a sub-array dtype such as ``("f4", (3,))`` gives a
    fixed-size array column), or is a list of names that all get ``dtype``.
    ``device`` is ``"cpu"`` (NumPy memory) or ``"cuda"`` (CuPy memory).
    """
    if isinstance(columns, Mapping):
        names, raw = list(columns), [np.dtype(d) for d in columns.values()]
    else:
        names, raw = list(columns), [np.dtype(dtype or np.float64)] * len(columns)
    check_unique_names(names, "column_block(columns=...)", "name each column once")
    dtypes, shapes = [], []
    for name, dt in zip(names, raw, strict=True):
        base, shape = dt.subdtype if dt.subdtype is not None else (dt, ())
        dtypes.append(check_column_dtype(base, name))
        shapes.append(tuple(shape))
    offsets, pos = [], 0
    uniform = len(set(dtypes)) == 1 and not any(shapes)
    for dt, shape in zip(dtypes, shapes, strict=True):
        if not uniform:
            pos = -(-pos // _ALIGN) * _ALIGN
        offsets.append(pos)
        pos += n_rows * dt.itemsize * math.prod(shape)
    return ColumnBlock(_allocate(pos, device), n_rows, names, dtypes, shapes, offsets)


def _allocate(nbytes: int, device: str) -> Any:
    if device == "cpu":  # NumPy only promises 16-byte alignment: start on a cache line
        # Registered: zerocopy.to() may then stack this block's columns into one tensor.
        return register(empty(max(nbytes, 1), np.uint8, align=_ALIGN)[:nbytes])
    if device in {"cuda", "gpu"}:
        import cupy

        # Registered too: a cuDF table over this block becomes one CuPy tensor without a copy.
        return register(cupy.empty(max(nbytes, 1), cupy.uint8)[:nbytes])
    raise LayoutError(message(f"unknown device {device!r}", expected="'cpu' or 'cuda'",
                              got=repr(device)))
