"""Results come back in the caller's framework; importing the package imports none."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from zerocopy.layout import stack, to_columns, to_records, unstack


def test_import_and_numpy_use_load_no_framework():
    code = (
        "import sys, numpy as np\n"
        "import zerocopy.layout as L\n"
        "a = np.zeros(4, [('x', 'f4'), ('y', 'i8')])\n"
        "L.to_records(L.to_columns(a))\n"
        "L.stack({'a': np.zeros(3)}, order='C')\n"
        "bad = [m for m in ('torch', 'jax', 'tensorflow', 'pyarrow', 'pandas', 'polars',\n"
        "                   'cupy', 'numba.cuda') if m in sys.modules]\n"
        "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_torch_matrix_to_torch_columns_and_back():
    torch = pytest.importorskip("torch")
    m = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    cols = to_columns(m, names=["a", "b", "c"])
    assert all(isinstance(c, torch.Tensor) for c in cols.values())
    assert torch.equal(cols["b"], m[:, 1])
    back = to_records(cols)
    assert isinstance(back, torch.Tensor) and torch.equal(back, m)


def test_torch_f_order_columns_are_views():
    torch = pytest.importorskip("torch")
    m = torch.zeros(3, 5).t()  # (5, 3), column-major
    cols = to_columns(m, copy=False)
    assert cols["1"].data_ptr() == m[:, 1].data_ptr()
    m[4, 1] = 3.0
    assert cols["1"][4] == 3.0


def test_torch_mixed_columns_give_byte_records():
    torch = pytest.importorskip("torch")
    cols = {"a": torch.arange(4, dtype=torch.int64), "b": torch.ones(4, dtype=torch.float32)}
    rec = to_records(cols)
    assert isinstance(rec, torch.Tensor) and rec.shape == (4, 12) and rec.dtype == torch.uint8
    back = to_columns(rec, dtype=[("a", "i8"), ("b", "f4")])
    assert torch.equal(back["a"], cols["a"]) and torch.equal(back["b"], cols["b"])


def test_jax_matrix_columns():
    jnp = pytest.importorskip("jax.numpy")
    m = jnp.arange(12.0, dtype=jnp.float32).reshape(4, 3)
    cols = to_columns(m)
    assert np.array_equal(np.asarray(cols["2"]), np.asarray(m)[:, 2])
    assert type(cols["2"]).__module__.startswith("jax")


def test_stack_to_framework_targets():
    torch = pytest.importorskip("torch")
    t = {"a": np.arange(3, dtype=np.float32), "b": np.ones(3, np.float32)}
    res = stack(t, to="torch")
    assert isinstance(res, torch.Tensor) and res.is_contiguous()
    res_f = stack(unstack(np.asfortranarray(stack(t)), ["a", "b"]), order="F", to="torch")
    assert res_f.stride() == (1, 3)
