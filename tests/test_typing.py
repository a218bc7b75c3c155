"""zerocopy.to is typed per target for editors, at no run-time cost; the package is typed."""

from __future__ import annotations

import typing
from pathlib import Path

import zerocopy


def test_overloads_name_each_framework_type() -> None:
    from zerocopy import _typing

    returns = {}
    for overload in typing.get_overloads(_typing.to):
        target = overload.__annotations__["target"]
        returns[target] = overload.__annotations__["return"]
    assert returns["Literal['numpy', 'np']"] == "numpy.ndarray"
    assert returns["Literal['torch', 'pytorch']"] == "torch.Tensor"
    assert returns["Literal['jax', 'jnp']"] == "jax.Array"
    assert returns["Literal['tensorflow', 'tf']"] == "tensorflow.Tensor"
    assert returns["Any"] == "Any"  # any other target


def test_run_time_to_is_the_converter_itself() -> None:
    from zerocopy import _typing
    from zerocopy.exchange.convert import to

    assert zerocopy.to is to  # the overloads are for type checkers only
    x = zerocopy.empty(4)
    assert _typing.to(x, "numpy") is x  # the typed signature forwards to the same function


def test_py_typed_ships_with_the_package() -> None:
    package = Path(zerocopy.__file__).parent
    assert (package / "py.typed").is_file()
    pyproject = (package.parents[1] / "pyproject.toml").read_text()
    package_data = next(line for line in pyproject.splitlines() if line.startswith("zerocopy = ["))
    assert '"py.typed"' in package_data
