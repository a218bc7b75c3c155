"""``zerocopy matrix --png FILE``: a valid picture drawn from the live probes."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerocopy.cli import main
from zerocopy.cli.matrix_png import PROTOCOLS, _speaks
from zerocopy.testing import Cell


def test_matrix_png_is_a_valid_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib.image

    path = tmp_path / "matrix.png"
    assert main(["matrix", "--frameworks", "numpy,torch", "--dtypes", "float32,bool",
                 "--png", str(path)]) == 0
    capsys.readouterr()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800  # 3 panels: 2 + protocols
    assert image.std() > 0.05


def test_protocol_columns_tell_cuda_from_numpy_interfaces() -> None:
    numpy_interface = PROTOCOLS["NumPy array\ninterface"]
    assert not _speaks(["CUDA Array Interface v3"], numpy_interface, "NumPy array\ninterface")
    assert _speaks(["array interface (to_numpy)"], numpy_interface, "NumPy array\ninterface")
    assert _speaks(["CUDA Array Interface v3"], PROTOCOLS["CUDA Array\nInterface"], "CUDA Array\nInterface")


def test_conversion_grid_colours_each_status(tmp_path: Path) -> None:
    import matplotlib.image
    import numpy as np

    from zerocopy.cli.matrix_png import STATUS_COLOURS, draw

    cells = [Cell("a", "b", "float32", "Z", "", ""), Cell("b", "a", "float32", "C", "", "")]
    support = [{"name": "a", "installed": True, "exports": ["DLPack v1"], "imports": []}]
    image = matplotlib.image.imread(draw(tmp_path / "m.png", cells, [], ["float32"], support))[..., :3]
    for status in ("Z", "C"):
        rgb = np.array([int(STATUS_COLOURS[status][i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(image - rgb).max(axis=2) < 0.02).sum() > 1000   # a filled cell of that colour
