"""Any MUSDB18-format folder runs the study (issue 12, part 1), and data that would give
untrustworthy numbers is flagged or refused (issue 16, case 5).

The folders are built here: songs of synthetic stems written as MUSDB18 ``.stem.mp4``
(five AAC streams, mixture/drums/bass/other/vocals, 44.1 kHz stereo, as musdb's
``stempeg`` writes them) with odd names (spaces, apostrophes, non-ASCII), unequal lengths
and none of musdb's validation songs; WAV folders for the rate and mixture checks. The
study runs for real (papermill, every notebook) with a tiny profile.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from song_folders import RATE, TEST_SONGS, TRAIN_SONGS, song_stems, write_profile, write_stem_mp4

from melunmix import datasets
from melunmix.commands import cli
from melunmix.datasets import splits
from melunmix.study import pipeline


@pytest.fixture(scope="module", autouse=True)
def cache_in_tmp(tmp_path_factory):
    """Decode caches and check records go to a temporary folder, not the repository's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MELUNMIX_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def stem_root(tmp_path_factory) -> Path:
    """A user's MUSDB18 folder (.stem.mp4): 6 train songs, 2 test songs, odd names, unequal lengths."""
    root = tmp_path_factory.mktemp("my songs") / "My MUSDB18 'folder'"
    for seed, (subset, songs) in enumerate((("train", TRAIN_SONGS), ("test", TEST_SONGS))):
        for index, (name, seconds) in enumerate(songs.items()):
            write_stem_mp4(root / subset / f"{name}.stem.mp4", song_stems(seconds, 10 * seed + index))
    return root


@pytest.fixture(scope="module")
def study_run(stem_root, tmp_path_factory):
    """The whole study (six notebooks) on ``stem_root`` with the tiny profile."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("study")
    profile = write_profile(base / "tiny.yaml")
    results = base / "results"
    out = io.StringIO()
    splits._printed.clear()  # as in a fresh `melunmix reproduce` process, whatever ran before
    with contextlib.redirect_stdout(out):
        runs = pipeline.reproduce(str(profile), data_root=stem_root, results_dir=results, progress=False)
    return {"profile": profile, "results": results, "runs": runs, "printed": out.getvalue(),
            "run_dir": results / "tiny"}


def test_split_of_a_users_folder(stem_root, capsys):
    splits._printed.clear()  # as in a fresh process, whatever this one derived before
    split = datasets.validation_split(stem_root)
    assert split.source == "derived" and split.nb_train_songs == 6
    assert list(split.tracks) == datasets.derive_validation_tracks(TRAIN_SONGS)
    valid = datasets.find_tracks(stem_root, "train", split="valid")
    train = datasets.find_tracks(stem_root, "train", split="train")
    assert [t.name for t in valid] == list(split.tracks)
    assert sorted(t.name for t in train + valid) == sorted(TRAIN_SONGS)
    # printed once per process, one line listing it
    printed = [line for line in capsys.readouterr().out.splitlines() if "validation split derived" in line]
    assert len(printed) == 1 and all(name in printed[0] for name in split.tracks)
    datasets.find_tracks(stem_root, "train", split="valid")
    assert "validation split derived" not in capsys.readouterr().out


def test_profile_lists_the_validation_songs(stem_root, tmp_path):
    from melunmix.base.config import load_profile
    from melunmix.training.training_data import prepare_data

    chosen = ["O'Brien - Ça va", "日本のバンド - 歌"]
    split = datasets.validation_split(stem_root, valid_tracks=chosen)
    assert split.source == "profile" and split.tracks == tuple(sorted(chosen))
    settings = load_profile(write_profile(tmp_path / "p.yaml", valid_tracks=chosen))
    assert settings.data.valid_tracks == chosen
    data = prepare_data(settings, stem_root, stats_dir=tmp_path / "features", progress=False)
    assert sorted(t.name for t in data.valid_tracks) == sorted(chosen) and len(data.train_tracks) == 4
    with pytest.raises(ValueError, match=r"data.valid_tracks names 'Nobody - Nothing', not a song of .*train"):
        datasets.validation_split(stem_root, valid_tracks=["O'Brien - Ça va", "Nobody - Nothing"])
    with pytest.raises(ValueError, match="data.valid_tracks is empty"):
        load_profile(write_profile(tmp_path / "q.yaml", valid_tracks=[]))
    with pytest.raises(ValueError, match=r"valid_tracks: expected list\[str\]"):
        load_profile(write_profile(tmp_path / "r.yaml", valid_tracks="O'Brien - Ça va"))


# --------------------------------------------------------------------------- the study
@pytest.mark.slow
def test_smoke_study_runs_on_a_users_stem_folder(study_run, stem_root):
    assert [r.name for r in study_run["runs"]] == [p.name for p in pipeline.study_notebooks()]
    manifest = json.loads((study_run["run_dir"] / "manifest.json").read_text())
    split = manifest["validation_split"]
    assert split["source"] == "derived" and split["nb_train_songs"] == 6
    # the same split on a second derivation, and the one training used
    assert split["tracks"] == list(datasets.validation_split(stem_root).tracks)
    assert split["tracks"] == datasets.derive_validation_tracks(TRAIN_SONGS)
    assert manifest["sample_rates"] == {"songs": [RATE], "training": RATE, "scoring": RATE}
    check = manifest["mixture_check"]
    assert check["checked"] == 8 and check["below_threshold"] == []
    # AAC-coded streams: the mixture is the sum of the stems up to the codec's noise
    assert datasets.MIXTURE_SNR_THRESHOLD_DB < check["min_snr_db"] < 60
    assert study_run["printed"].count("validation split derived") == 1
    # every test song scored under its own name, by the models and the oracles
    for method in ("openunmix", "melunmix", "IRM2", "MIX"):
        scored = sorted(p.stem for p in (study_run["run_dir"] / "eval" / method / "test").glob("*.json"))
        assert scored == sorted(TEST_SONGS)
    assert (study_run["run_dir"] / "REPORT.md").is_file()


@pytest.mark.slow
def test_a_test_only_root_scores_saved_models(study_run, stem_root, tmp_path, capsys):
    only_test = tmp_path / "only test"
    shutil.copytree(stem_root / "test", only_test / "test")
    run_dir = study_run["run_dir"]
    # The study's evaluation of saved models: a song's scores are removed and made again.
    first = run_dir / "eval" / "openunmix" / "test" / f"{sorted(TEST_SONGS)[0]}.json"
    before = json.loads(first.read_text())
    first.unlink()
    runs = pipeline.reproduce(str(study_run["profile"]), data_root=only_test, results_dir=study_run["results"],
                              only=["05"], progress=False)
    assert [r.name for r in runs] == ["05_evaluate.ipynb"]
    assert json.loads(first.read_text())["targets"] == before["targets"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["validation_split"] is None and manifest["sample_rates"]["songs"] == [RATE]
    # `melunmix separate` on the .stem.mp4 songs, then `melunmix score` against the root
    songs = sorted(str(p) for p in (only_test / "test").glob("*.stem.mp4"))
    estimates, out = tmp_path / "estimates", tmp_path / "scores" / "openunmix-cli"
    assert cli.main(["separate", *songs, "--model", str(run_dir / "models" / "openunmix" / "vocals.pth"),
                     "--out", str(estimates), "--no-progress"]) == 0
    assert sorted(p.name for p in estimates.iterdir()) == sorted(TEST_SONGS)
    assert cli.main(["score", str(estimates), "--data-root", str(only_test), "--out", str(out),
                     "--jobs", "1", "--no-progress"]) == 0
    assert sorted(p.stem for p in (out / "test").glob("*.json")) == sorted(TEST_SONGS)
    # the same model on the same songs: the study's median vocals SDR, within what the
    # decoder's end padding changes (the command line separates the whole stream)
    for name in TEST_SONGS:
        ours = json.loads((out / "test" / f"{name}.json").read_text())
        study_scores = json.loads((run_dir / "eval" / "openunmix" / "test" / f"{name}.json").read_text())
        assert _median_sdr(ours) == pytest.approx(_median_sdr(study_scores), abs=0.1)
    # no train/: the steps that train are refused before any kernel starts
    with pytest.raises(FileNotFoundError, match=r"train does not exist; training needs at least 2 songs"):
        pipeline.reproduce(str(study_run["profile"]), data_root=only_test, results_dir=tmp_path / "r", only=["04"])


def _median_sdr(scores: dict) -> float:
    frames = next(t["frames"] for t in scores["targets"] if t["name"] == "vocals")
    values = [f["metrics"]["SDR"] for f in frames if f["metrics"]["SDR"] is not None]
    return float(np.nanmedian(np.asarray(values, dtype=float)))


