"""The case generator: which object a user has, its dtype, shape, view, nulls, and what is
asked of zerocopy (target, copy mode).

A case is plain data (:class:`Case`); :func:`build` turns it into Python source text and
evaluates that text, so the one-line repro printed for a failure is exactly the code that
built the object. :func:`draw_case` takes any ``Draw`` (Hypothesis' ``data`` or a seeded
``random.Random``), so pytest and the standalone runner walk the same space.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, TypeVar

import numpy as np
from tests.fuzz.natives import CPU, Column, columns_of, dtype_of, mod, same_values, values_of

from zerocopy._dtypes import SHARED_DTYPES

__all__ = ["KINDS", "Built", "Case", "Draw", "build", "draw_case", "holds", "namespace", "options", "repro",
           "same_columns", "target_arg"]

T = TypeVar("T")
COPIES: tuple[bool | None, ...] = (None, True, False)


class Draw(Protocol):
    def choice(self, options: Sequence[T]) -> T: ...
    def integer(self, low: int, high: int) -> int: ...


@dataclass(frozen=True)
class Case:
    kind: str                  # a key of KINDS, "<framework>.<object kind>"
    dtype: str                 # canonical dtype name
    shape: tuple[int, ...]     # shape of the data D the object is built from
    view: str                  # array views; "-" for columns and tables
    nulls: bool
    values: str                # "arange" (readable repro) or "bits" (random bytes: NaN payloads...)
    seed: int
    copy: bool | None
    target: str
    again: bool = False        # convert twice: the second call may take the fast lane
    spelling: str = "name"     # the target as "name", "alias" ("pd", "tf"...) or "module" (pd, tf...)
    device: str | None = None  # device="cpu" said explicitly (another path through to())

    @property
    def source(self) -> str:
        return self.kind.partition(".")[0]


@dataclass
class Built:
    obj: Any
    code: str                  # Python expression that builds obj (uses np, pa, pd, ...)
    expected: np.ndarray       # logical values, computed with NumPy only
    mask: np.ndarray | None    # expected nulls (True = null) or None
    columns: list[Column] | None = None  # mixed-dtype tables: each column's dtype, values, nulls


# --------------------------------------------------------------- kinds

@dataclass(frozen=True)
class Kind:
    framework: str
    layout: str                 # "array" | "column" | "table"
    make: Callable[[Case], tuple[str, str, str | None]]  # (code, expected, mask) templates over D, M
    views: tuple[str, ...] = ("-",)
    nullable: bool = False
    min_columns: int = 0        # Parquet keeps no row count without a column


def _torch(case: Case) -> str:
    return ("torch.from_numpy(D.view('int16')).view(torch.bfloat16)" if case.dtype == "bfloat16"
            else "torch.from_numpy(D)")


_REVERSED = {2: "(1, 0)", 3: "(2, 1, 0)", 4: "(3, 2, 1, 0)"}


def _numpy_view(case: Case) -> tuple[str, str, str | None]:
    code = {"c": "D", "transpose": "D.T", "step": "D[::2]", "negative": "D[::-1]",
            "fortran": "np.asfortranarray(D)", "offset": "D[1:]",
            "readonly": "np.lib.stride_tricks.as_strided(D, writeable=False)",
            "broadcast": "np.broadcast_to(D[:1], D.shape)", "inner_step": "D[..., ::2]"}[case.view]
    return code, "D" if case.view == "readonly" else code, None


def _torch_view(case: Case) -> tuple[str, str, str | None]:
    base = _torch(case)
    ndim = len(case.shape)
    code, expected = {
        "c": (base, "D"),
        "transpose": (f"{base}.permute{_REVERSED[ndim]}", f"D.transpose{_REVERSED[ndim]}") if ndim > 1
        else (base, "D"),
        "step": (f"{base}[::2]", "D[::2]"),
        "offset": (f"{base}[1:]", "D[1:]"),
        "requires_grad": (f"{base}.requires_grad_()", "D"),
        "conj": (f"{base}.conj()", "D.conj()"),  # a lazy view: torch sets a conjugate bit
        "expand": (f"{base}[:1].expand{_shape_code(case.shape)}", "np.broadcast_to(D[:1], D.shape)"),
    }[case.view]
    return code, expected, None


def _arrow(case: Case, data: str = "D", mask: str = "M") -> str:
    return f"pa.array({data}, mask={mask})" if case.nulls else f"pa.array({data})"


def _half(case: Case) -> int:
    return case.shape[0] // 2


def _arrow_chunked(case: Case) -> str:
    k = _half(case)
    return (f"pa.chunked_array([{_arrow(case, f'D[:{k}]', f'M[:{k}]')}, "
            f"{_arrow(case, f'D[{k}:]', f'M[{k}:]')}])")


def _columns(case: Case, column: Callable[[int], str]) -> str:
    return "{" + ", ".join(f"'c{j}': {column(j)}" for j in range(case.shape[1])) + "}"


def _arrow_table(case: Case, rows: str = "", maker: str = "pa.table") -> str:
    if case.shape[1] == 0:
        return f"{maker}({{'c0': np.zeros(len(D))}}).drop_columns(['c0'])"
    return f"{maker}(" + _columns(case, lambda j: _arrow(case, f"D[{rows}:, {j}]", f"M[{rows}:, {j}]")) + ")"


def _parquet(table: str, *, to_bytes: bool = False) -> str:
    tail = ".to_pybytes()" if to_bytes else ""
    return (f"(lambda s: [pq.write_table({table}, s, row_group_size=2), s.getvalue(){tail}][1])"
            "(pa.BufferOutputStream())")


def _masked_pandas(case: Case, data: str = "D", mask: str = "M") -> str:
    kind = ("BooleanArray" if case.dtype == "bool" else "FloatingArray" if case.dtype.startswith("float")
            else "IntegerArray")
    return f"pd.arrays.{kind}(np.ascontiguousarray({data}), np.ascontiguousarray({mask}))"


def _polars_frame(case: Case, rows: str = ":") -> str:
    if case.shape[1] == 0:
        return "pl.DataFrame(height=len(D))"
    if case.nulls:
        return f"pl.from_arrow({_arrow_table(case, rows.rstrip(':'))})"
    return "pl.DataFrame(" + _columns(case, lambda j: f"D[{rows}, {j}]") + ")"


def _polars_series(case: Case, data: str = "D", mask: str = "M") -> str:
    return f"pl.Series({_arrow(case, data, mask)})" if case.nulls else f"pl.Series({data})"


def partner(dtype: str) -> str:
    """The dtype of the odd columns of a mixed-dtype table."""
    return "float64" if dtype == "int32" else "int32"


def _mixed_column(case: Case, j: int, rows: str = ":") -> str:
    return f"D[{rows}, {j}]" + (f".astype('{partner(case.dtype)}')" if j % 2 else "")


def _mixed_arrow(case: Case) -> str:
    return "pa.table(" + _columns(case, lambda j: _arrow(case, _mixed_column(case, j), f"M[:, {j}]")) + ")"


def _mixed_polars(case: Case) -> str:
    if case.nulls:
        return f"pl.from_arrow({_mixed_arrow(case)})"
    return "pl.DataFrame(" + _columns(case, lambda j: _mixed_column(case, j)) + ")"


_MASK = "M"
_ARRAY_VIEWS_NUMPY = ("c", "c", "transpose", "step", "negative", "fortran", "offset", "readonly", "broadcast",
                      "inner_step")

KINDS: dict[str, Kind] = {
    "numpy.ndarray": Kind("numpy", "array", _numpy_view, _ARRAY_VIEWS_NUMPY),
    "numpy.from_torch": Kind("numpy", "array", lambda c: ("np.from_dlpack(torch.tensor(D))", "D", None)),
    "numpy.masked": Kind("numpy", "array", lambda c: ("np.ma.array(D, mask=M)", "D", _MASK), nullable=True),
    "torch.tensor": Kind("torch", "array", _torch_view,
                         ("c", "c", "transpose", "step", "offset", "requires_grad", "conj", "expand")),
    # jax.device_put, not jnp.asarray: the latter compiles a program per shape for unaligned
    # input (seconds over a suite), and the array it gives is the same kind of object.
    "jax.array": Kind("jax", "array", lambda c: ("jax.device_put(D)", "D", None)),
    "jax.from_transposed": Kind("jax", "array", lambda c: ("jax.device_put(D.T)", "D.T", None)),
    # Imported from a transposed (column-major) torch tensor: JAX keeps that layout.
    "jax.column_major": Kind("jax", "array", lambda c: (
        f"jax.dlpack.from_dlpack(torch.tensor(D.T).permute{_REVERSED[len(c.shape)]})" if len(c.shape) > 1
        else "jax.dlpack.from_dlpack(torch.tensor(D))", "D", None)),
    "tensorflow.tensor": Kind("tensorflow", "array", lambda c: ("tf.constant(D)", "D", None)),
    # Over memory TensorFlow does not own (a torch tensor's, through DLPack).
    "tensorflow.from_torch": Kind("tensorflow", "array", lambda c: (
        "tf.experimental.dlpack.from_dlpack(torch.tensor(D).__dlpack__())", "D", None)),
    "pyarrow.array": Kind("pyarrow", "column", lambda c: (_arrow(c), "D", _MASK), nullable=True),
    "pyarrow.sliced": Kind("pyarrow", "column", lambda c: (f"{_arrow(c)}.slice(1)", "D[1:]", "M[1:]"),
                           nullable=True),
    "pyarrow.chunked1": Kind("pyarrow", "column", lambda c: (f"pa.chunked_array([{_arrow(c)}])", "D", _MASK),
                             nullable=True),
    "pyarrow.chunked2": Kind("pyarrow", "column", lambda c: (_arrow_chunked(c), "D", _MASK), nullable=True),
    "pyarrow.table": Kind("pyarrow", "table", lambda c: (_arrow_table(c), "D", _MASK), nullable=True),
    "pyarrow.record_batch": Kind("pyarrow", "table", lambda c: (
        _arrow_table(c, maker="pa.record_batch"), "D", _MASK), nullable=True),
    "pyarrow.sliced_table": Kind("pyarrow", "table", lambda c: (
        f"{_arrow_table(c)}.slice(1)" if c.shape[1]
        else "pa.table({'c0': np.zeros(len(D))}).slice(1).drop_columns(['c0'])", "D[1:]", "M[1:]"),
        nullable=True),
    "pyarrow.parquet": Kind("pyarrow", "table", lambda c: (
        f"pq.read_table(pa.BufferReader({_parquet(_arrow_table(c))}))", "D", _MASK), nullable=True, min_columns=1),
    "pandas.series": Kind("pandas", "column", lambda c: ("pd.Series(D)", "D", None)),
    "pandas.series_step": Kind("pandas", "column", lambda c: ("pd.Series(D).iloc[::2]", "D[::2]", None)),
    "pandas.series_offset": Kind("pandas", "column", lambda c: ("pd.Series(D).iloc[1:]", "D[1:]", None)),
    "pandas.frame": Kind("pandas", "table", lambda c: ("pd.DataFrame(D)", "D", None)),
    "pandas.frame_dict": Kind("pandas", "table", lambda c: (
        "pd.DataFrame(" + _columns(c, lambda j: f"D[:, {j}]") + ")" if c.shape[1]
        else "pd.DataFrame(index=range(len(D)))", "D", None)),
    "pandas.frame_sliced": Kind("pandas", "table", lambda c: ("pd.DataFrame(D).iloc[1:]", "D[1:]", None)),
    "pandas.frame_step": Kind("pandas", "table", lambda c: ("pd.DataFrame(D).iloc[::2]", "D[::2]", None)),
    "pandas.frame_lazy_copy": Kind("pandas", "table", lambda c: ("pd.DataFrame(D).copy(deep=False)", "D", None)),
    "pandas.nullable": Kind("pandas", "column", lambda c: (f"pd.Series({_masked_pandas(c)})", "D", _MASK),
                            nullable=True),
    "pandas.nullable_frame": Kind("pandas", "table", lambda c: (
        "pd.DataFrame(" + _columns(c, lambda j: _masked_pandas(c, f"D[:, {j}]", f"M[:, {j}]")) + ")"
        if c.shape[1] else "pd.DataFrame(index=range(len(D)))", "D", _MASK), nullable=True),
    "pandas.arrow": Kind("pandas", "column", lambda c: (
        f"pd.Series(pd.arrays.ArrowExtensionArray({_arrow(c)}))", "D", _MASK), nullable=True),
    "pandas.arrow_chunked": Kind("pandas", "column", lambda c: (
        f"pd.Series(pd.arrays.ArrowExtensionArray({_arrow_chunked(c)}))", "D", _MASK), nullable=True),
    "pandas.read_parquet": Kind("pandas", "table", lambda c: (
        f"pd.read_parquet(io.BytesIO({_parquet(_arrow_table(c), to_bytes=True)}), dtype_backend='pyarrow')",
        "D", _MASK), nullable=True, min_columns=1),
    "polars.series": Kind("polars", "column", lambda c: (_polars_series(c), "D", _MASK), nullable=True),
    "polars.sliced": Kind("polars", "column", lambda c: (f"{_polars_series(c)}.slice(1)", "D[1:]", "M[1:]"),
                          nullable=True),
    "polars.chunked": Kind("polars", "column", lambda c: (
        f"pl.concat([{_polars_series(c, f'D[:{_half(c)}]', f'M[:{_half(c)}]')}, "
        f"{_polars_series(c, f'D[{_half(c)}:]', f'M[{_half(c)}:]')}], rechunk=False)", "D", _MASK),
        nullable=True),
    "polars.frame": Kind("polars", "table", lambda c: (_polars_frame(c), "D", _MASK), nullable=True),
    "polars.sliced_frame": Kind("polars", "table", lambda c: (f"{_polars_frame(c)}.slice(1)", "D[1:]", "M[1:]"),
                                nullable=True),
    "polars.chunked_frame": Kind("polars", "table", lambda c: (
        f"pl.concat([{_polars_frame(c, f':{_half(c)}')}, {_polars_frame(c, f'{_half(c)}:')}], rechunk=False)"
        if c.shape[1] else "pl.DataFrame(height=len(D))", "D", _MASK), nullable=True),
    # Columns of two dtypes: case.dtype in even columns, partner(case.dtype) in odd ones.
    "pandas.mixed_frame": Kind("pandas", "table", lambda c: (
        "pd.DataFrame(" + _columns(c, lambda j: _mixed_column(c, j)) + ")", "D", None), min_columns=2),
    "pyarrow.mixed_table": Kind("pyarrow", "table", lambda c: (_mixed_arrow(c), "D", _MASK), nullable=True,
                                min_columns=2),
    "polars.mixed_frame": Kind("polars", "table", lambda c: (_mixed_polars(c), "D", _MASK), nullable=True,
                               min_columns=2),
}
KINDS_OF: dict[str, tuple[str, ...]] = {f: tuple(k for k in KINDS if k.startswith(f + ".")) for f in CPU}


# --------------------------------------------------------------- building

@cache
def namespace() -> dict[str, Any]:
    """Every framework, imported once (TensorFlow and JAX take seconds)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="(jax|tensorflow|google|keras).*")
    return {"np": np, "io": mod("io"), "ml_dtypes": mod("ml_dtypes"), "torch": mod("torch"),
            "jax": mod("jax"), "jnp": mod("jax.numpy"), "tf": mod("tensorflow"), "pa": mod("pyarrow"),
            "pq": mod("pyarrow.parquet"), "pd": mod("pandas"), "pl": mod("polars"), "zerocopy": mod("zerocopy")}


def _dtype_code(dtype: str) -> str:
    return "ml_dtypes.bfloat16" if dtype == "bfloat16" else repr(dtype)


def _shape_code(shape: tuple[int, ...]) -> str:
    return repr(shape) if len(shape) != 1 else f"({shape[0]},)"


def data_code(case: Case) -> str:
    n = int(np.prod(case.shape))
    shape = _shape_code(case.shape)
    if case.values == "arange":
        start = case.seed % 50
        if case.dtype == "bool":
            return f"(np.arange({start}, {start + n}) % 3 == 1).reshape({shape})"
        return f"np.arange({start}, {start + n}).reshape({shape}).astype({_dtype_code(case.dtype)})"
    rng = np.random.default_rng(case.seed)
    itemsize = 2 if case.dtype == "bfloat16" else np.dtype(case.dtype).itemsize
    raw = (rng.integers(0, 2, n, dtype=np.uint8) if case.dtype == "bool"
           else rng.integers(0, 256, n * itemsize, dtype=np.uint8))
    dtype = "'?'" if case.dtype == "bool" else _dtype_code(case.dtype)
    return f"np.frombuffer(bytearray.fromhex('{raw.tobytes().hex()}'), {dtype}).reshape({shape})"


def mask_code(case: Case) -> str:
    n = int(np.prod(case.shape))
    if not case.nulls or n == 0:
        return f"np.zeros({_shape_code(case.shape)}, bool)"
    rng = np.random.default_rng(case.seed + 1)
    bits = rng.integers(0, 2, n)
    bits[rng.integers(0, n)] = 1  # at least one null
    return f"np.array({bits.tolist()}, bool).reshape({_shape_code(case.shape)})"


def _substitute(template: str, d: str, m: str) -> str:
    uses_d, uses_m = len(re.findall(r"\bD\b", template)), len(re.findall(r"\bM\b", template))
    if uses_d <= 1 and uses_m <= 1:
        return re.sub(r"\bM\b", lambda _: m, re.sub(r"\bD\b", lambda _: d, template))
    return f"(lambda D, M: {template})({d}, {m})" if uses_m else f"(lambda D: {template})({d})"


class BuildError(Exception):
    """The fuzzer could not build this source (a test-side fact, never a library failure)."""


def build(case: Case) -> Built:
    ns = namespace()
    template, expected_template, mask_template = KINDS[case.kind].make(case)
    d, m = data_code(case), mask_code(case)
    code = _substitute(template, d, m)
    scope = {**ns, "D": eval(d, ns), "M": eval(m, ns)}
    expected = np.array(eval(expected_template, scope), copy=True)
    mask = np.array(eval(mask_template, scope), copy=True) if mask_template and case.nulls else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            obj = eval(code, ns)
    except Exception as exc:
        raise BuildError(f"{code}: {type(exc).__name__}: {exc}") from exc
    mixed = ".mixed" in case.kind
    if dtype_of(obj) not in (case.dtype, None, "mixed" if mixed else None):
        raise BuildError(f"{code} holds {dtype_of(obj)}, not {case.dtype}")
    columns = None
    if mixed:
        columns = []
        for j in range(case.shape[1]):
            values = np.array(eval(_mixed_column(case, j), scope), copy=True)
            nulls = mask[:, j] if mask is not None and mask[:, j].any() else None
            columns.append((partner(case.dtype) if j % 2 else case.dtype, values, nulls))
    return Built(obj, code, expected, mask if mask is not None and mask.any() else None, columns)


@cache
def buildable(kind: str, dtype: str, nulls: bool) -> bool:
    """Can this framework hold this dtype (with nulls) as this kind, and do the readers read
    it back as built? Tried once on a small probe."""
    spec = KINDS[kind]
    shape = (6, 2) if spec.layout == "table" else (6,)
    case = Case(kind, dtype, shape, spec.views[0], nulls, "arange", 7, None, "numpy")
    try:
        return holds(build(case))
    except Exception:
        return False


def same_columns(got: list[Column], want: list[Column]) -> bool:
    return len(got) == len(want) and all(
        d1 == d2 and same_values(v1, m1, v2, m2) for (d1, v1, m1), (d2, v2, m2) in zip(got, want, strict=True))


def holds(built: Built) -> bool:
    """Does the object hold what was built (read back by the independent readers)?"""
    if built.columns is not None:
        return same_columns(columns_of(built.obj), built.columns)
    values, mask = values_of(built.obj)
    return same_values(values, mask, built.expected, built.mask)


def dtypes_for(kind: str) -> tuple[str, ...]:
    return tuple(d for d in SHARED_DTYPES if buildable(kind, d, False))


# --------------------------------------------------------------- drawing

_ARRAY_NDIMS = (0, 1, 1, 2, 2, 2, 3, 4)
_LENGTHS = (0, 1, 2, 3, 5, 8, 33, 100)
_SIDES = (1, 2, 3, 4)
_EMPTY = (False,) * 7 + (True,)
_WIDTHS = (0, 1, 1, 2, 2, 3)


def _shape(d: Draw, spec: Kind) -> tuple[int, ...]:
    layout = spec.layout
    if layout == "column":
        return (d.choice(_LENGTHS),)
    if layout == "table":
        return (d.choice(_LENGTHS), max(d.choice(_WIDTHS), spec.min_columns))
    ndim = d.choice(_ARRAY_NDIMS)
    if ndim == 1:
        return (d.choice(_LENGTHS),)
    shape = [d.choice(_SIDES) for _ in range(ndim)]
    if ndim and d.choice(_EMPTY):  # size 0 now and then, not in half of all 4-D cases
        shape[d.integer(0, ndim - 1)] = 0
    return tuple(shape)


def _view_fits(view: str, shape: tuple[int, ...], dtype: str) -> bool:
    if view == "conj":
        return dtype.startswith("complex")
    if view in ("step", "negative", "offset", "broadcast", "expand", "inner_step"):
        return len(shape) >= 1
    if view == "transpose":
        return len(shape) >= 2
    if view == "requires_grad":
        return dtype in ("float32", "float64")
    return True


def draw_case(d: Draw, source: str | None = None, target: str | None = None) -> Case:
    kind = d.choice(KINDS_OF[source or d.choice(CPU)])
    spec = KINDS[kind]
    dtype = d.choice(dtypes_for(kind))
    shape = _shape(d, spec)
    view = d.choice(spec.views)
    if not _view_fits(view, shape, dtype):
        view = spec.views[0]
    nulls = spec.nullable and d.choice((False, True)) and buildable(kind, dtype, True)
    if kind == "numpy.masked":
        nulls = True  # its mask is drawn; a mask may still be all False
    # Random bits would make NaN under a null or an int cast of NaN (mixed tables): values only.
    plain_only = nulls or kind.startswith("pandas.nullable") or ".mixed" in kind
    values = "arange" if plain_only else d.choice(("arange", "bits"))
    seed = d.integer(0, 2**31 - 1)
    return Case(kind, dtype, shape, view, bool(nulls), values, seed, d.choice(COPIES),
                target or d.choice(CPU), d.choice((False, False, False, True)),
                d.choice(("name",) * 6 + ("alias", "module")), d.choice((None,) * 7 + ("cpu",)))


# --------------------------------------------------------------- repro

_IMPORTS = (("io", "io"), ("ml_dtypes", "ml_dtypes"), ("np", "numpy as np"), ("torch", "torch"),
            ("jax", "jax"), ("jnp", "jax.numpy as jnp"), ("tf", "tensorflow as tf"), ("pa", "pyarrow as pa"),
            ("pq", "pyarrow.parquet as pq"), ("pd", "pandas as pd"), ("pl", "polars as pl"))


_ALIASES = {"numpy": "np", "torch": "pytorch", "jax": "jnp", "tensorflow": "tf", "pyarrow": "pa",
            "pandas": "pd", "polars": "pl"}
_MODULES = {"numpy": "np", "torch": "torch", "jax": "jax", "tensorflow": "tf", "pyarrow": "pa",
            "pandas": "pd", "polars": "pl"}


def target_code(case: Case) -> str:
    if case.spelling == "alias":
        return repr(_ALIASES[case.target])
    if case.spelling == "module":
        return _MODULES[case.target]
    return repr(case.target)


def target_arg(case: Case) -> Any:
    """The target as this case spells it (a module object for "module")."""
    return eval(target_code(case), namespace()) if case.spelling == "module" else eval(target_code(case))


def options(case: Case) -> dict[str, Any]:
    found: dict[str, Any] = {} if case.copy is None else {"copy": case.copy}
    return found if case.device is None else {**found, "device": case.device}


def repro(case: Case, code: str | None = None) -> str:
    """A line a user can paste into Python to see the same behaviour."""
    if code is None:
        template = KINDS[case.kind].make(case)[0]
        code = _substitute(template, data_code(case), mask_code(case))
    target = target_code(case)
    used = [imp for name, imp in _IMPORTS if re.search(rf"\b{name}\.", f"{code} {target}.")]
    extra = "".join(f", {k}={v!r}" for k, v in options(case).items())
    imports = f"import {', '.join([*used, 'zerocopy'])}"
    if case.again:
        call = f"zerocopy.to(x, {target}{extra})"
        return f"{imports}; x = {code}; {call}; {call}"
    return f"{imports}; zerocopy.to({code}, {target}{extra})"
