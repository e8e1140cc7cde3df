"""melunmix.dsp.features against librosa / scipy / torch references on known signals."""

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from melunmix.dsp.features import (
    ISTFT,
    MFCC,
    STFT,
    LogMelSpectrogram,
    MelSpectrogram,
    bandwidth_to_max_bin,
    dct_matrix,
    magnitude,
    branch_transform,
    mel_filterbank,
    linear_filterbank,
    nb_frames,
    power_to_db,
)

SR = 22050
N_FFT = 1024
N_HOP = 256


def known_signal(nb_samples=SR, dtype=np.float64, silence=0):
    """Linear chirp 100 Hz -> 8 kHz plus two sines; optionally digital silence first."""
    t = np.arange(nb_samples) / SR
    y = (0.5 * scipy.signal.chirp(t, 100, t[-1], 8000)
         + 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t))
    y[:silence] = 0.0
    return y.astype(dtype)


def spectrum(y):
    return magnitude(STFT(N_FFT, N_HOP)(torch.from_numpy(y)))


# --- STFT / ISTFT -------------------------------------------------------------------

@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize("n_fft,n_hop", [(1024, 256), (512, 128), (4096, 1024)])
def test_stft_matches_librosa(pad_mode, n_fft, n_hop):
    y = known_signal(SR // 2)
    ours = STFT(n_fft, n_hop, center=True, pad_mode=pad_mode)(torch.from_numpy(y)).numpy()
    ref = librosa.stft(y, n_fft=n_fft, hop_length=n_hop, window="hann", center=True,
                       pad_mode=pad_mode)
    assert ours.shape == ref.shape == (n_fft // 2 + 1, nb_frames(len(y), n_fft, n_hop))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_stft_non_centred_matches_librosa():
    y = known_signal(5000)
    ours = STFT(N_FFT, N_HOP, center=False)(torch.from_numpy(y)).numpy()
    ref = librosa.stft(y, n_fft=N_FFT, hop_length=N_HOP, center=False)
    assert ours.shape == ref.shape == (N_FFT // 2 + 1, nb_frames(5000, N_FFT, N_HOP, False))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_stft_batched_shape_and_values():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4000)
    X = STFT(N_FFT, N_HOP)(x)
    assert X.shape == (3, 2, N_FFT // 2 + 1, 1 + 4000 // N_HOP)
    assert X.dtype == torch.complex64
    # every (example, channel) is transformed on its own
    single = STFT(N_FFT, N_HOP)(x[2, 1])
    torch.testing.assert_close(X[2, 1], single)


@pytest.mark.parametrize("nb_samples", [4096, 5001, 22050])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_exact_length(nb_samples, dtype):
    torch.manual_seed(1)
    x = torch.rand(2, 2, nb_samples, dtype=dtype) * 2 - 1
    X = STFT(N_FFT, N_HOP)(x)
    y = ISTFT(N_FFT, N_HOP)(X, length=nb_samples)
    assert y.shape == x.shape and y.dtype == dtype
    assert (y - x).abs().max() < 1e-5


@pytest.mark.filterwarnings("ignore:The length of signal is shorter:UserWarning")
def test_istft_matches_torch_istft_and_length_pads():
    torch.manual_seed(2)
    X = STFT(N_FFT, N_HOP)(torch.randn(2, 3000, dtype=torch.float64))
    ours = ISTFT(N_FFT, N_HOP)(X)
    ref = torch.istft(X, N_FFT, N_HOP, window=torch.hann_window(N_FFT, dtype=torch.float64))
    torch.testing.assert_close(ours, ref)
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    for length in (3000, 2000, ref.shape[-1] + N_FFT // 2 + 50):
        ours = ISTFT(N_FFT, N_HOP)(X, length=length)
        assert ours.shape == (2, length)
        torch.testing.assert_close(ours, torch.istft(X, N_FFT, N_HOP, window=window,
                                                     length=length))
    # beyond the last frame's reach nothing was analysed: zeros
    assert torch.all(ours[:, -50:] == 0)


def test_round_trip_non_centred_interior():
    torch.manual_seed(3)
    x = torch.rand(2, 9000) * 2 - 1
    y = ISTFT(N_FFT, N_HOP, center=False)(STFT(N_FFT, N_HOP, center=False)(x), length=9000)
    assert y.shape == x.shape
    # interior: every sample covered by n_fft / n_hop full windows
    last = N_FFT + N_HOP * (nb_frames(9000, N_FFT, N_HOP, center=False) - 1)
    interior = slice(N_FFT - N_HOP, last - (N_FFT - N_HOP))
    assert (y[:, interior] - x[:, interior]).abs().max() < 1e-5
    # documented edges: the first sample (window = 0) and never-analysed tail are zero
    assert torch.all(y[:, 0] == 0) and torch.all(y[:, last:] == 0)


def test_window_is_buffer_not_state():
    stft = STFT(N_FFT, N_HOP)
    assert "window" in dict(stft.named_buffers())
    assert len(stft.state_dict()) == 0


def test_stft_istft_errors():
    with pytest.raises(ValueError, match="too short"):
        STFT(N_FFT, N_HOP)(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="real floating-point"):
        STFT(N_FFT, N_HOP)(torch.zeros(2, 5000, dtype=torch.int16))
    with pytest.raises(ValueError, match="n_hop"):
        STFT(256, 512)
    with pytest.raises(ValueError, match="n_fft=512 needs 257"):
        ISTFT(512, 128)(torch.zeros(2, 513, 10, dtype=torch.complex64))


def test_magnitude():
    X = torch.tensor([[3 + 4j, 0j], [1j, -2 + 0j]], dtype=torch.complex64)
    torch.testing.assert_close(magnitude(X), torch.tensor([[5.0, 0.0], [1.0, 2.0]]))
    torch.testing.assert_close(magnitude(X, power=2), torch.tensor([[25.0, 0.0], [1.0, 4.0]]))


# --- mel / dB / MFCC -----------------------------------------------------------------

@pytest.mark.parametrize("htk,norm", [(False, "slaney"), (True, "slaney"), (True, None)])
def test_mel_filterbank_matches_librosa(htk, norm):
    fb = mel_filterbank(SR, N_FFT, 40, fmin=50.0, fmax=9000.0, htk=htk, norm=norm)
    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40, fmin=50.0, fmax=9000.0,
                              htk=htk, norm=norm)
    assert fb.shape == (40, N_FFT // 2 + 1)
    np.testing.assert_allclose(fb.numpy(), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_melspectrogram_matches_librosa(htk, power):
    y = known_signal()
    ours = MelSpectrogram(SR, N_FFT, n_mels=40, fmax=10000.0, htk=htk, power=power)(
        spectrum(y)).numpy()
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=N_HOP,
                                         n_mels=40, fmax=10000.0, htk=htk, power=power,
                                         pad_mode="reflect")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=0)


def test_melspectrogram_float32_and_batched():
    y = known_signal(dtype=np.float32)
    mel = MelSpectrogram(SR, N_FFT, n_mels=40)
    batch = torch.from_numpy(np.stack([np.stack([y, 0.5 * y])] * 3))  # (3, 2, nb_samples)
    ours = mel(magnitude(STFT(N_FFT, N_HOP)(batch)))
    assert ours.shape == (3, 2, 40, nb_frames(len(y), N_FFT, N_HOP))
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=N_HOP,
                                         n_mels=40, pad_mode="reflect")
    np.testing.assert_allclose(ours[1, 0].numpy(), ref, rtol=1e-4, atol=1e-6 * ref.max())
    np.testing.assert_allclose(ours[2, 1].numpy(), ref / 4, rtol=1e-4, atol=1e-6 * ref.max())


@pytest.mark.parametrize("top_db", [80.0, 40.0, None])
def test_power_to_db_matches_librosa(top_db):
    rng = np.random.default_rng(0)
    S = rng.random((5, 7)) ** 8  # spans many decades
    S[0, 0] = 0.0
    for ref in (1.0, 0.5, np.max):
        ours = power_to_db(torch.from_numpy(S), ref=torch.amax if ref is np.max else ref,
                           top_db=top_db).numpy()
        expected = librosa.power_to_db(S, ref=ref, top_db=top_db)
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


def test_power_to_db_per_example_clip():
    S = torch.tensor([[[1.0, 1e-12]], [[1e-4, 1e-12]]])  # two "examples"
    per_example = power_to_db(S, top_db=20.0, dim=(-2, -1))
    torch.testing.assert_close(per_example[:, 0, 1], torch.tensor([-20.0, -60.0]))
    whole = power_to_db(S, top_db=20.0)  # librosa: one max over everything
    torch.testing.assert_close(whole[:, 0, 1], torch.tensor([-20.0, -20.0]))


def test_dct_matrix_is_scipy_ortho_dct():
    D = dct_matrix(13, 40, dtype=torch.float64).numpy()
    ref = scipy.fft.dct(np.eye(40), type=2, norm="ortho", axis=0)[:13]
    np.testing.assert_allclose(D, ref, atol=1e-12)
    np.testing.assert_allclose(D @ D.T, np.eye(13), atol=1e-12)
    with pytest.raises(ValueError, match="n_mfcc"):
        dct_matrix(41, 40)


@pytest.mark.parametrize("htk", [False, True])
def test_mfcc_matches_librosa(htk):
    # 0.3 s of digital silence: librosa's top_db=80 clip is active on those frames
    y = known_signal(silence=SR * 3 // 10)
    ours = MFCC(SR, N_FFT, n_mfcc=13, n_mels=40, fmax=10000.0, htk=htk)(spectrum(y)).numpy()
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=N_FFT, hop_length=N_HOP,
                               n_mels=40, fmax=10000.0, htk=htk, pad_mode="reflect")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    unclipped = librosa.feature.mfcc(
        S=librosa.power_to_db(librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=N_FFT, hop_length=N_HOP, n_mels=40, fmax=10000.0, htk=htk,
            pad_mode="reflect"), top_db=None), n_mfcc=13)
    assert np.abs(unclipped - ref).max() > 1.0  # the clip matters for this signal


def test_mfcc_batch_clips_each_example_on_its_own():
    loud, quiet = known_signal(silence=4000), 1e-3 * known_signal(silence=4000)
    mfcc = MFCC(SR, N_FFT, n_mfcc=13, n_mels=40)
    ours = mfcc(spectrum(np.stack([loud, quiet])))
    for row, y in zip(ours.numpy(), (loud, quiet)):
        ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=N_FFT, hop_length=N_HOP,
                                   n_mels=40, pad_mode="reflect")
        np.testing.assert_allclose(row, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("feature", ["mel", "mfcc"])
def test_mel_branch_transform_is_unclipped_log_mel(feature):
    y = known_signal(silence=4000)
    transform = branch_transform(feature, SR, N_FFT, n_mels=32, n_mfcc=10)
    ours = transform(spectrum(y)).numpy()
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=N_FFT, hop_length=N_HOP, n_mels=32, pad_mode="reflect"), top_db=None)
    ref = log_mel if feature == "mel" else librosa.feature.mfcc(S=log_mel, n_mfcc=10)
    assert transform.nb_features == ref.shape[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert ours.min() < -99.0 or feature == "mfcc"  # silence sits at the amin floor
    assert isinstance(transform, LogMelSpectrogram if feature == "mel" else MFCC)


def test_mel_errors():
    with pytest.raises(ValueError, match="Nyquist"):
        mel_filterbank(SR, N_FFT, fmax=SR)
    with pytest.raises(ValueError, match="magnitude"):
        MelSpectrogram(SR, N_FFT)(torch.zeros(N_FFT // 2 + 1, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="513"):
        MelSpectrogram(SR, N_FFT)(torch.zeros(100, 3))
    with pytest.raises(ValueError, match="feature"):
        branch_transform("cqt", SR, N_FFT)


# --- bandwidth -----------------------------------------------------------------------

def test_bandwidth_to_max_bin():
    assert bandwidth_to_max_bin(44100, 4096, 16000) == 1487
    assert bandwidth_to_max_bin(44100, 4096, 0) == 1
    assert bandwidth_to_max_bin(44100, 4096, 30000) == 2049
    for rate, n_fft, bandwidth in [(16000, 512, 4000), (22050, 1024, 5000.5), (8000, 256, 31.25)]:
        expected = sum(k * rate / n_fft <= bandwidth for k in range(n_fft // 2 + 1))
        assert bandwidth_to_max_bin(rate, n_fft, bandwidth) == expected
    with pytest.raises(ValueError, match="bandwidth"):
        bandwidth_to_max_bin(44100, 4096, -1)


@pytest.mark.parametrize("n_fft,n_hop", [(512, 128), (512, 192), (400, 100)])
def test_overlap_add_equals_fold(n_fft, n_hop):
    """The hop-aligned overlap-add equals torch's fold (the textbook definition)."""
    istft = ISTFT(n_fft, n_hop)
    frames = torch.randn(3, n_fft, 7, dtype=torch.float64)
    full = n_fft + n_hop * 6
    expected = torch.nn.functional.fold(frames, output_size=(1, full), kernel_size=(1, n_fft),
                                        stride=(1, n_hop)).reshape(3, full)
    torch.testing.assert_close(istft._overlap_add(frames, full), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", ["slaney", None])
def test_linear_filterbank_is_triangles_equally_spaced_in_hz(norm):
    n_bands, fmin, fmax = 10, 100.0, 5100.0
    fb = linear_filterbank(SR, N_FFT, n_bands, fmin=fmin, fmax=fmax, norm=norm).double().numpy()
    assert fb.shape == (n_bands, N_FFT // 2 + 1)
    step = (fmax - fmin) / (n_bands + 1)  # edges every 500 Hz
    freqs = np.arange(N_FFT // 2 + 1) * SR / N_FFT
    for band in range(n_bands):
        left, centre, right = fmin + band * step, fmin + (band + 1) * step, fmin + (band + 2) * step
        # Closed form of one triangle, written independently, point by point.
        expected = np.array([
            (f - left) / step if left <= f <= centre else (right - f) / step if centre < f <= right else 0.0
            for f in freqs
        ])
        if norm == "slaney":
            expected *= 2.0 / (right - left)
        np.testing.assert_allclose(fb[band], expected, atol=1e-7)
    # Slaney: every band integrates to the same energy (area 1 per Hz of half-width).
    if norm == "slaney":
        areas = fb.sum(axis=1) * SR / N_FFT
        np.testing.assert_allclose(areas, areas.mean(), rtol=1e-2)


def test_linear_scale_differs_from_mel_only_in_band_placement():
    lin = LogMelSpectrogram(SR, N_FFT, 16, scale="linear")
    mel = LogMelSpectrogram(SR, N_FFT, 16)
    centres_lin = lin.mel.fb.argmax(dim=1).numpy()
    centres_mel = mel.mel.fb.argmax(dim=1).numpy()
    # Linear: equal spacing between band peaks; mel: spacing grows with frequency.
    assert np.ptp(np.diff(centres_lin)) <= 1
    assert np.diff(centres_mel)[-1] > 3 * np.diff(centres_mel)[0]
    with pytest.raises(ValueError, match="scale"):
        LogMelSpectrogram(SR, N_FFT, 16, scale="bark")
