"""Test helpers: the installed frameworks of this environment, and the shared probes."""

from __future__ import annotations

import importlib.util

from zerocopy._probes import make_source, pointer, same_bits, values, writable_alias
from zerocopy.adapters import CPU_FRAMEWORKS, adapter

__all__ = ["MAIN_ENV", "make_source", "pointer", "same_bits", "values", "writable_alias"]

MAIN_ENV = tuple(n for n in CPU_FRAMEWORKS
                 if n != "mxnet" and importlib.util.find_spec(adapter(n).IMPORT_NAME))
