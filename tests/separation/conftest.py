"""Fixtures of the separation tests: tiny models and songs."""

import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.models.networks import OpenUnmix

from separate_support import N_FFT, N_HOP, noise


@pytest.fixture(scope="module")
def model():
    """A tiny randomly initialised Open-Unmix (real layers, untrained)."""
    torch.manual_seed(0)
    net = OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=2, hidden_size=16, nb_layers=2,
                    sample_rate=8000.0, n_fft=N_FFT, n_hop=N_HOP)
    # the initial output affine (scale 1, mean 1) gives a mask of about 1 everywhere;
    # random values make the untrained model's vocals differ from the mixture
    with torch.no_grad():
        net.output_scale.uniform_(0.5, 2.0)
        net.output_mean.uniform_(-0.5, 1.0)
    return net.eval()


@pytest.fixture(scope="module")
def mono_model():
    torch.manual_seed(1)
    return OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=1, hidden_size=16, nb_layers=1,
                     sample_rate=8000.0, n_fft=N_FFT, n_hop=N_HOP).eval()


@pytest.fixture()
def songs(tmp_path):
    """A good stereo WAV at 11025 Hz, a mono FLAC, an empty WAV, a non-audio file and a NaN WAV."""
    folder = tmp_path / "songs"
    folder.mkdir()
    good = folder / "good song.wav"
    t = np.arange(3001) / 11025
    # below 4 kHz, the Nyquist of the 8 kHz model the song is resampled to
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 2500 * t)],
                     axis=1)
    sf.write(good, tones, 11025, subtype="PCM_16")
    mono = folder / "mono.flac"
    sf.write(mono, noise((2001,), seed=11).numpy(), 8000)
    empty = folder / "empty.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), 8000)
    garbage = folder / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    nan = folder / "nan.wav"
    sf.write(nan, np.full((500, 2), np.nan, np.float32), 8000, subtype="FLOAT")
    return {"good": good, "mono": mono, "empty": empty, "garbage": garbage, "nan": nan,
            "missing": folder / "missing.wav"}
