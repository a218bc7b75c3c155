"""Every memory test leaves global allocator state as it found it (RMM's reset fixture)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_allocator_state() -> Iterator[None]:
    environ = dict(os.environ)
    yield
    from zerocopy.memory.resource import reset_current_resources
    from zerocopy.memory.share import unshare

    unshare()  # undoes hooks, stops the governor's thread, closes the log
    reset_current_resources()
    for key in set(os.environ) - set(environ):  # the env hooks (torch/jax/tf) set variables
        del os.environ[key]
    os.environ.update(environ)
