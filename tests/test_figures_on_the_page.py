"""Every committed figure reads at page width: no long strip, no tower, no poster-sized canvas.

Checked on what a reader sees: the figures under ``results/*/figures/`` (the study's and
the demo's, shown by their REPORT.md) and the figures inside the committed notebooks
(drawn by the smoke run that ``scripts/refresh_notebooks.py`` executes). Bounds: width over
height within [0.5, 4.2] (one row of eight panels was 19.6:1, 60 songs in one column 0.27:1)
and at most 2400 px a side (a page shows about 1000 px: beyond 2.4x the text is unreadable).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MIN_ASPECT, MAX_ASPECT, MAX_SIDE = 0.5, 4.2, 2400


def _committed_figures() -> list[Path]:
    return sorted((ROOT / "results").glob("*/figures/*.png"))


def _notebook_figures() -> list[tuple[str, bytes]]:
    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []):
                data = output.get("data", {}).get("image/png")
                if data:
                    found.append((f"{path.name} cell {index}", base64.b64decode(data)))
    return found


def _check(name: str, image: Image.Image) -> None:
    width, height = image.size
    assert MIN_ASPECT <= width / height <= MAX_ASPECT, f"{name}: {width} x {height} px ({width / height:.2f}:1)"
    assert max(width, height) <= MAX_SIDE, f"{name}: {width} x {height} px"


def test_there_are_figures_to_check():
    assert len(_committed_figures()) >= 20 and len(_notebook_figures()) >= 10


@pytest.mark.parametrize("path", _committed_figures(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_a_committed_figure_reads_at_page_width(path):
    with Image.open(path) as image:
        _check(str(path.relative_to(ROOT)), image)


def test_the_notebooks_figures_read_at_page_width():
    for name, data in _notebook_figures():
        with Image.open(io.BytesIO(data)) as image:
            _check(name, image)
