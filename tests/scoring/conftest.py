"""Fixtures of the scoring tests: a small test set, its scores, a tiny model."""

from __future__ import annotations

import pytest

from melunmix.datasets import find_tracks
from melunmix.scoring import evaluate as ev
from melunmix.scoring.track_audio import load_track

from evaluate_support import DURATION, N_FFT, N_HOP, RATE, save_tiny_model


@pytest.fixture(scope="module")
def data_root(small_dataset):
    return small_dataset(nb_train=1, nb_valid=0, nb_test=3, duration=DURATION, seed=3, sample_rate=RATE)


@pytest.fixture(scope="module")
def tracks(data_root):
    return find_tracks(data_root, "test")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("models") / "vocals.pt", target="vocals")


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory, tracks, model_file):
    """MIX, IRM1 and a tiny model scored once (serially) for the tests below."""
    out = tmp_path_factory.mktemp("eval")
    for oracle in ("MIX", "IRM1"):
        ev.evaluate_oracle(oracle, tracks, out, jobs=1, progress=False)
    ev.evaluate_model({"vocals": model_file}, tracks, out, "openunmix-seed1", jobs=1,
                      progress=False, n_fft=N_FFT, n_hop=N_HOP, sample_rate=RATE)
    return out


@pytest.fixture(scope="module")
def one_track(tracks):
    return load_track(tracks[0])
