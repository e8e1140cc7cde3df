"""Any MUSDB18-format folder runs the study (issue 12, part 1), and data that would give
untrustworthy numbers is flagged or refused (issue 16, case 5).

The folders are built here: songs of synthetic stems written as MUSDB18 ``.stem.mp4``
(five AAC streams, mixture/drums/bass/other/vocals, 44.1 kHz stereo, as musdb's
``stempeg`` writes them) with odd names (spaces, apostrophes, non-ASCII), unequal lengths
and none of musdb's validation songs; WAV folders for the rate and mixture checks. The
study runs for real (papermill, every notebook) with a tiny profile.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from melunmix.commands import cli
from melunmix import datasets
from melunmix.study import pipeline, run_setup
from melunmix.datasets import splits

RATE = 44100
#: name -> seconds; none is one of musdb's validation songs.
TRAIN_SONGS = {
    "Zoë & the Ünicorns - Don't Stop": 4.2,
    "O'Brien - Ça va": 3.1,
    "Sigur Rós - Hoppípolla": 5.0,
    "日本のバンド - 歌": 3.6,
    "Space  Band - Two  Spaces": 4.6,
    "Mr. Dot - v1.2 (Live)": 3.9,
}
TEST_SONGS = {"Test Ünïcode - Ünequal": 4.4, "Test's Apostrophe - Short": 3.3}

#: A profile with tiny sizes: every step of the study, in about a minute.
TINY_PROFILE = {
    "description": "tiny models on a user's MUSDB18-format folder (tests)",
    "data": {"seq_dur": 1.0, "samples_per_track": 2, "valid_seq_dur": 2.0},
    "stft": {"n_fft": 512, "n_hop": 256, "bandwidth": 16000},
    "model": {"hidden_size": 8, "nb_layers": 1, "n_mels": 8, "n_mfcc": 4},
    "train": {"models": ["openunmix", "melunmix"], "epochs": 2, "batch_size": 4, "seeds": [42],
              "lr_schedule": "exponential", "lr_decay_gamma": 1.0, "progress": False},
    "tune": {"sample_rate": 16000, "nb_trials": 1, "epochs": 1, "samples_per_track": 1,
             "space": {"lr": [0.0001, 0.01, "log"]}},
    "evaluate": {"jobs": 1, "bootstrap": 20, "oracles": ["MIX", "IRM2"]},
}


def song_stems(seconds: float, seed: int, rate: int = RATE) -> dict[str, np.ndarray]:
    """Stereo stems (nb_samples, 2) with a voice-like line, drums, bass and chords."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    notes = 196.0 * 2 ** (rng.integers(0, 12, size=int(seconds * 2) + 1) / 12)
    f0 = notes[(t * 2).astype(int)] * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (np.sin(2 * np.pi * 0.7 * t) > -0.3)
    hits = np.zeros(n)
    hits[:: rate // 4] = 1.0
    drums = np.convolve(hits, np.exp(-np.arange(2000) / 300.0))[:n] * rng.standard_normal(n)
    bass = np.sin(2 * np.pi * notes[(t * 2).astype(int)] / 4 * t)
    other = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    mono = {"vocals": 0.15 * voice, "drums": 0.2 * drums, "bass": 0.2 * bass, "other": 0.15 * other}
    pans = {"vocals": 0.5, "drums": 0.4, "bass": 0.5, "other": 0.7}
    return {name: np.stack([x * pans[name], x * (1 - pans[name])], axis=1).astype(np.float32)
            for name, x in mono.items()}


def write_stem_mp4(path: Path, stems: dict[str, np.ndarray], rate: int = RATE) -> None:
    """A MUSDB18 song: streams mixture, drums, bass, other, vocals, AAC, as stempeg writes them."""
    import stempeg

    mixture = sum(stems[s] for s in ("vocals", "drums", "bass", "other"))
    data = np.stack([mixture, stems["drums"], stems["bass"], stems["other"], stems["vocals"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    stempeg.write_stems(str(path), data, rate, writer=stempeg.StreamsWriter(codec="aac", bitrate=256000))


def write_wav_song(folder: Path, stems: dict[str, np.ndarray], rate: int = RATE, mixture=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio, rate, subtype="FLOAT")
    if mixture is None:
        mixture = sum(stems[s] for s in ("vocals", "drums", "bass", "other"))
    sf.write(folder / "mixture.wav", mixture, rate, subtype="FLOAT")


def write_profile(path: Path, **data) -> Path:
    profile = json.loads(json.dumps(TINY_PROFILE))
    profile["data"].update(data)
    path.write_text(yaml.safe_dump(profile, allow_unicode=True))
    return path


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


# --------------------------------------------------------------------------- the split
def test_derived_split_is_one_in_seven_seeded_and_stable():
    for nb, expected in ((2, 1), (6, 1), (7, 1), (20, 3), (100, 14)):
        names = [f"Artist {i:03d} - Song" for i in range(nb)]
        chosen = datasets.derive_validation_tracks(names)
        assert len(chosen) == expected and set(chosen) <= set(names) and chosen == sorted(chosen)
        # the rule as documented: the names ranked by sha256("<seed>\0<name>"), the first ones
        ranked = sorted(names, key=lambda n: hashlib.sha256(f"{splits.VALID_SEED}\0{n}".encode()).hexdigest())
        assert chosen == sorted(ranked[:expected])
        assert datasets.derive_validation_tracks(list(reversed(names))) == chosen
    names = [f"Artist {i:03d} - Song" for i in range(100)]
    assert datasets.derive_validation_tracks(names, seed=1) != datasets.derive_validation_tracks(names)


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


def test_too_few_train_songs_or_no_test_songs_get_one_line(tmp_path, capsys):
    root = tmp_path / "tiny root"
    write_wav_song(root / "train" / "Only - One", song_stems(1.0, 1))
    (root / "test").mkdir()
    with pytest.raises(ValueError, match=r"test is empty; put the test songs there"):
        datasets.check_root(root, needs_train=False)
    write_wav_song(root / "test" / "A - Test", song_stems(1.0, 2))
    with pytest.raises(ValueError, match=r"train holds 1 song\(s\); training needs at least 2.*melunmix score"):
        datasets.check_root(root, needs_train=True)
    with pytest.raises(ValueError, match="training needs at least 2"):
        datasets.find_tracks(root, "train", split="train")
    assert datasets.check_root(root, needs_train=False)["song_rates"] == [RATE]
    # the command line stops before any notebook starts, with one line naming the root
    profile = write_profile(tmp_path / "tiny.yaml")
    assert cli.main(["reproduce", "--profile", str(profile), "--data-root", str(root),
                     "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(root / "train") in err and "at least 2" in err
    assert not (tmp_path / "results" / "tiny" / "notebooks").exists() or not any(
        (tmp_path / "results" / "tiny" / "notebooks").iterdir())


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


# --------------------------------------------------------------------------- mixtures
def test_a_generated_dataset_passes_the_mixture_check(tmp_path, capfd):
    from melunmix import synth

    root = synth.make_dataset(tmp_path / "gen", nb_train=2, nb_valid=1, nb_test=1, duration=4.0, seed=4,
                              progress=False)
    records = datasets.check_mixtures(datasets.find_tracks(root, "train") + datasets.find_tracks(root, "test"),
                                      tmp_path / "cache")
    assert len(records) == 3 and all(r["ok"] and r["snr_db"] > 100 for r in records)
    datasets.prepare_tracks(datasets.find_tracks(root, "test"), progress=False)
    assert "warning" not in capfd.readouterr().err


def test_a_mixture_that_is_not_the_sum_of_its_stems_is_flagged(tmp_path, capfd):
    from melunmix.base.config import load_profile

    root = tmp_path / "broken"
    for index, name in enumerate(("Good - One", "Good - Two")):
        write_wav_song(root / "train" / name, song_stems(2.0, index))
    good = song_stems(2.0, 7)
    write_wav_song(root / "test" / "Fine - Song", good)
    bad = song_stems(2.0, 8)
    # the mixture at half level: mixture - sum of stems = -mixture, SNR 0 dB
    write_wav_song(root / "test" / "Wrong 'Mix' - Song", bad, mixture=0.5 * sum(bad.values()))
    tracks = datasets.prepare_tracks(datasets.find_tracks(root, "test"), progress=False)
    err = [line for line in capfd.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "Wrong 'Mix' - Song" in err[0] and "SNR 0.0 dB" in err[0]
    assert "Fine - Song" not in err[0]
    datasets.prepare_tracks(tracks, progress=False)  # once per track: no second line
    assert not capfd.readouterr().err.strip()
    record = datasets.root_record(root, load_profile(write_profile(tmp_path / "p.yaml")), warn=False)
    assert record["mixture_check"]["below_threshold"] == [
        {"track": "Wrong 'Mix' - Song", "subset": "test", "snr_db": 0.0}]
    assert record["mixture_check"]["checked"] == 2


# --------------------------------------------------------------------------- rates
def test_one_rate_for_training_and_scoring(tmp_path):
    from melunmix.scoring import evaluate
    from melunmix.analysis import result_tables, score_frames
    from melunmix import synth
    from melunmix.base.config import load_profile

    root = synth.make_dataset(tmp_path / "songs at 22k", nb_train=2, nb_valid=1, nb_test=1, duration=4.0, seed=2,
                              sample_rate=22050, progress=False)
    at_44k = write_profile(tmp_path / "at44k.yaml")
    with pytest.raises(ValueError, match=r"2 train song\(s\) at 22050 Hz .* but profile 'at44k' trains and scores "
                                         r"at 44100 Hz.*set data.sample_rate: 22050"):
        run_setup.open_run(str(at_44k), data_root=root, results_dir=tmp_path / "r")
    at_22k = write_profile(tmp_path / "at22k.yaml", sample_rate=22050)
    run = run_setup.open_run(str(at_22k), data_root=root, results_dir=tmp_path / "r")
    tracks = run_setup.tracks(run, "test")
    assert [t.rate for t in tracks] == [22050]
    evaluate.evaluate_oracle("IRM2", tracks, run.paths.eval, jobs=1, progress=False)
    table = result_tables.poster_table(score_frames.load_scores(run.paths.eval, ["IRM2"]))
    # sane oracle scores at the one rate (issue 16: ISR -30 dB and SAR 0.00 when not)
    assert table.loc["IRM2", ("vocals", "ISR")] > 5 and table.loc["IRM2", ("vocals", "SAR")] > 5
    record = datasets.root_record(root, load_profile(at_22k), needs_train=True)
    assert record["sample_rates"] == {"songs": [22050], "training": 22050.0, "scoring": 22050.0}
    assert record["validation_split"]["source"] == "musdb setup"
