"""melunmix.datasets.checks: a root the study can use, one rate, mixtures that are the sum of their stems."""

from __future__ import annotations

import pytest
from song_folders import RATE, song_stems, write_profile, write_wav_song

from melunmix import datasets
from melunmix.commands import cli
from melunmix.study import run_setup

# Decode caches and check records in a temporary folder, not the repository's.
pytestmark = pytest.mark.usefixtures("temporary_cache")


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


# --------------------------------------------------------------------------- mixtures
def test_a_generated_dataset_passes_the_mixture_check(small_dataset, tmp_path, capfd):
    root = small_dataset(nb_train=2, nb_valid=1, nb_test=1, seed=4, sample_rate=44100)
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
def test_one_rate_for_training_and_scoring(small_dataset, tmp_path):
    from melunmix.scoring import evaluate
    from melunmix.analysis import result_tables, score_frames
    from melunmix.base.config import load_profile

    root = small_dataset(nb_train=2, nb_valid=1, nb_test=1, seed=2, sample_rate=22050)
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
