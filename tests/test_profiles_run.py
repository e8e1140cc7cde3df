"""The MUSDB18 profiles (poster, umx) cannot run here; their settings are checked on a tiny
generated stand-in: they load, the data pipeline accepts them, and the first batch of both
models trains at the profiles' real model and STFT sizes (hidden 512, n_fft 4096)."""

import math

import pytest

from melunmix.base.config import load_profile
from melunmix.training.training_data import prepare_data
from melunmix.training.train import train


@pytest.fixture(scope="module")
def stand_in(small_dataset):
    # 8 s songs: the profiles draw 6 s excerpts
    return small_dataset(nb_train=2, nb_valid=1, nb_test=1, duration=8.0, seed=5, sample_rate=44100)


@pytest.mark.parametrize("profile", ["poster", "umx"])
def test_first_batch_runs_at_the_profiles_sizes(profile, stand_in, tmp_path):
    settings = load_profile(profile, overrides={
        "data": {"root": str(stand_in), "samples_per_track": 1, "nb_workers": 0},
        "train": {"batch_size": 1, "progress": False, "use_tuned": False},
    })
    assert settings.model.hidden_size == 512 and settings.stft.n_fft == 4096
    data = prepare_data(settings, stats_dir=tmp_path / "features", progress=False)
    assert data.nb_stft_bins == 2049 and data.sample_rate == 44100
    for model in settings.train.models:
        result = train(model, settings, data, out_dir=tmp_path / model, stop_after=1, progress=False)
        assert result.last_epoch == 1 and not result.finished  # resumable, as after a kill
        assert math.isfinite(result.history["train_loss"][0]) and math.isfinite(result.history["valid_loss"][0])
        assert result.weights.is_file()
