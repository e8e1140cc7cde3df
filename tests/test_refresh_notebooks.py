"""scripts/refresh_notebooks.py: the committed copies come from the pipeline's runner, carry no
per-run metadata and no audio players, and still pass nbval."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from IPython.display import Audio


ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("refresh_notebooks", ROOT / "scripts" / "refresh_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refresh = load_script()

PLAYERS = """# NBVAL_IGNORE_OUTPUT
import numpy as np
from IPython.display import Audio, display
print("before the players")
display(*(Audio(np.sin(np.arange(8000) * f / 8000), rate=8000) for f in (440, 660)))"""


def player_output(seconds=0.5, rate=8000):
    """A display_data output as IPython writes it for an ``Audio`` object."""
    audio = Audio(np.sin(np.arange(int(seconds * rate)) * 0.1), rate=rate)
    return nbformat.v4.new_output("display_data", data={"text/html": audio._repr_html_(),
                                                        "text/plain": repr(audio)})


def test_players_become_one_line_and_other_outputs_stay():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\ndisplay(a, b)", execution_count=3)
    text = nbformat.v4.new_output("stream", name="stdout", text="kept\n")
    cell.outputs = [text, player_output(), player_output()]
    nb.cells = [nbformat.v4.new_code_cell("1 + 1", execution_count=2), cell]
    assert refresh.strip_audio_players(nb) == 2
    assert cell.outputs[0] == text and len(cell.outputs) == 2
    assert cell.outputs[1]["data"] == {"text/plain": refresh.AUDIO_NOTE}
    assert cell.execution_count == 3  # nbval compares (here: skips) only executed cells
    assert "base64" not in nbformat.writes(nb)


def test_a_player_in_a_compared_cell_is_refused_naming_it():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("display(a)", execution_count=1)]
    nb.cells[1].outputs = [player_output()]
    with pytest.raises(ValueError, match=r"07_x.ipynb cell 1 shows audio players but nbval compares .*"
                                         "NBVAL_IGNORE_OUTPUT"):
        refresh.strip_audio_players(nb, "07_x.ipynb")
    nb.cells[1].metadata["tags"] = ["nbval-ignore-output"]  # the tag is as good as the comment
    assert refresh.strip_audio_players(nb) == 1


def test_cells_that_differ_are_refused():
    a = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    b = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2")])
    with pytest.raises(ValueError, match="01_a.ipynb: the executed copy does not have the committed"):
        refresh.commit_ready(a, b, "01_a.ipynb")


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """A small notebook, as committed (old timing metadata, tags), then refreshed in place."""
    folder = tmp_path_factory.mktemp("notebooks")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "melunmix", "display_name": "melunmix", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    params.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}  # an old run's record
    nb.cells = [nbformat.v4.new_markdown_cell("# A study step"), params,
                nbformat.v4.new_code_cell("import sys\nprint('profile', profile)\nprint('to stderr', file=sys.stderr)"),
                nbformat.v4.new_code_cell(PLAYERS), nbformat.v4.new_code_cell("{'answer': 6 * 7}")]
    path = folder / "01_step.ipynb"
    nbformat.write(nb, path)
    source = path.read_text()
    refresh.refresh(path, progress=False)
    return path, source


def test_refresh_writes_outputs_in_place_without_per_run_metadata(refreshed):
    path, source = refreshed
    nb = nbformat.read(path, as_version=4)
    raw = json.loads(path.read_text())
    assert "papermill" not in raw["metadata"] and "language_info" in raw["metadata"]
    for cell in raw["cells"]:
        assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]
    assert nb.cells[0].metadata == {} and nb.cells[1].metadata == {"tags": ["parameters"]}  # no tags added
    assert [c.source for c in nb.cells] == [c.source for c in nbformat.reads(source, as_version=4).cells]
    assert [c.get("execution_count") for c in nb.cells] == [None, 1, 2, 3, 4]
    out = nb.cells[2].outputs
    assert [(o["name"], o["text"]) for o in out] == [("stdout", "profile smoke\n"), ("stderr", "to stderr\n")]
    assert nb.cells[3].outputs[0]["text"] == "before the players\n"
    assert [o["data"] for o in nb.cells[3].outputs[1:]] == [{"text/plain": refresh.AUDIO_NOTE}]
    assert nb.cells[4].outputs[0]["data"]["text/plain"] == "{'answer': 42}"
    assert not list(path.parent.glob(".*refresh*"))  # no partial file left


def test_the_refreshed_copy_passes_nbval(refreshed):
    """nbval re-runs it and compares: the stripped player cell is ignored, the rest matches."""
    path, _ = refreshed
    out = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                          "-q", str(path)], cwd=path.parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "4 passed" in out.stdout  # one item per code cell


def test_machine_paths_are_reported():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", execution_count=1)])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{ROOT}/.venv/x.py:1: Warning")]
    assert refresh.machine_paths(nb, ROOT) == ["cell 0 (stderr)"]
    nb.cells[0].outputs[0]["text"] = "results/smoke/REPORT.md"
    assert refresh.machine_paths(nb, ROOT) == []

