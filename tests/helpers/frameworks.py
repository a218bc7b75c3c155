"""Test helpers: the installed frameworks of this environment, and the shared probes."""

from __future__ import annotations

from typing import Any

import zerocopy
from zerocopy.registry import adapter, names
from zerocopy.testing import make_source, pointer, same_bits, values, writable_alias

__all__ = ["MAIN_ENV", "lane_plan", "make_source", "pointer", "same_bits", "values", "writable_alias"]

# Host-memory frameworks of the main environment that are installed here (MXNet has its own).
MAIN_ENV = names(memory=("host", "both"), main_env=True, installed=True)


def lane_plan(source: object, target: str) -> Any:
    """The plan the fast lane keeps for ``source``'s signature (after one call made it)."""
    from zerocopy.exchange import cache
    from zerocopy.exchange.convert import _ALIGNMENT_BIT

    reader = adapter(zerocopy.inspect(source).framework)
    lane = (type(source), reader.fast_key(source), target, None)
    found = cache.get(lane)
    if found is _ALIGNMENT_BIT:  # kept per alignment (into JAX): the pointer says which
        found = cache.get((*lane, reader.fast_pointer(source) % 64 == 0))
    return found
