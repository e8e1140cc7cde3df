"""melunmix.separation.separate: block-wise processing equals whole-signal processing, lengths, rates, mono, CUDA, the models' agreement and the residual."""

import numpy as np
import pytest
import torch

from melunmix.dsp.features import ISTFT, STFT
from melunmix.dsp.wiener import wiener
from melunmix.models.networks import OpenUnmix, save_model
from melunmix.separation.separate import Separator, separate

from separate_support import N_FFT, N_HOP, noise, sdr, whole_signal_reference


@pytest.mark.parametrize("niter", [0, 1])
@pytest.mark.parametrize("wiener_win_len, model_win_len",
                         [(7, None), (10, 30), (3, 12), (1000, None)])
def test_blockwise_separation_equals_whole_signal_definition(model, niter, wiener_win_len,
                                                             model_win_len):
    """Streamed STFT / ISTFT and model chunks (with full context) change nothing."""
    audio = noise((2, 2, N_HOP * 61 + 37))
    separator = Separator({"vocals": model}, niter=niter, wiener_win_len=wiener_win_len,
                          model_win_len=model_win_len, model_context=10**6)
    with torch.inference_mode():
        estimates = separator(audio)
    assert separator.target_names == ["vocals", "accompaniment"]
    assert estimates.shape == (2, 2, 2, audio.shape[-1]) and estimates.dtype == torch.float32
    expected = whole_signal_reference(model, audio, niter, wiener_win_len)
    torch.testing.assert_close(estimates, expected, rtol=1e-5, atol=1e-6)


def test_blockwise_wiener_equals_single_block_without_em(model):
    """niter=0 filters each bin on its own, so the block length cannot matter."""
    audio = noise((1, 2, N_HOP * 50 + 5), seed=3)
    with torch.inference_mode():
        single = Separator({"vocals": model}, niter=0, wiener_win_len=10**6)(audio)
        blocks = Separator({"vocals": model}, niter=0, wiener_win_len=4)(audio)
    torch.testing.assert_close(blocks, single, rtol=1e-5, atol=1e-7)
    assert single.abs().max() > 0


def test_model_chunks_with_context_approach_whole_signal(model):
    audio = noise((1, 2, N_HOP * 80), seed=4)
    with torch.inference_mode():
        whole = Separator({"vocals": model}, niter=0, model_win_len=None)(audio)
        errors = [float((Separator({"vocals": model}, niter=0, wiener_win_len=10, model_win_len=20,
                                   model_context=context)(audio) - whole).abs().max())
                  for context in (0, 40)]
    assert errors[0] > 1e-5  # without context the chunk edges do change the LSTM's output
    assert errors[1] < 1e-5 * float(whole.abs().max())


@pytest.mark.parametrize("niter", [0, 1])
def test_vocals_plus_residual_is_the_mixture(model, niter):
    audio = noise((1, 2, 4001), seed=5)
    with torch.inference_mode():
        separator = Separator({"vocals": model}, niter=niter, wiener_win_len=16)
        estimates = separator.to_dict(separator(audio))
    assert set(estimates) == {"vocals", "accompaniment"}
    # exact up to the STFT round trip without EM; up to sqrt(eps) / power with it
    tol = 1e-5 if niter == 0 else 1e-3
    error = (estimates["vocals"] + estimates["accompaniment"] - audio).abs().max()
    assert error < tol * audio.abs().max()
    assert (estimates["vocals"] - audio).abs().max() > 0.01  # the model did separate something


@pytest.mark.parametrize("rate, nb_samples", [(8000, 4001), (22050, 11025), (48000, 24011),
                                              (44100, 3)])
def test_separate_any_rate_keeps_length_and_sums_to_mixture(model, rate, nb_samples):
    t = np.arange(nb_samples) / rate
    # content well below every Nyquist involved, so resampling round trips it
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t + 1)])
    estimates = separate(audio, rate, {"vocals": model}, niter=0, device="cpu")
    assert set(estimates) == {"vocals", "accompaniment"}
    for est in estimates.values():
        assert est.shape == audio.shape and est.dtype == np.float32
    total = estimates["vocals"] + estimates["accompaniment"]
    edge = int(0.01 * rate)  # resampling filters ring at the ends
    if nb_samples > 4 * edge:
        np.testing.assert_allclose(total[:, edge:-edge], audio[:, edge:-edge], atol=1e-4)


@pytest.mark.parametrize("rate", [22050, 48000])
def test_separate_resamples_to_a_44100_model(rate):
    torch.manual_seed(2)
    net = OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=2, hidden_size=8, nb_layers=1,
                    sample_rate=44100.0, n_fft=N_FFT, n_hop=N_HOP).eval()
    nb_samples = rate // 4 + 1  # odd, and not a whole number of samples at 44.1 kHz
    t = np.arange(nb_samples) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.3 * np.cos(2 * np.pi * 5000 * t)])
    estimates = separate(audio.astype(np.float32), rate, {"vocals": net}, niter=1, device="cpu")
    assert {name: est.shape for name, est in estimates.items()} == {
        "vocals": (2, nb_samples), "accompaniment": (2, nb_samples)}
    edge = rate // 100
    total = estimates["vocals"] + estimates["accompaniment"]
    np.testing.assert_allclose(total[:, edge:-edge], audio[:, edge:-edge], atol=1e-4)


def test_separate_accepts_torch_and_model_files(model, tmp_path):
    path = save_model(model, tmp_path / "vocals.pt", target="vocals")
    audio = noise((2, 3001), seed=6)
    from_file = separate(audio, 8000, {"vocals": path}, niter=1, device="cpu")
    from_model = separate(audio.numpy(), 8000, {"vocals": model}, niter=1, device="cpu")
    for name in ("vocals", "accompaniment"):
        np.testing.assert_allclose(from_file[name], from_model[name], rtol=1e-5, atol=1e-7)


def test_mono_in_mono_out(model):
    audio = noise((1, 3001), seed=7).numpy()
    estimates = separate(audio, 8000, {"vocals": model}, niter=1, device="cpu")
    stereo = separate(np.repeat(audio, 2, axis=0), 8000, {"vocals": model}, niter=1, device="cpu")
    for name in ("vocals", "accompaniment"):
        assert estimates[name].shape == (1, 3001)
        np.testing.assert_allclose(estimates[name][0], stereo[name].mean(axis=0),
                                   rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(estimates["vocals"] + estimates["accompaniment"], audio, atol=1e-4)


def test_stereo_with_mono_model_separates_each_channel(mono_model):
    audio = noise((2, 3001), seed=8).numpy()
    both = separate(audio, 8000, {"vocals": mono_model}, niter=1, device="cpu")
    left = separate(audio[:1], 8000, {"vocals": mono_model}, niter=1, device="cpu")
    assert both["vocals"].shape == (2, 3001)
    np.testing.assert_allclose(both["vocals"][:1], left["vocals"], rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_separate_on_cuda_matches_cpu(model):
    audio = noise((2, 3001), seed=9).numpy()
    cpu = separate(audio, 8000, {"vocals": model}, niter=1, device="cpu")
    gpu = separate(audio, 8000, {"vocals": model}, niter=1, device="cuda")
    np.testing.assert_allclose(gpu["vocals"], cpu["vocals"], atol=1e-4)


def test_wiener_quality_on_known_mixture():
    """With the true source magnitudes, the filter recovers a stereo mixture's sources,
    and the EM gains by using the sources' different panning."""
    rate, nb_samples = 8000, 16000
    t = np.arange(nb_samples) / rate
    phase = 2 * np.pi * np.cumsum(220 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (np.sin(2 * np.pi * t) > 0)
    vocals = np.stack([voice, voice]) * 0.3  # centred
    hiss = np.random.default_rng(0).standard_normal(nb_samples) * 0.1
    accompaniment = np.stack([0.9 * hiss, 0.3 * hiss]) + 0.2 * np.sin(2 * np.pi * 55 * t)  # left
    stft, istft = STFT(512, 128), ISTFT(512, 128)
    mix = stft(torch.from_numpy(vocals + accompaniment))
    magnitudes = torch.stack([stft(torch.from_numpy(vocals)).abs(),
                              stft(torch.from_numpy(accompaniment)).abs()], dim=-1)
    scores = {}
    for niter in (0, 1):
        y = wiener(magnitudes.permute(2, 1, 0, 3), mix.permute(2, 1, 0), niter)
        estimates = istft(y.permute(3, 2, 1, 0), length=nb_samples).numpy()
        scores[niter] = (sdr(vocals, estimates[0]), sdr(accompaniment, estimates[1]))
    assert sdr(vocals, vocals + accompaniment) < 2  # the mixture itself is a poor estimate
    assert min(scores[0]) > 15
    assert min(scores[1]) > 22
    assert scores[1][0] > scores[0][0] + 2 and scores[1][1] > scores[0][1] + 2


def test_models_must_agree(model):
    other = OpenUnmix(nb_bins=N_FFT + 1, nb_channels=2, hidden_size=16, nb_layers=1,
                      sample_rate=8000.0, n_fft=2 * N_FFT, n_hop=N_HOP)
    with pytest.raises(ValueError, match="disagree on n_fft"):
        Separator({"vocals": model, "drums": other})
    with pytest.raises(ValueError, match="sample_rate=16000"):
        Separator({"vocals": model}, sample_rate=16000)
    with pytest.raises(ValueError, match="non-empty"):
        Separator({})
    with pytest.raises(ValueError, match="wiener_win_len"):
        Separator({"vocals": model}, wiener_win_len=0)


def test_modelled_accompaniment_gets_no_residual(model):
    separator = Separator({"vocals": model, "accompaniment": model})
    assert separator.target_names == ["vocals", "accompaniment"]
    assert Separator({"vocals": model}, residual=False).target_names == ["vocals"]


def test_bad_audio_raises_clear_errors(model):
    with pytest.raises(ValueError, match="audio.T"):
        separate(np.zeros((3001, 2), np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="NaN or infinite"):
        separate(np.full((2, 3001), np.nan, np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="empty"):
        separate(np.zeros((2, 0), np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="audio\\[None\\]"):
        separate(np.zeros(3001, np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="rate"):
        separate(np.zeros((2, 3001), np.float32), 0, {"vocals": model})
    with pytest.raises(ValueError, match="3 channels"):
        separate(np.zeros((3, 3001), np.float32), 8000, {"vocals": model})
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        separate(np.zeros((2, 3001), np.float32), 8000, {"vocals": "missing.pt"})


