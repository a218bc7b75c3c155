"""TensorFlow eager tensors. Immutable; DLPack import takes legacy capsules only, and only
C-contiguous ones (no step slices, no transposes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zerocopy._dtypes import SHARED_DTYPES
from zerocopy.adapters._common import require
from zerocopy.errors import UnsupportedDtypeError, UnsupportedObjectError, message
from zerocopy.exchange import checks
from zerocopy.exchange.edges import DLPACK, Edge, Options, Refusal
from zerocopy.exchange.info import ARRAY, Info, size_class

NAME = "tensorflow"
IMPORT_NAME = "tensorflow"
PIP = "tensorflow-cpu"
PROTOCOLS = {"exports": ("DLPack legacy", "buffer protocol", "array interface (np.asarray)"),
             "imports": ("DLPack legacy capsules only",)}


def _tf() -> Any:
    return require("tensorflow", PIP)


def dtypes() -> frozenset[str]:
    return frozenset(SHARED_DTYPES)


def version() -> str:
    return str(_tf().__version__)


def devices() -> list[str]:
    return [d.name.replace("/physical_device:", "").lower() for d in _tf().config.list_physical_devices()]


def _device_of(x: Any) -> tuple[str, int]:
    # '/job:localhost/replica:0/task:0/device:GPU:0'
    kind, _, index = (x.device or "device:CPU:0").rpartition("device:")[2].partition(":")
    return ("cpu" if kind == "CPU" else "cuda", int(index or 0) if kind != "CPU" else 0)


def inspect(x: Any) -> Info:
    if not hasattr(x, "_id") or not hasattr(x, "numpy"):
        raise UnsupportedObjectError(message(
            "Only eager TensorFlow tensors hold memory that can be shared",
            got=type(x).__name__, hint="for a tf.Variable use v.read_value() (a copy)"))
    name = x.dtype.name
    if name not in SHARED_DTYPES:
        raise UnsupportedDtypeError(message(f"TensorFlow dtype {name} has no shared counterpart",
                                            hint="strings and resources stay in TensorFlow"))
    return Info(NAME, x, kind=ARRAY, dtype=name, shape=tuple(x.shape), strides=None,
                itemsize=x.dtype.size, pointer=lambda: _pointer(x), device=_device_of(x),
                readonly=True)


def _pointer(x: Any) -> int:
    from zerocopy.exchange.dlpack import capsule_info

    # An unconsumed capsule frees itself; reading it costs no copy, whatever the dtype.
    return int(capsule_info(_tf().experimental.dlpack.to_dlpack(x))["data"])


def fast_key(x: Any) -> tuple[Any, ...] | None:
    """What decides a route for an eager tensor (always C-ordered, immutable)."""
    if not hasattr(x, "_id"):
        return None
    return (x.dtype, size_class(tuple(x.shape)), x.device)


def make(values: np.ndarray) -> Any:
    return _tf().constant(values)


def to_host(x: Any) -> np.ndarray:
    return x.numpy()


# --------------------------------------------------------------- edges

def _to_numpy(x: Any, options: Options) -> np.ndarray:
    return np.asarray(x)


def _no_bfloat16_scalar(info: Info, options: Options) -> Refusal | None:
    if info.dtype == "bfloat16" and not info.shape:
        return Refusal("TensorFlow's array interface fails on 0-d bfloat16 tensors")
    return None


def _from_dlpack(x: Any, options: Options) -> Any:
    return _tf().experimental.dlpack.from_dlpack(x.__dlpack__())


EDGES = (
    Edge(NAME, "numpy", "buffer protocol", "np.asarray(x)", _to_numpy, cost=0.6,
         check=checks.all_of(checks.on_cpu("NumPy"), _no_bfloat16_scalar),
         caveat=lambda info: "TensorFlow tensors are immutable: the NumPy view is read-only"),
    Edge(NAME, DLPACK, "DLPack legacy", "x  (EagerTensor.__dlpack__)", lambda x, o: x, cost=1.0),
    # copy=True within TensorFlow: tf.identity may return the same buffer; DeepCopy never does.
    Edge(NAME, NAME, "copy", "tf.raw_ops.DeepCopy(x=x)", lambda x, o: _tf().raw_ops.DeepCopy(x=x),
         copies=True, immutable_result=True, cost=4.0),
    Edge(DLPACK, NAME, "DLPack legacy capsule",
         "tf.experimental.dlpack.from_dlpack(x.__dlpack__())", _from_dlpack, cost=2.0,
         check=checks.all_of(
             checks.layouts("TensorFlow", frozenset({"C"}),
                            "imports only C-contiguous DLPack tensors (no step slices, no transposes)"),
             checks.dtype_in("TensorFlow", dtypes))),
)
