"""A tiny model and songs on disk shared by the separation tests."""

import numpy as np
import pytest
import torch

from melunmix.dsp.features import ISTFT, STFT
from melunmix.dsp.wiener import wiener


N_FFT, N_HOP = 256, 64


# Tiny tensors: one intra-op thread is faster than two fighting over shared cores.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


def noise(shape, seed=0):
    samples = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return torch.from_numpy(samples * 0.1)


def whole_signal_reference(net, audio, niter, wiener_win_len):
    """The definition: whole-signal STFT and model, Wiener on consecutive blocks, whole ISTFT."""
    stft, istft = STFT(N_FFT, N_HOP), ISTFT(N_FFT, N_HOP)
    with torch.inference_mode():
        mix = stft(audio.double())
        target = net(stft(audio).abs()).double()
    out = []
    for mix_s, target_s in zip(mix, target):
        spec, x = target_s.permute(2, 1, 0)[..., None], mix_s.permute(2, 1, 0)
        blocks = [wiener(spec[t:t + wiener_win_len], x[t:t + wiener_win_len], niter, residual=True)
                  for t in range(0, x.shape[0], wiener_win_len)]
        out.append(istft(torch.cat(blocks).permute(3, 2, 1, 0), length=audio.shape[-1]))
    return torch.stack(out).float()


def sdr(reference, estimate):
    return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2))
