"""zerocopy: hand data between ML and data frameworks without copying.

>>> import numpy as np, zerocopy
>>> x = zerocopy.aligned(np.arange(4, dtype=np.float32))  # 64-byte aligned: all can share it
>>> t = zerocopy.to(x, "torch")                          # same memory, no copy
>>> zerocopy.shares_memory(x, t)
True
>>> zerocopy.explain(x, "jax").copies                    # print() it: the route and why
False

Importing zerocopy imports NumPy only; each framework is imported the first time a
conversion needs it. The user guide and the API reference: ``docs/`` (``mkdocs serve``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zerocopy.adapters.numpy import aligned, empty
from zerocopy.copies import CopyWarning, copy_policy, on_copy, set_copy_policy
from zerocopy.errors import (
    DeviceError,
    FrameworkError,
    FrameworkNotInstalledError,
    FrameworkStartedError,
    InvalidArgumentError,
    LayoutError,
    NotZeroCopyError,
    NullValuesError,
    OutOfMemoryError,
    PathNotFoundError,
    UnsupportedConversionError,
    UnsupportedDtypeError,
    UnsupportedObjectError,
    ZeroCopyError,
)
from zerocopy.exchange.convert import clear_caches, explain, inspect, shares_memory

if TYPE_CHECKING:  # typed overloads for editors (what to() returns per target); no run-time cost
    from zerocopy._typing import to
else:
    from zerocopy.exchange.convert import to
from zerocopy.exchange.streams import NO_SYNC  # stream=NO_SYNC: "do not synchronise"
from zerocopy.io import read_parquet
from zerocopy.layout import column_block, stack, to_columns, to_records, unstack

__version__ = "0.1.0"

__all__ = [
    "NO_SYNC",
    "CopyWarning",
    "DeviceError",
    "FrameworkError",
    "FrameworkNotInstalledError",
    "FrameworkStartedError",
    "InvalidArgumentError",
    "LayoutError",
    "NotZeroCopyError",
    "NullValuesError",
    "OutOfMemoryError",
    "PathNotFoundError",
    "UnsupportedConversionError",
    "UnsupportedDtypeError",
    "UnsupportedObjectError",
    "ZeroCopyError",
    "aligned",
    "clear_caches",
    "column_block",
    "copy_policy",
    "empty",
    "explain",
    "frameworks",
    "inspect",
    "on_copy",
    "read_parquet",
    "set_copy_policy",
    "shares_memory",
    "stack",
    "to",
    "to_columns",
    "to_records",
    "unstack",
]


def frameworks() -> list[dict[str, Any]]:
    """What is installed: name, version, devices, protocols (imports each installed one)."""
    from zerocopy._report import framework_report  # noqa: PLC0415 (keeps importlib.metadata off `import zerocopy`)

    return framework_report()
