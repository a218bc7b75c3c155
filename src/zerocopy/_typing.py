"""What ``zerocopy.to`` returns, for editors and type checkers.

``zerocopy/__init__.py`` imports ``to`` from here only under ``TYPE_CHECKING``; at run time
it is ``zerocopy.exchange.convert.to`` itself, so these overloads cost nothing. A target
given as a literal name (or alias) gives the framework's own type; anything else ``Any``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from zerocopy.exchange.convert import to as convert

if TYPE_CHECKING:
    import cupy
    import jax
    import numpy
    import pandas
    import polars
    import pyarrow
    import tensorflow
    import torch

__all__ = ["to"]


@overload
def to(obj: Any, target: Literal["numpy", "np"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> numpy.ndarray: ...
@overload
def to(obj: Any, target: Literal["torch", "pytorch"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> torch.Tensor: ...
@overload
def to(obj: Any, target: Literal["jax", "jnp"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> jax.Array: ...
@overload
def to(obj: Any, target: Literal["tensorflow", "tf"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> tensorflow.Tensor: ...
@overload
def to(obj: pandas.DataFrame | polars.DataFrame, target: Literal["pyarrow", "arrow", "pa"], *,
       copy: bool | None = None, device: Any = None, stream: Any = None) -> pyarrow.Table: ...
@overload
def to(obj: Any, target: Literal["pyarrow", "arrow", "pa"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> pyarrow.Array | pyarrow.ChunkedArray | pyarrow.Table: ...
@overload
def to(obj: Any, target: Literal["pandas", "pd"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> pandas.Series | pandas.DataFrame: ...
@overload
def to(obj: Any, target: Literal["polars", "pl"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> polars.Series | polars.DataFrame: ...
@overload
def to(obj: Any, target: Literal["cupy", "cp"], *, copy: bool | None = None,
       device: Any = None, stream: Any = None) -> cupy.ndarray: ...
@overload
def to(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
       stream: Any = None) -> Any: ...


def to(obj: Any, target: Any, *, copy: bool | None = None, device: Any = None,
       stream: Any = None) -> Any:
    """``zerocopy.to`` (see ``zerocopy.exchange.convert.to``): only its signature lives here."""
    return convert(obj, target, copy=copy, device=device, stream=stream)
