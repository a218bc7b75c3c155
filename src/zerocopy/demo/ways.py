"""The two ways of handing data between frameworks: ``naive`` and ``zerocopy``.

The pipeline (``pipeline.py``) calls the same methods in both ways; only these hand-offs
differ. ``Naive`` writes what users write today, the frameworks' own one-liners
(``df[col].to_numpy()``, ``jnp.asarray``, ``np.asarray``, ``torch.tensor``,
``tensor.numpy()``, ``pd.DataFrame``, and on a GPU the ``.get()`` / ``.cpu().numpy()``
round trips through the host). ``ZeroCopy`` calls ``zerocopy.to`` and the layout engine.
Every call goes through the :class:`~zerocopy.demo.ledger.Ledger`, which measures what
it really copied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import zerocopy
from zerocopy.demo.kernels import META, beat_dtype, record_views
from zerocopy.demo.ledger import Ledger, buffers

__all__ = ["WAYS", "Naive", "ZeroCopy"]


class Naive:
    name = "naive"

    def __init__(self, ledger: Ledger, gpu: bool) -> None:
        self.ledger, self.gpu = ledger, gpu

    def column(self, df: Any, name: str) -> Any:
        col = df[name]
        if self.gpu and type(df).__module__.startswith("cudf"):
            return self.ledger.move(col, lambda: col.values, dst="cupy", call=f"df[{name!r}].values")
        if self.gpu:
            import cupy

            return self.ledger.move(col, lambda: cupy.asarray(col.to_numpy()), dst="cupy",
                                    call=f"cupy.asarray(df[{name!r}].to_numpy())")
        return self.ledger.move(col, lambda: col.to_numpy(), dst="numpy", call=f"df[{name!r}].to_numpy()")

    def to_jax(self, x: Any, what: str = "x") -> Any:
        import jax.numpy as jnp

        if self.gpu:
            return self.ledger.move(x, lambda: jnp.asarray(_host(x)), dst="jax",
                                    call=f"jnp.asarray({what}.get())")
        return self.ledger.move(x, lambda: jnp.asarray(x), dst="jax", call=f"jnp.asarray({what})")

    def from_jax(self, x: Any, what: str = "y") -> Any:
        if self.gpu:
            import cupy

            return self.ledger.move(x, lambda: cupy.asarray(np.asarray(x)), dst="cupy",
                                    call=f"cupy.asarray(np.asarray({what}))")
        return self.ledger.move(x, lambda: np.asarray(x), dst="numpy", call=f"np.asarray({what})")

    def beat_store(self, n: int, width: int) -> tuple[Any, dict[str, Any]]:
        """Beat records (array of structures): one byte buffer and its field views."""
        if self.gpu:
            import cupy

            buffer = cupy.empty(n * beat_dtype(width).itemsize, cupy.uint8)
        else:
            buffer = np.empty(n, beat_dtype(width)).view(np.uint8)
        return buffer, record_views(buffer, n, width)

    def beats(self, records: Any, width: int) -> tuple[Any, Any]:
        """(beats x window matrix, beats table) from beat records."""
        if self.gpu:  # CuPy has no record dtype: users bring the records home
            import cupy
            import pandas as pd

            def split() -> tuple[Any, Any]:
                host = cupy.asnumpy(records).view(beat_dtype(width))
                return (cupy.asarray(np.ascontiguousarray(host["window"])),
                        pd.DataFrame({n: host[n] for n in META}))
            window, table = self.ledger.move(records, split, dst="cupy+pandas",
                                             call="cupy.asnumpy(recs) -> ascontiguousarray, pd.DataFrame")
            return window, table
        import pandas as pd

        recs = records.view(beat_dtype(width))
        window = self.ledger.move(recs, lambda: np.ascontiguousarray(recs["window"]),
                                  dst="numpy", call='np.ascontiguousarray(recs["window"])')
        table = self.ledger.move(recs, lambda: pd.DataFrame({n: recs[n] for n in META}),
                                 dst="pandas", call="pd.DataFrame({name: recs[name] ...})")
        return window, table

    def gather(self, parts: list[dict[str, Any]], width: int) -> tuple[Any, Any]:
        """Cluster mode: the partitions' beats (gathered from the workers) as one matrix and
        one table, the way users write it: concatenate."""
        windows, tables = [p["window"] for p in parts], [p["beats"] for p in parts]
        xp, lib = _array_module(windows[0])
        window = self.ledger.move(windows, lambda: xp.concatenate(windows), dst=lib,
                                  call=f"{'np' if xp is np else lib}.concatenate(windows)")
        table = self.ledger.move(tables, lambda: _concat(tables, _table_kind(tables[0]), rows=True),
                                 dst=_table_kind(tables[0]), call="pd.concat(tables, ignore_index=True)")
        return window, table

    def to_numba(self, x: Any, what: str = "y") -> Any:
        """A GPU kernel's input: Numba launches read CuPy's ``__cuda_array_interface__``."""
        return self.ledger.move(x, lambda: x, dst="numba", call=f"kernel[grid, block]({what})")

    def to_torch(self, x: Any, what: str = "X") -> Any:
        import torch

        if self.gpu:
            return self.ledger.move(x, lambda: torch.tensor(_host(x), device="cuda"), dst="torch",
                                    call=f"torch.tensor({what}.get(), device='cuda')")
        return self.ledger.move(x, lambda: torch.tensor(x), dst="torch", call=f"torch.tensor({what})")

    def latent_store(self, n: int, names: list[str], torch_device: str) -> Any:
        return None   # torch.cat of the batches, below

    def torch_to_jax(self, t: Any, what: str) -> Any:
        import jax.numpy as jnp

        return self.ledger.move(t, lambda: jnp.asarray(t.detach().cpu().numpy()), dst="jax",
                                call=f"jnp.asarray({what}.detach().cpu().numpy())")

    def to_tensorflow(self, x: Any, what: str) -> Any:
        import tensorflow as tf

        host = x.detach().numpy if hasattr(x, "detach") else lambda: np.asarray(x)
        return self.ledger.move(x, lambda: tf.convert_to_tensor(host()), dst="tensorflow",
                                call=f"tf.convert_to_tensor({what}.numpy())")

    def table(self, beats: Any, latents: Any, err: Any, names: list[str], scores: dict[str, Any]) -> Any:
        """The beats table joined with latents, errors, scores and clusters."""
        gpu = self.gpu
        scores = {"error": err, **scores}

        def build() -> Any:
            lat = latents.detach().cpu().numpy()
            cudf = _cudf() if gpu else None
            if cudf is not None:
                out = beats.copy() if hasattr(beats, "to_pandas") else cudf.DataFrame(beats)
                for i, n in enumerate(names):
                    out[n] = lat[:, i]
                for key, value in scores.items():
                    out[key] = _host(value)
                return out
            import pandas as pd

            out = pd.concat([beats, pd.DataFrame(lat, columns=names)], axis=1)
            for key, value in scores.items():
                out[key] = _host(value)
            return out
        return self.ledger.move({"beats": beats, "latents": latents, **scores}, build,
                                dst="cudf" if gpu and _cudf() else "pandas",
                                call="pd.concat([beats, pd.DataFrame(z.numpy())]); out[k] = np.asarray(v)")


class ZeroCopy:
    name = "zerocopy"

    def __init__(self, ledger: Ledger, gpu: bool) -> None:
        self.ledger, self.gpu = ledger, gpu

    def _to(self, x: Any, target: str, what: str, **kw: Any) -> Any:
        plan = zerocopy.explain(x, target, **kw)
        return self.ledger.move(x, lambda: zerocopy.to(x, target, **kw), dst=target, plan=plan,
                                call=f"zerocopy.to({what}, {target!r})")

    def column(self, df: Any, name: str) -> Any:
        return self._to(df[name], "cupy" if self.gpu else "numpy", f"df[{name!r}]")

    def to_jax(self, x: Any, what: str = "x") -> Any:
        return self._to(x, "jax", what)

    def from_jax(self, x: Any, what: str = "y") -> Any:
        return self._to(x, "cupy" if self.gpu else "numpy", what)

    def gather(self, parts: list[dict[str, Any]], width: int) -> tuple[Any, Any]:
        """Cluster mode: the partitions' beats (each arrives in its own transport buffers)
        copied once into the two column blocks the single-process run fills, then the same
        views as there: the training matrix and the beats table."""
        n = sum(len(p["window"]) for p in parts)
        target = "cupy" if self.gpu else "numpy"

        def fill() -> Any:
            store, views = self.beat_store(n, width)
            start = 0
            for part in parts:
                stop = start + len(part["window"])
                views["window"][start:stop] = zerocopy.to(part["window"], target)
                for name in META:
                    views[name][start:stop] = zerocopy.to(part["beats"][name], target)
                start = stop
            return store
        src = {"window": [p["window"] for p in parts], "beats": [p["beats"] for p in parts]}
        store = self.ledger.move(src, fill, dst="column block", planned=sum(n for _, n in buffers(src)),
                                 call=f"block.columns[name][a:b] = zerocopy.to(partition[name], {target!r})",
                                 reason="gathered partitions arrive in the transport's buffers, one set per "
                                        "partition: one copy into one block for training")
        return self.beats(store, width)

    def to_numba(self, x: Any, what: str = "y") -> Any:
        return self._to(x, "numba", what)

    def beat_store(self, n: int, width: int) -> tuple[Any, dict[str, Any]]:
        """Two column blocks (structure of arrays): the beats table's columns, and the
        beats x window matrix; the kernel writes straight into their column views."""
        device = "cuda" if self.gpu else "cpu"
        meta = zerocopy.column_block(n, {"record": "i4", "peak": "i4", "rr": "f4", "amp": "f4"},
                                     device=device)
        windows = zerocopy.column_block(n, {"window": ("f4", (width,))}, device=device)
        return (meta, windows), {**meta.columns, **windows.columns}

    def beats(self, store: Any, width: int) -> tuple[Any, Any]:
        meta, windows = store
        target = self._table_target()
        window = self.ledger.move(windows, lambda: windows.columns["window"],
                                  dst="cupy" if self.gpu else "numpy",
                                  call="column_block(n, {'window': f4[w]}).columns['window']",
                                  planned=0)
        table = self.ledger.move(meta, lambda: self._block_table(meta, target), dst=target,
                                 call=f"column_block(n, beat fields).table({target!r})",
                                 planned=self._block_table_copies(meta, target))
        return window, table

    def _table_target(self) -> str:
        return "cudf" if self.gpu and _cudf() is not None else "pandas"

    def _block_table(self, block: Any, target: str) -> Any:
        """A column block as a table: views on the CPU (and with cuDF); a GPU block without
        cuDF comes home column by column (one copy each)."""
        if block.device == "cpu" or target == "cudf":
            return block.table(target)
        return _concat([_named(zerocopy.to(c, target), n) for n, c in block.columns.items()], target)

    def _block_table_copies(self, block: Any, target: str) -> int:
        if block.device == "cpu" or target == "cudf":
            return 0   # column views, documented as such (docs/layout.md)
        return sum(zerocopy.explain(c, target).copied_bytes for c in block.columns.values())

    def to_torch(self, x: Any, what: str = "X") -> Any:
        return self._to(x, "torch", what)

    def latent_store(self, n: int, names: list[str], torch_device: str) -> Any:
        """A column block the model writes its latents and errors into: a table and a
        tensor at once."""
        device = "cuda" if self.gpu else "cpu"
        # Two blocks: each starts on a 64-byte boundary, which JAX needs to share a column.
        return (zerocopy.column_block(n, names, dtype="f4", device=device),
                zerocopy.column_block(n, ["error"], dtype="f4", device=device))

    def torch_to_jax(self, t: Any, what: str) -> Any:
        return self._to(t, "jax", what)

    def to_tensorflow(self, x: Any, what: str) -> Any:
        return self._to(x, "tensorflow", what)

    def table(self, beats: Any, latents: Any, err: Any, names: list[str], scores: dict[str, Any]) -> Any:
        block, errors = latents   # the column blocks the model wrote into
        target = self._table_target()

        def build() -> Any:
            parts = [beats, self._block_table(block, target), self._block_table(errors, target)]
            for key, value in scores.items():
                parts.append(_named(zerocopy.to(value, target), key))
            return _concat(parts, target)
        plans = {k: zerocopy.explain(v, target) for k, v in scores.items()}
        copied = sum(p.copied_bytes for p in plans.values()) + sum(
            self._block_table_copies(b, target) for b in (block, errors))
        src = {"beats": beats, "latents": block.tensor(), "error": errors.tensor(), **scores}
        out = self.ledger.move(src, build, dst=target,
                               call=f"pd.concat([beats, block.table({target!r}), ..., "
                                    f"zerocopy.to(score, {target!r})])")
        entry = self.ledger.entries[-1]
        entry.planned_copied_bytes = copied
        entry.reason = "; ".join(c for p in plans.values() for c in p.caveats if c.startswith("copied"))
        return out


def _cudf() -> Any:
    try:
        import cudf
    except ImportError:
        return None
    return cudf


def _named(series: Any, name: str) -> Any:
    """``series`` (just made by zerocopy.to, so ours to change) under ``name``: cuDF's
    ``rename`` copies the data by default, pandas 3 deprecates its ``copy`` argument."""
    series.name = name
    return series


def _concat(parts: list[Any], target: str, *, rows: bool = False) -> Any:
    """Tables side by side (columns), or one under another (``rows``: numbered afresh)."""
    kw = {"axis": 0, "ignore_index": True} if rows else {"axis": 1}
    if target == "cudf":
        import cudf

        return cudf.concat(parts, **kw)
    import pandas as pd

    return pd.concat(parts, **kw)


def _table_kind(table: Any) -> str:
    return "cudf" if type(table).__module__.startswith("cudf") else "pandas"


def _array_module(x: Any) -> tuple[Any, str]:
    if isinstance(x, np.ndarray):
        return np, "numpy"
    import cupy

    return cupy, "cupy"


def _host(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    get = getattr(x, "get", None)
    return get() if get is not None else np.asarray(x)


WAYS: dict[str, type[Naive] | type[ZeroCopy]] = {"naive": Naive, "zerocopy": ZeroCopy}
