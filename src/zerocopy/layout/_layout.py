"""Record layouts: which bytes of a record hold which column.

A :class:`RecordLayout` is the flat list of leaf fields of a record (nested structs are
flattened to dotted names, sub-arrays stay one fixed-size column) with byte offsets, plus
the record size. Every conversion in this package is planned from one, on CPU and GPU, so
the checks that keep data right (no objects, no strings, native byte order, no fields
that overlap when writing) live here, once.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerocopy.errors import LayoutError, UnsupportedDtypeError, UnsupportedObjectError, message

__all__ = ["Field", "RecordLayout", "check_column_dtype", "record_layout"]

# Fixed-width kinds a column may have: bool, ints, uints, floats, complex, datetimes.
_OK_KINDS = frozenset("biufcmM")


@dataclass(frozen=True)
class Field:
    """One leaf column of a record: ``shape`` is () for scalars, the sub-array shape otherwise."""

    name: str
    dtype: np.dtype
    offset: int
    shape: tuple[int, ...] = ()

    @property
    def width(self) -> int:
        """Bytes the field takes in one record."""
        return self.dtype.itemsize * math.prod(self.shape)

    @property
    def column_dtype(self) -> np.dtype:
        """Dtype of the column array (sub-array shape included)."""
        return np.dtype((self.dtype, self.shape)) if self.shape else self.dtype


_RENAME = "rename them first (pandas: df.columns = [...]; Arrow: table.rename_columns([...]))"


def check_unique_names(names: Sequence[str], where: str, hint: str = _RENAME) -> list[str]:
    """``names`` as a list, or a LayoutError where one repeats: columns are found by name
    (a dict, a record field), so a repeated one would silently keep only one column."""
    names = list(names)
    if len(set(names)) == len(names):
        return names
    repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
    raise LayoutError(message(
        f"{where} repeats a column name", expected="unique column names",
        got=f"{', '.join(map(repr, repeated))} repeated in {names!r}", hint=hint))


def check_column_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """Refuse what a fixed-width column cannot hold right; return the dtype unchanged."""
    if dtype.kind == "O":
        raise UnsupportedObjectError(message(
            f"field {name!r} holds Python objects", expected="fixed-width numbers",
            got=str(dtype), hint="convert the field to a numeric dtype first"))
    if dtype.kind not in _OK_KINDS:
        what = "strings" if dtype.kind in "SU" else "raw bytes"
        raise UnsupportedDtypeError(message(
            f"field {name!r} holds {what}, which have no place in a numeric column",
            expected="bool, int, uint, float, complex or datetime fields", got=str(dtype),
            hint="drop the field, or encode it to numbers (categories, hashes) first"))
    if not dtype.isnative and dtype.itemsize > 1:
        raise UnsupportedDtypeError(message(
            f"field {name!r} is stored in non-native byte order",
            expected="native byte order", got=dtype.str,
            hint="convert once with arr.astype(arr.dtype.newbyteorder('='))"))
    return dtype


def _leaves(dtype: np.dtype, prefix: str, base: int) -> Iterable[Field]:
    """Flatten a (possibly nested) structured dtype into leaf fields with absolute offsets."""
    fields: Mapping[str, Any] = dtype.fields or {}  # a structured dtype: its caller checked
    for name in dtype.names or ():
        ftype, offset = fields[name][:2]
        full = f"{prefix}{name}"
        shape: tuple[int, ...] = ()
        if ftype.subdtype is not None:
            ftype, shape = ftype.subdtype
        if ftype.names is not None:
            if shape:  # an array of structs has no single column form
                raise LayoutError(message(
                    f"field {full!r} is an array of records", expected="scalar or sub-array "
                    "fields of numbers", got=str(fields[name][0]),
                    hint="flatten the nested records into separate fields first"))
            yield from _leaves(ftype, full + ".", base + offset)
            continue
        yield Field(full, check_column_dtype(ftype, full), base + offset, tuple(shape))


@dataclass(frozen=True)
class RecordLayout:
    """Leaf fields of a record and its size in bytes (the record stride when packed)."""

    fields: tuple[Field, ...]
    itemsize: int

    @classmethod
    def from_dtype(cls, dtype: np.dtype) -> RecordLayout:
        """The layout of a structured dtype: one object per dtype (cached), so that the
        plans and kernels keyed on it are found again on the next call."""
        return _from_dtype(np.dtype(dtype))

    @classmethod
    def build(cls, names: Sequence[str], dtypes: Sequence[np.dtype],
              shapes: Sequence[tuple[int, ...]] | None = None, *,
              aligned: bool = False) -> RecordLayout:
        """Lay out columns as a packed record, or as a C struct would (``aligned=True``)."""
        shapes = shapes or [()] * len(names)
        return _built(tuple(names), tuple(np.dtype(d) for d in dtypes),
                      tuple(tuple(s) for s in shapes), aligned)

    def __hash__(self) -> int:  # plan caches key on layouts: hash the fields once
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.fields, self.itemsize))
            object.__setattr__(self, "_hash", cached)
        return cached

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise LayoutError(message(f"no field named {name!r} in the record",
                                  expected=f"one of {list(self.names)}", got=repr(name)))

    def select(self, names: Sequence[str]) -> RecordLayout:
        """The same record, reading only ``names`` (offsets and size unchanged)."""
        names = check_unique_names(names, "names=", "name each field once")
        return RecordLayout(tuple(self.field(n) for n in names), self.itemsize)

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of fields that share bytes (numpy allows them; writing them is ambiguous)."""
        spans = sorted((f.offset, f.offset + f.width, f.name) for f in self.fields if f.width)
        return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]

    def gaps(self) -> list[tuple[int, int]]:
        """Byte ranges ``[start, end)`` of the record that no field covers (padding)."""
        return list(self._gaps)

    @functools.cached_property
    def _gaps(self) -> tuple[tuple[int, int], ...]:
        out, pos = [], 0
        for start, end in sorted((f.offset, f.offset + f.width) for f in self.fields):
            if start > pos:
                out.append((pos, start))
            pos = max(pos, end)
        if pos < self.itemsize:
            out.append((pos, self.itemsize))
        return tuple(out)

    def check_writable(self) -> None:
        """Writing records needs every byte to come from exactly one field."""
        if self.__dict__.get("_writable"):
            return
        pairs = self.overlaps()
        if pairs:
            raise LayoutError(message(
                "the record description has overlapping fields", expected="disjoint fields",
                got=", ".join(f"{a!r} and {b!r}" for a, b in pairs),
                hint="give each field its own bytes (numpy align=True lays them out)"))
        object.__setattr__(self, "_writable", True)

    def to_dtype(self) -> np.dtype:
        """The flat structured dtype (dotted names for what was nested)."""
        return self._dtype

    @functools.cached_property
    def _dtype(self) -> np.dtype:
        return np.dtype({"names": list(self.names),
                         "formats": [f.column_dtype for f in self.fields],
                         "offsets": [f.offset for f in self.fields],
                         "itemsize": self.itemsize})

    def uniform_dtype(self) -> np.dtype | None:
        """The one scalar dtype of a record of back-to-back scalar fields, else None."""
        return self._uniform

    @functools.cached_property
    def _uniform(self) -> np.dtype | None:
        if not self.fields:
            return None
        dt = self.fields[0].dtype
        step = dt.itemsize
        same = all(f.dtype == dt and not f.shape and f.offset == i * step
                   for i, f in enumerate(self.fields))
        return dt if same and self.itemsize == step * len(self.fields) else None

    def explain(self) -> str:
        lines = [f"record of {self.itemsize} bytes, {len(self.fields)} fields"]
        for f in self.fields:
            shape = f" x {f.shape}" if f.shape else ""
            lines.append(f"  {f.name:<16} {f.dtype.str:<6}{shape} bytes "
                         f"[{f.offset}, {f.offset + f.width})")
        lines += [f"  (padding)        bytes [{a}, {b})" for a, b in self.gaps()]
        return "\n".join(lines)


@functools.lru_cache(maxsize=512)
def _from_dtype(dtype: np.dtype) -> RecordLayout:
    if dtype.names is None:
        raise LayoutError(message(
            "a record description needs named fields", expected="a structured dtype",
            got=str(dtype), hint="pass e.g. [('x', 'f4'), ('y', 'i8')]"))
    return RecordLayout(tuple(_leaves(dtype, "", 0)), dtype.itemsize)


@functools.lru_cache(maxsize=512)
def _built(names: tuple[str, ...], dtypes: tuple[np.dtype, ...],
           shapes: tuple[tuple[int, ...], ...], aligned: bool) -> RecordLayout:
    formats = [np.dtype((d, s)) if s else d for d, s in zip(dtypes, shapes, strict=True)]
    return _from_dtype(np.dtype({"names": list(names), "formats": formats}, align=aligned))


def record_layout(description: object, *, aligned: bool | None = None) -> RecordLayout:
    """A :class:`RecordLayout` from a dtype or anything ``np.dtype`` accepts.

    ``aligned`` re-lays the fields out packed (False) or C-struct aligned (True); None keeps
    the offsets as given.
    """
    if isinstance(description, RecordLayout):
        layout = description
    else:
        try:
            dtype = np.dtype(description)  # type: ignore[call-overload]
        except TypeError as exc:
            raise LayoutError(message("not a record description", expected="a structured "
                                      "dtype or a list of (name, type) pairs",
                                      got=repr(description))) from exc
        layout = RecordLayout.from_dtype(dtype)
    if aligned is None:
        return layout
    return RecordLayout.build(layout.names, [f.dtype for f in layout.fields],
                              [f.shape for f in layout.fields], aligned=aligned)
