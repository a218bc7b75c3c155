"""Visible copies: on_copy / set_copy_policy / ZEROCOPY_ON_COPY."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest

import zerocopy

torch = pytest.importorskip("torch")


def test_default_policy_is_silent():
    assert zerocopy.copy_policy() == "allow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = zerocopy.to(np.arange(6.0)[::-1], "torch")
    assert t.tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]


def test_warn_names_the_copy_and_its_reason():
    with zerocopy.on_copy("warn"), pytest.warns(zerocopy.CopyWarning, match="negative strides"):
        zerocopy.to(np.arange(6.0)[::-1], "torch")
    x = np.arange(6.0)
    with zerocopy.on_copy("warn"), warnings.catch_warnings():
        warnings.simplefilter("error")  # a sharing conversion warns nothing
        t = zerocopy.to(x, "torch")
    t[0] = 7.0
    assert x[0] == 7.0


def test_raise_refuses_before_copying_and_lets_sharing_pass():
    x = np.arange(6.0)
    with zerocopy.on_copy("raise"):
        with pytest.raises(zerocopy.NotZeroCopyError, match="negative"):
            zerocopy.to(x[::-1], "torch")
        assert zerocopy.to(x, "torch").data_ptr() == x.__array_interface__["data"][0]
    assert zerocopy.copy_policy() == "allow"


def test_log_writes_on_the_zerocopy_logger(caplog):
    previous = zerocopy.set_copy_policy("log")
    try:
        with caplog.at_level(logging.INFO, logger="zerocopy"):
            zerocopy.to(np.arange(6.0)[::-1], "torch")
    finally:
        zerocopy.set_copy_policy(previous)
    assert any("copied 48 bytes" in r.getMessage() for r in caplog.records)


def test_unknown_policy_is_a_typed_error():
    with pytest.raises(zerocopy.InvalidArgumentError, match="policy"), zerocopy.on_copy("loud"):
        pass


def test_environment_variable_sets_the_process_policy():
    code = ("import numpy as np, zerocopy\n"
            "try:\n    zerocopy.to(np.arange(4.0)[::-1], 'torch')\n"
            "except zerocopy.NotZeroCopyError:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "ZEROCOPY_ON_COPY": "raise"})
    assert out.stdout.strip() == "refused"
