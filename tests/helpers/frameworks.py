"""Test helpers: the installed frameworks of this environment, and the shared probes."""

from __future__ import annotations

from zerocopy.registry import names
from zerocopy.testing import make_source, pointer, same_bits, values, writable_alias

__all__ = ["MAIN_ENV", "make_source", "pointer", "same_bits", "values", "writable_alias"]

# Host-memory frameworks of the main environment that are installed here (MXNet has its own).
MAIN_ENV = names(memory=("host", "both"), main_env=True, installed=True)
