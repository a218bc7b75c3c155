"""MXNet NDArrays (retired at 1.9.1; runs with NumPy < 1.24). DLPack through its own
functions: ``to_dlpack_for_write`` out (it waits for pending engine work), ``from_dlpack``
in (legacy capsules only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zerocopy._dtypes import name_of_numpy
from zerocopy.adapters._common import CapsuleProducer, require
from zerocopy.errors import UnsupportedDtypeError, message
from zerocopy.exchange import checks
from zerocopy.exchange.dlpack import capsule_info
from zerocopy.exchange.edges import DLPACK, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info

NAME = "mxnet"
IMPORT_NAME = "mxnet"
PIP = "mxnet==1.9.1 (needs numpy<1.24)"
PROTOCOLS = {"exports": ("DLPack legacy capsule (to_dlpack_for_read/write)",),
             "imports": ("DLPack legacy capsule (nd.from_dlpack)",)}
# MXNet 1.9 has no unsigned types beyond uint8, no bfloat16 in NDArray, no complex; its
# DLPack describes bool as a 1-bit unsigned integer that no importer (itself included) takes.
_DTYPES = frozenset({"int8", "int32", "int64", "uint8", "float16", "float32", "float64"})


def _mx() -> Any:
    return require("mxnet", PIP)


def dtypes() -> frozenset[str]:
    return _DTYPES


def version() -> str:
    return str(_mx().__version__)


def devices() -> list[str]:
    mx = _mx()
    return ["cpu", *(f"cuda:{i}" for i in range(mx.context.num_gpus()))]


def inspect(x: Any) -> Info:
    name = name_of_numpy(np.dtype(x.dtype))
    if name is None:
        raise UnsupportedDtypeError(message(f"MXNet dtype {x.dtype} is not shared", hint="cast first"))
    context = x.context
    device = ("cpu", 0) if context.device_type == "cpu" else ("cuda", context.device_id)
    itemsize = np.dtype(x.dtype).itemsize
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=tuple(x.shape), strides=None,
                itemsize=itemsize, pointer=lambda: _pointer(x), device=device)


def _pointer(x: Any) -> int:
    return int(capsule_info(x.to_dlpack_for_read())["data"])


def make(values: np.ndarray) -> Any:
    return _mx().nd.array(values, dtype=values.dtype)


def to_host(x: Any) -> np.ndarray:
    return x.asnumpy()


def _export(x: Any, options: Options) -> CapsuleProducer:
    device = (1, 0) if x.context.device_type == "cpu" else (2, x.context.device_id)
    return CapsuleProducer(x.to_dlpack_for_write(), device, x)


def _native_deleter(info: Info, options: Options) -> Refusal | None:
    if info.extra.get("python_deleter"):
        return Refusal("MXNet frees imported tensors without the GIL at interpreter exit, so "
                       "it takes only capsules whose deleter needs no GIL (torch's)")
    return None


def _import(x: Any, options: Options) -> Any:
    return _mx().nd.from_dlpack(x.__dlpack__())


EDGES = (
    Edge(NAME, DLPACK, "DLPack legacy capsule", "x.to_dlpack_for_write()", _export, cost=2.0,
         check=checks.dtype_in("MXNet's DLPack export", dtypes)),
    Edge(DLPACK, NAME, "DLPack legacy capsule", "mx.nd.from_dlpack(x.__dlpack__())", _import,
         cost=3.0,
         check=checks.all_of(
             checks.dtype_in("MXNet", dtypes),
             checks.layouts("MXNet", frozenset({"C"}), "imports only C-contiguous tensors"),
             _native_deleter)),
    # asnumpy() copies; it is the way out for what DLPack cannot carry (MXNet's bool).
    Edge(NAME, "numpy", "copy", "x.asnumpy()", lambda x, o: x.asnumpy(), copies=True, cost=5.0),
)
