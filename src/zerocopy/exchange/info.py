"""What the planner needs to know about an object, read once per call.

Framework modules fill an :class:`Info`; edge checks read it. The pointer is lazy because
reading it costs a microsecond on NumPy and only alignment checks need it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zerocopy._display import info_html

__all__ = ["ARRAY", "COLUMN", "TABLE", "Info", "layout_of", "size_class"]

ARRAY, COLUMN, TABLE = "array", "column", "table"


def layout_of(shape: tuple[int, ...], strides: tuple[int, ...] | None,  # noqa: PLR0911 (a return per class)
              itemsize: int) -> str:
    """Classify strides (in bytes): "C", "F", "compact" (a permutation, e.g. a transpose),
    "strided" (gaps: step slices) or "negative" (reversed views)."""
    if strides is not None and any(s < 0 for s in strides):
        return "negative"  # even over one element: some importers reject the stride itself
    if strides is None or (len(shape) <= 1 and (not shape or shape[0] <= 1 or strides[0] == itemsize)):
        return "C"
    if 0 in shape:
        return "C"
    dims = [(n, s) for n, s in zip(shape, strides, strict=True) if n > 1]
    if _packed(dims[::-1], itemsize):
        return "C"
    if _packed(dims, itemsize):
        return "F"
    if _packed(sorted(dims, key=lambda d: d[1]), itemsize):
        return "compact"
    return "strided"


def size_class(shape: tuple[int, ...]) -> Any:
    """Per dimension, only 0, 1 or "more" matters to a check (empty, broadcastable, real);
    1-D shapes, the common case, give a plain int."""
    if len(shape) == 1:
        n = shape[0]
        return n if n < 2 else 2
    return tuple(d if d < 2 else 2 for d in shape)


def _packed(dims: list[tuple[int, int]], itemsize: int) -> bool:
    expected = itemsize
    for n, s in dims:
        if s != expected:
            return False
        expected *= n
    return True


class Info:
    """One object's facts: kind, dtype, shape, strides (bytes), device, flags."""

    __slots__ = ("_pointer", "_ptr", "device", "dtype", "extra", "framework", "itemsize",
                 "kind", "layout", "nulls", "obj", "readonly", "requires_grad", "shape", "strides")

    def __init__(self, framework: str, obj: Any, *, kind: str, dtype: str | None,
                 shape: tuple[int, ...], strides: tuple[int, ...] | None, itemsize: int,
                 pointer: Callable[[], int] | None = None, device: tuple[str, int] = ("cpu", 0),
                 readonly: bool = False, requires_grad: bool = False, nulls: int = 0,
                 extra: dict[str, Any] | None = None, layout: str | None = None) -> None:
        self.framework, self.obj, self.kind, self.dtype = framework, obj, kind, dtype
        self.shape, self.strides, self.itemsize = shape, strides, itemsize
        if layout is None:
            layout = layout_of(shape, strides, itemsize) if kind != TABLE else "columns"
        self.layout = layout
        self._pointer = pointer
        self._ptr: int | None = None  # read once, when first asked
        self.device, self.readonly, self.requires_grad = device, readonly, requires_grad
        self.nulls, self.extra = nulls, extra or {}

    @property
    def ptr(self) -> int:
        if self._ptr is None:
            self._ptr = self._pointer() if self._pointer is not None else 0
        return self._ptr

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def signature(self) -> tuple[Any, ...]:
        """Everything an edge check may depend on, except the pointer (see ``aligned``)."""
        return (self.framework, self.kind, self.dtype, size_class(self.shape), self.layout,
                self.device, self.readonly, self.requires_grad, self.nulls > 0,
                self.extra.get("signature") if self.extra else None)

    def _repr_html_(self) -> str:  # Jupyter: zerocopy.inspect(x) as a table of facts
        return info_html(self)

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        flags = [f for f, on in (("read-only", self.readonly), ("requires_grad", self.requires_grad),
                                 (f"{self.nulls} nulls", self.nulls)) if on]
        where = "" if self.device == ("cpu", 0) else f" on {self.device[0]}:{self.device[1]}"
        return (f"{self.framework} {self.kind} {self.dtype or 'mixed'} [{shape}] "
                f"{self.layout}{where}" + (f" ({', '.join(flags)})" if flags else ""))
