"""The import graph: the core runs without the notebook runner, training without the tuner,
and scoring without any plotting library (its workers without the statistics either). Each check imports (or runs) in a fresh process
and reads its ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from melunmix.models import build_model, save_model
from melunmix.synth import make_dataset

#: The notebook runner and what only figures and reports need.
RUNNER = {"melunmix.pipeline", "melunmix.study", "melunmix.cli", "papermill", "nbclient"}
DRAWING = {"matplotlib", "melunmix.plots", "melunmix.report"}


def _modules(code: str) -> set[str]:
    """Modules loaded by a fresh interpreter after running ``code``."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {name.split(".")[0] if not name.startswith("melunmix") else name
            for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("module", ["melunmix.train", "melunmix.tune", "melunmix.evaluate", "melunmix.separate"])
def test_the_core_imports_nothing_of_the_notebook_runner(module):
    loaded = _modules(f"import {module}")
    assert not loaded & RUNNER, sorted(loaded & RUNNER)


def test_training_does_not_import_the_tuner():
    loaded = _modules("import melunmix.train")
    assert "melunmix.tune" not in loaded and "optuna" not in loaded
    assert "melunmix.hyperparameters" in loaded  # where training reads tuned values


#: Modules a scoring worker may import: reading, separating, scoring and writing one track.
SCORING = ["melunmix.evaluate", "melunmix.track_audio", "melunmix.museval_scores", "melunmix.processes",
           "melunmix.score"]


@pytest.fixture
def scoring_inputs(tmp_path):
    """A generated root with one test song, and a tiny openunmix vocals model for it."""
    root = make_dataset(tmp_path / "data", nb_train=1, nb_valid=0, nb_test=1, duration=4.0, seed=3,
                        sample_rate=8000, progress=False)
    model = build_model("openunmix", nb_bins=129, nb_channels=2, hidden_size=8, nb_layers=1, sample_rate=8000.0,
                        n_fft=256, n_hop=64)
    return root, save_model(model, tmp_path / "vocals.pth", target="vocals")


@pytest.mark.parametrize("module", SCORING)
def test_scoring_modules_import_no_statistics_and_no_plotting(module):
    loaded = _modules(f"import {module}")
    unwanted = DRAWING | RUNNER | {"melunmix.stats"}
    assert not loaded & unwanted, sorted(loaded & unwanted)


def test_scoring_models_and_oracles_imports_no_plotting(scoring_inputs, tmp_path):
    """A whole (serial) scoring run holds every module a scoring worker imports, and more."""
    root, path = scoring_inputs
    out = tmp_path / "eval"
    loaded = _modules(f"""
        from melunmix import evaluate
        from melunmix.datasets import find_tracks
        tracks = find_tracks({str(root)!r}, "test")
        scored = evaluate.evaluate_oracle("IRM1", tracks, {str(out)!r}, jobs=1, progress=False)
        scored += evaluate.evaluate_model({{"vocals": {str(path)!r}}}, tracks, {str(out)!r}, "openunmix",
                                          jobs=1, progress=False)
        assert all(path.is_file() for path in scored) and len(scored) == 2
    """)
    assert not loaded & (DRAWING | RUNNER), sorted(loaded & (DRAWING | RUNNER))
    assert {"melunmix.separate", "melunmix.bsseval", "melunmix.oracles"} <= loaded  # it did score


def test_a_scoring_worker_imports_no_statistics(scoring_inputs, tmp_path):
    """What a pool worker runs, in a fresh interpreter: its initializer, then one job per
    track and method (read, separate, score, write the JSON). The statistics (pandas
    tables, scipy tests), the figures and the notebook runner stay in the parent."""
    root, path = scoring_inputs
    out = tmp_path / "eval"
    loaded = _modules(f"""
        import os
        from pathlib import Path
        from melunmix.datasets import find_tracks
        from melunmix.evaluate import ModelSeparation, OracleSeparation, _score_track, _TrackJob
        from melunmix.processes import init_pool_worker
        init_pool_worker(os.getppid())
        (track,) = find_tracks({str(root)!r}, "test")
        for name, separation in [("IRM1", OracleSeparation("IRM1")),
                                 ("openunmix", ModelSeparation((("vocals", {str(path)!r}),)))]:
            json_path = Path({str(out)!r}) / name / "test" / f"{{track.name}}.json"
            _score_track(_TrackJob(track, track.name, json_path, separation, 1.0, 1.0))
            assert json_path.is_file()
    """)
    unwanted = DRAWING | RUNNER | {"melunmix.stats"}
    assert not loaded & unwanted, sorted(loaded & unwanted)
    assert {"melunmix.track_audio", "melunmix.museval_scores", "melunmix.bsseval"} <= loaded  # it did score
