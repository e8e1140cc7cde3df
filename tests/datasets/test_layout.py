"""Songs of mixture + vocals (melunmix.datasets.layout): found, trained on, separated and
scored, the accompaniment derived as mixture - vocals, the oracles skipped."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.datasets import TrainDataset, ValidDataset, find_tracks, prepare_tracks
from melunmix.datasets.layout import FOUR_STEMS, MIXTURE_AND_VOCALS, common_layout
from melunmix.scoring import evaluate
from melunmix.scoring.track_audio import load_track
from melunmix.study.scoring_steps import oracles_for

RATE = 8000


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_torch_thread):
    yield


@pytest.fixture(scope="module")
def four_stem_root(small_dataset):
    return small_dataset(sample_rate=RATE, nb_test=2)


@pytest.fixture(scope="module")
def two_stem_root(four_stem_root, tmp_path_factory):
    """The small dataset with drums, bass and other deleted from every song."""
    root = shutil.copytree(four_stem_root, tmp_path_factory.mktemp("two") / "songs")
    for folder in [*root.glob("train/*"), *root.glob("test/*")]:
        for stem in ("drums", "bass", "other"):
            (folder / f"{stem}.wav").unlink()
    return root


def _read(path):
    return sf.read(str(path), dtype="float64", always_2d=True)[0]


def test_a_song_of_mixture_and_vocals_is_found_with_its_layout(two_stem_root, four_stem_root):
    tracks = find_tracks(two_stem_root, "train")
    assert {track.layout for track in tracks} == {MIXTURE_AND_VOCALS}
    assert all(sorted(track.stems) == ["mixture", "vocals"] for track in tracks)
    assert {track.layout for track in find_tracks(four_stem_root, "test")} == {FOUR_STEMS}
    assert MIXTURE_AND_VOCALS.derived == ("accompaniment",) and FOUR_STEMS.derived == ()
    assert FOUR_STEMS.four_sources and not MIXTURE_AND_VOCALS.four_sources


def test_a_song_with_some_of_its_stems_is_refused_naming_the_file(four_stem_root, tmp_path):
    root = shutil.copytree(four_stem_root, tmp_path / "songs")
    song = sorted(root.glob("test/*"))[0]
    (song / "bass.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks bass\.wav .*mixture \+ vocals holds only mixture\.wav"):
        find_tracks(root, "test")


def test_mixed_layouts_are_refused_for_training(two_stem_root, four_stem_root):
    with pytest.raises(ValueError, match="mix stem layouts"):
        common_layout([*find_tracks(two_stem_root, "train"), *find_tracks(four_stem_root, "train")])


def test_the_accompaniment_is_derived_once_as_mixture_minus_vocals(two_stem_root, tmp_path):
    (track,) = find_tracks(two_stem_root, "test")[:1]
    (prepared,) = prepare_tracks([track], cache_dir=tmp_path / "cache", progress=False)
    derived = prepared.wav("accompaniment")
    assert derived.is_relative_to(tmp_path / "cache")
    expected = (_read(track.wav("mixture")) - _read(track.wav("vocals"))).astype(np.float32)
    np.testing.assert_array_equal(_read(derived).astype(np.float32), expected)
    written = derived.stat().st_mtime_ns
    (again,) = prepare_tracks([track], cache_dir=tmp_path / "cache", progress=False)
    assert again.wav("accompaniment") == derived and derived.stat().st_mtime_ns == written  # reused


def test_training_items_mix_the_vocals_and_the_accompaniment(two_stem_root, tmp_path):
    tracks = find_tracks(two_stem_root, "train", split="train")
    dataset = TrainDataset(tracks, targets=("vocals", "accompaniment"), seq_dur=0.5, samples_per_track=2,
                           cache_dir=tmp_path / "cache", progress=False, seed=3)
    assert dataset.layout is MIXTURE_AND_VOCALS
    for index in range(len(dataset)):
        mixture, targets = dataset[index]
        assert targets.shape == (2, 2, int(0.5 * RATE))
        torch.testing.assert_close(mixture, targets[0] + targets[1], rtol=0, atol=1e-6)
    # Without augmentation an item is the song itself: its vocals and mixture - vocals.
    plain = TrainDataset(tracks[:1], targets=("vocals", "accompaniment"), seq_dur=0.5, samples_per_track=1,
                         random_chunks=False, gain_range=None, swap_channels=False, random_track_mix=False,
                         cache_dir=tmp_path / "cache", progress=False)
    mixture, (vocals, accompaniment) = plain[0]
    song_mixture = _read(tracks[0].wav("mixture"))[: int(0.5 * RATE)].T
    song_vocals = _read(tracks[0].wav("vocals"))[: int(0.5 * RATE)].T
    np.testing.assert_allclose(vocals.numpy(), song_vocals, atol=1e-7)
    np.testing.assert_allclose(accompaniment.numpy(), song_mixture - song_vocals, atol=1e-6)
    np.testing.assert_allclose(mixture.numpy(), song_mixture, atol=1e-6)


def test_validation_targets_are_the_true_vocals_and_accompaniment(two_stem_root, tmp_path):
    tracks = find_tracks(two_stem_root, "train", split="valid")
    dataset = ValidDataset(tracks, targets="accompaniment", cache_dir=tmp_path / "cache", progress=False)
    mixture, accompaniment = dataset[0]
    song = _read(tracks[0].wav("mixture")) - _read(tracks[0].wav("vocals"))
    np.testing.assert_allclose(accompaniment.numpy(), song.T, atol=1e-6)
    np.testing.assert_allclose(mixture.numpy(), _read(tracks[0].wav("mixture")).T, atol=1e-7)


def test_scoring_references_are_the_vocals_and_mixture_minus_vocals(two_stem_root):
    track = find_tracks(two_stem_root, "test")[0]
    audio = load_track(track)
    assert sorted(audio.references) == ["accompaniment", "vocals"] and sorted(audio.stems) == ["vocals"]
    np.testing.assert_array_equal(audio.references["accompaniment"], audio.mixture - audio.references["vocals"])


def test_oracles_are_skipped_with_one_line_where_they_are_not_defined(two_stem_root, four_stem_root, capsys):
    assert oracles_for(["IRM1", "MIX"], find_tracks(four_stem_root, "test")) == ["IRM1", "MIX"]
    assert oracles_for(["IRM1", "MIX"], find_tracks(two_stem_root, "test")) == []
    assert "oracles IRM1, MIX skipped: 2 test song(s) hold mixture + vocals only" in capsys.readouterr().out
    with pytest.raises(ValueError, match="defined on the four MUSDB18 stems"):
        evaluate.evaluate_oracle("IRM1", find_tracks(two_stem_root, "test"), two_stem_root.parent / "eval",
                                 jobs=1, progress=False)


def test_a_model_trains_separates_and_scores_on_mixture_and_vocals(two_stem_root, tmp_path):
    from melunmix.base.config import settings_from_dict
    from melunmix.training.train import train
    from melunmix.training.training_data import prepare_data

    settings = settings_from_dict({
        "name": "two-stems",
        "data": {"sample_rate": RATE, "seq_dur": 1.0, "samples_per_track": 2, "targets": ["vocals", "accompaniment"]},
        "stft": {"n_fft": 256, "n_hop": 64, "bandwidth": 3000.0},
        "model": {"hidden_size": 8, "nb_layers": 1},
        "train": {"epochs": 2, "batch_size": 2, "use_tuned": False, "progress": False, "seeds": [1]},
    })
    data = prepare_data(settings, data_root=two_stem_root, stats_dir=tmp_path / "stats", progress=False,
                        cache_dir=tmp_path / "cache")
    weights = {}
    for target in ("vocals", "accompaniment"):  # the accompaniment: the derived source as a target
        result = train("openunmix", settings, data, tmp_path / target, target=target)
        assert result.history["epoch"] == [1, 2] and np.isfinite(result.history["valid_loss"]).all()
        weights[target] = result.weights
    tracks = find_tracks(two_stem_root, "test")
    written = evaluate.evaluate_model(weights, tracks, tmp_path / "eval", "openunmix", jobs=1, progress=False,
                                      n_fft=256, n_hop=64)
    assert len(written) == len(tracks)
    from melunmix.analysis.score_frames import load_scores

    scores = load_scores(tmp_path / "eval", ["openunmix"])
    assert set(scores["target"]) == {"vocals", "accompaniment"} and scores["score"].notna().any()


def test_a_resampled_song_gets_its_accompaniment_at_the_new_rate(two_stem_root, tmp_path):
    (track,) = find_tracks(two_stem_root, "test")[:1]
    (prepared,) = prepare_tracks([track], sample_rate=2 * RATE, cache_dir=tmp_path / "cache", progress=False)
    assert prepared.rate == 2 * RATE and sorted(prepared.stems) == ["accompaniment", "mixture", "vocals"]
    expected = (_read(prepared.wav("mixture")) - _read(prepared.wav("vocals"))).astype(np.float32)
    np.testing.assert_array_equal(_read(prepared.wav("accompaniment")).astype(np.float32), expected)


def test_a_changed_song_gets_its_accompaniment_derived_again(two_stem_root, tmp_path):
    root = shutil.copytree(two_stem_root, tmp_path / "songs")
    (track,) = find_tracks(root, "test")[:1]
    (first,) = prepare_tracks([track], cache_dir=tmp_path / "cache", progress=False)
    vocals, rate = sf.read(str(track.wav("vocals")), dtype="float32", always_2d=True)
    sf.write(str(track.wav("vocals")), vocals * 0.5, rate, subtype="FLOAT")
    (track,) = find_tracks(root, "test")[:1]
    (again,) = prepare_tracks([track], cache_dir=tmp_path / "cache", progress=False)
    expected = (_read(track.wav("mixture")) - _read(track.wav("vocals"))).astype(np.float32)
    np.testing.assert_array_equal(_read(again.wav("accompaniment")).astype(np.float32), expected)
    assert not np.array_equal(_read(first.wav("accompaniment")), _read(track.wav("mixture")) - vocals)


def test_a_target_the_layout_cannot_give_is_refused_in_one_line(two_stem_root, tmp_path):
    tracks = find_tracks(two_stem_root, "train", split="train")
    with pytest.raises(ValueError, match="songs of mixture \\+ vocals have no drums to train on; "
                                         "the targets they give: vocals, accompaniment"):
        TrainDataset(tracks, targets=("drums",), cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match="validation items: songs of mixture \\+ vocals have no bass"):
        ValidDataset(tracks[:1], targets=("vocals", "bass"), cache_dir=tmp_path / "cache", progress=False)
