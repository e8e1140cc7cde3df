"""Numerical equality with the reference Open-Unmix 1.3.0 given the same weights.

The reference package is installed by ``scripts/setup_env.sh`` without its dependencies
(``no-deps-requirements`` in pyproject.toml); ``bench/reference.py`` imports it, copies our
weights into it and registers a placeholder for the ``torchaudio`` it imports but never
calls in the parts compared here (model, Wiener filter, torch STFT separator).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from melunmix.dsp import features, wiener
from melunmix.models import networks as models
from melunmix.separation.separate import Separator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import reference  # noqa: E402  (bench/reference.py)

RATE = 44100


@pytest.fixture(scope="module")
def oum():
    return reference.import_openunmix()


def _model(seed: int = 0, hidden: int = 32, nb_channels: int = 2, n_fft: int = 4096) -> models.OpenUnmix:
    """Our OpenUnmix with random weights and non-trivial normalisation and batch-norm statistics."""
    torch.manual_seed(seed)
    nb_bins = n_fft // 2 + 1
    max_bin = features.bandwidth_to_max_bin(RATE, n_fft, 16000.0)
    model = models.OpenUnmix(nb_bins=nb_bins, nb_channels=nb_channels, hidden_size=hidden, max_bin=max_bin,
                             input_mean=torch.rand(max_bin), input_scale=0.5 + torch.rand(max_bin),
                             sample_rate=float(RATE))
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_()
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
        for name, param in model.named_parameters():
            if name in ("output_scale", "output_mean"):
                param.normal_(mean=1.0, std=0.2)
            elif name.startswith("bn"):
                param.normal_(mean=1.0 if name.endswith("weight") else 0.0, std=0.2)
    return model.eval()


def test_model_outputs_equal_the_reference_with_the_same_weights(oum):
    ours = _model()
    ref = reference.reference_model(oum, ours).eval()
    torch.manual_seed(1)
    X = torch.rand(2, 2, 2049, 37) * 3  # (batch, channels, bins, frames), Open-Unmix 1.3's layout
    with torch.no_grad():
        a, b = ours(X), ref(X)
    assert a.shape == b.shape == X.shape
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))
    # the comparison can fail: a changed weight moves the output
    with torch.no_grad():
        ours.fc3.weight[0, 0] += 1.0
        assert not torch.allclose(ours(X), b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_wiener_filter_equals_the_reference(oum, iterations):
    gen = torch.Generator().manual_seed(2)
    frames, bins, channels = 40, 33, 2
    mix = torch.complex(torch.randn(frames, bins, channels, generator=gen, dtype=torch.float64),
                        torch.randn(frames, bins, channels, generator=gen, dtype=torch.float64))
    vocals = torch.rand(frames, bins, channels, 1, generator=gen, dtype=torch.float64)
    ours = wiener.wiener(vocals, mix, iterations, residual=True)
    ref = oum.filtering.wiener(vocals, torch.view_as_real(mix), iterations, residual=True)
    # the reference's layout is (frames, bins, channels, real/imag, sources)
    ref = torch.view_as_complex(ref.movedim(3, -1).contiguous())
    assert ours.shape == ref.shape == (frames, bins, channels, 2)
    # ours: torch.polar(v, angle(x)); theirs: atan2, then cos and sin. Equal to ~1e-7 at unit scale
    assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_separator_estimates_equal_the_reference(oum):
    """Waveform in, estimates out: same weights, STFT 4096/1024, one EM iteration, residual."""
    gen = np.random.default_rng(3)
    audio = (0.1 * gen.standard_normal((2, 3 * RATE))).astype(np.float32)
    model = _model(seed=4)
    ref_model = reference.reference_model(oum, model).eval()
    ours = Separator({"vocals": model}, niter=1, residual=True, wiener_win_len=300).eval()
    ref = oum.model.Separator({"vocals": ref_model}, niter=1, residual=True, wiener_win_len=300,
                              sample_rate=float(RATE), n_fft=4096, n_hop=1024, nb_channels=2,
                              filterbank="torch").eval()
    with torch.inference_mode():
        a = ours(torch.from_numpy(audio)[None]).double().numpy()[0]
        b = ref(torch.from_numpy(audio)[None]).double().numpy()[0]
    assert a.shape == b.shape == (2, 2, audio.shape[1])  # (sources: vocals + residual, channels, samples)
    for source in range(2):
        error = np.sum((a[source] - b[source]) ** 2) / np.sum(b[source] ** 2)
        # float64 Wiener step here vs float32 there: agreement far below any audible or BSS Eval level
        assert 10 * np.log10(error) < -80, f"source {source}: {10 * np.log10(error):.1f} dB"
