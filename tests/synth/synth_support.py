"""The generated dataset's arguments and readers shared by the synth tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.linalg
import scipy.signal
import soundfile as sf


SR = 44100


DURATION = 6.0


PARAMS = dict(nb_train=2, nb_valid=1, nb_test=1, duration=DURATION, seed=3)


SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def read_stem(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)[0]
            for name in ("mixture", "vocals", "drums", "bass", "other")}


def unpredictable_db(left: np.ndarray, right: np.ndarray, nb_taps: int = 512) -> float:
    """Energy of ``right`` left over by the best ``nb_taps``-tap FIR filter of ``left``, in dB
    of ``right``'s energy: BSS Eval v4 (museval) allows 512-tap distortion filters, so a
    channel this predicts (very negative dB) is linearly dependent on the other for it."""
    left, right = left.astype(np.float64), right.astype(np.float64)
    nb_fft = scipy.fft.next_fast_len(2 * len(left))
    spectrum = np.fft.rfft(left, nb_fft)
    auto = np.fft.irfft(np.abs(spectrum) ** 2, nb_fft)[:nb_taps]
    cross = np.fft.irfft(np.conj(spectrum) * np.fft.rfft(right, nb_fft), nb_fft)[:nb_taps]
    # Normal equations of right[n] ~ sum_k h[k] left[n - k] (Toeplitz: Levinson, no BLAS);
    # the tiny ridge keeps them defined in the bands the soundfont leaves empty and moves
    # the least residual by at most 1e-9 of left's energy times |h|^2.
    auto[0] *= 1 + 1e-9
    taps = scipy.linalg.solve_toeplitz(auto, cross)
    mismatch = scipy.linalg.matmul_toeplitz(auto, taps) - cross
    assert np.linalg.norm(mismatch) <= 1e-6 * np.linalg.norm(cross)  # solved: the residual below is the least
    residual = right - scipy.signal.fftconvolve(left, taps)[:len(left)]
    return float(10 * np.log10(np.sum(residual**2) / np.sum(right**2)))


def ratio_mask_oracle(sources: list[np.ndarray], mixture: np.ndarray, nb_fft: int = 4096, nb_hop: int = 1024):
    """Oracle estimates (IRM1 of SiSEC 2018): the mixture's STFT weighted by |S_j| / sum_k |S_k|.

    ``sources`` and ``mixture`` have shape (nb_samples, nb_channels); returns one estimate
    of that shape per source.
    """
    def stft(x):
        return scipy.signal.stft(x.T.astype(np.float64), nperseg=nb_fft, noverlap=nb_fft - nb_hop)[2]

    magnitudes = [np.abs(stft(s)) for s in sources]
    total = np.maximum(sum(magnitudes), 1e-12)
    spectrum = stft(mixture)
    return [scipy.signal.istft(m / total * spectrum, nperseg=nb_fft, noverlap=nb_fft - nb_hop)[1].T[:len(mixture)]
            for m in magnitudes]
