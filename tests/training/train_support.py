"""Tiny training settings and run comparisons shared by the training tests."""

from __future__ import annotations

import librosa
import numpy as np
import soundfile as sf
import torch

from melunmix.base.config import settings_from_dict
from melunmix.models import networks as models


SAMPLE_RATE = 16000


N_FFT, N_HOP = 256, 128


def make_settings(**sections) -> object:
    """Tiny settings; ``sections`` override whole keys of the sections given."""
    values = {
        "name": "test",
        "data": {"sample_rate": SAMPLE_RATE, "seq_dur": 1.0, "samples_per_track": 4},
        "stft": {"n_fft": N_FFT, "n_hop": N_HOP, "bandwidth": 6000.0},
        "model": {"hidden_size": 16, "nb_layers": 2, "n_mels": 16},
        "train": {"epochs": 3, "batch_size": 4, "lr": 0.01, "use_tuned": False, "progress": False,
                  "seeds": [7]},
    }
    for section, overrides in sections.items():
        values[section] = {**values.get(section, {}), **overrides}
    return settings_from_dict(values)


def reference_valid_loss(model, track) -> float:
    """Validation loss recomputed with librosa's STFT: MSE of magnitudes, all bins and channels."""
    mixture, _ = sf.read(track.wav("mixture"), dtype="float32", always_2d=True)
    vocals, _ = sf.read(track.wav("vocals"), dtype="float32", always_2d=True)

    def mag(audio):
        # Training and validation frame as Open-Unmix's training encoder: uncentred.
        return np.abs(librosa.stft(audio.T, n_fft=N_FFT, hop_length=N_HOP, window="hann",
                                   center=False))[None]  # (1, channels, bins, frames)

    with torch.no_grad():
        estimate = model(torch.from_numpy(mag(mixture))).numpy()
    return float(np.mean((estimate.astype(np.float64) - mag(vocals)) ** 2))


def compare_runs(a, b):
    for column in ("train_loss", "valid_loss", "lr"):
        assert a.history[column] == b.history[column], column  # exact, not approximate
    state_a = models.load_model(a.weights).state_dict()
    state_b = models.load_model(b.weights).state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


EXPONENTIAL = {"lr_schedule": "exponential", "lr_decay_gamma": 0.6}
