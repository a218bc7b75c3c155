"""The ledger chart takes each way's own hand-offs: on a GPU the zerocopy way hands a
column block to two frameworks where the naive way copies once (found on the H200)."""

from __future__ import annotations

import pytest

from zerocopy.demo import report

matplotlib = pytest.importorskip("matplotlib")


def _handoff(stage: str, src: str, dst: str, copied: int) -> dict:
    return {"stage": stage, "src": src, "dst": dst, "seconds": 0.01, "copied_bytes": copied}


def test_ledger_chart_draws_ways_with_different_numbers_of_handoffs(tmp_path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {"naive": {"handoffs": [_handoff("beats", "cupy", "pandas", 1 << 20)]},
            "zerocopy": {"handoffs": [_handoff("beats", "column block", "cupy", 0),
                                      _handoff("beats", "column block", "cudf", 4096)]}}
    fig, name = report._ledger_chart(plt, runs, tmp_path)
    fig.savefig(tmp_path / name)
    plt.close(fig)
    labels = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes[::2]]
    assert labels == [["beats: cupy -> pandas"],
                      ["beats: column block -> cupy", "beats: column block -> cudf"]]
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
