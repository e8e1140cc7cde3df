"""A small test set and a tiny model shared by the scoring tests."""

from __future__ import annotations

import torch

from melunmix.models.networks import build_model, save_model


RATE = 8000


N_FFT, N_HOP = 256, 64


DURATION = 5.0


METRICS = ["SDR", "SIR", "ISR", "SAR"]


def save_tiny_model(path, name="openunmix", n_fft=N_FFT, nan=False, **extra):
    torch.manual_seed(0)
    kwargs = dict(nb_bins=n_fft // 2 + 1, nb_channels=2, hidden_size=8, nb_layers=1,
                  sample_rate=RATE, n_fft=n_fft, n_hop=N_HOP)
    if name in ("melunmix", "wideunmix"):
        kwargs["n_mels"] = 16
    model = build_model(name, **kwargs)
    if nan:
        with torch.no_grad():
            model.output_mean.fill_(float("nan"))
    return save_model(model, path, **extra)
