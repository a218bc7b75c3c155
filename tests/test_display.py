"""Notebook and rich views: the same facts as str(), as tables, escaped, on demand only."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

import zerocopy
import zerocopy.memory as zm


def _rich_text(obj: object) -> str:
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(obj)
    console.file.close()
    return console.export_text()


def test_plan_views_show_verdict_hops_and_caveats() -> None:
    pytest.importorskip("tensorflow")
    plan = zerocopy.explain(np.arange(6.0)[::2], "tensorflow")
    html = plan._repr_html_()
    assert "COPIES 24 B" in html and "np.copyto" in html and "C-contiguous" in html
    assert "<table" in html and "__dlpack__" in html
    text = _rich_text(plan)
    assert text.splitlines()[0].startswith("numpy array float64 [3] strided  ->  tensorflow: COPIES")
    assert "caveat: copied because TensorFlow imports only C-contiguous" in text


def test_zero_copy_plan_and_info_views() -> None:
    x = np.arange(4.0)
    plan = zerocopy.explain(x, "numpy")
    assert "ZERO-COPY" in plan._repr_html_() and "returned as is" in plan._repr_html_()
    html = zerocopy.inspect(x.reshape(2, 2))._repr_html_()
    assert "float64" in html and "2x2" in html and "(16, 8)" in html


def test_column_block_view_lists_columns_and_escapes_names() -> None:
    block = zerocopy.column_block(10, ["a", "<b>"], dtype=np.float32)
    html = block._repr_html_()
    assert "&lt;b&gt;" in html and "<b>" not in html.replace("<b>zerocopy", "")
    assert "10 rows x 2 columns" in html and "[0, 40)" in html and "[40, 80)" in html
    assert "F-order (10, 2) float32 view" in html


def test_memory_report_views() -> None:
    shared = zm.share([], resource=zm.HostMemoryResource(), track=True)
    try:
        mr = shared.resource
        ptr = mr.allocate(4096, framework="torch")
        report = shared.report()
        html, text = report._repr_html_(), _rich_text(report)
        mr.deallocate(ptr, 4096)
    finally:
        shared.undo()
    assert "<td style='padding:2px 8px'>torch</td>" in html and "4.0 KiB" in html
    assert "outstanding allocations (1)" in html
    assert text.startswith("zerocopy memory report") and "torch" in text
