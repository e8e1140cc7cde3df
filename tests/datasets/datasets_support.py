"""Small roots of noise, ramps and constants shared by the datasets tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from melunmix.base import names


STEMS = names.SOURCES  # a test track's source files


RATE = 8000  # small files; the loader does not care about the rate


def write_track(root, subset, name, stems, rate=RATE, subtype="FLOAT", mixture=None):
    """Write one MUSDB18-HQ track folder; ``stems`` maps source -> (nb_samples, 2) array."""
    folder = Path(root) / subset / name
    folder.mkdir(parents=True, exist_ok=True)
    for source, audio in stems.items():
        sf.write(folder / f"{source}.wav", audio, rate, subtype=subtype)
    if mixture is None:
        mixture = sum(stems[s] for s in STEMS)
    sf.write(folder / "mixture.wav", mixture, rate, subtype=subtype)
    return folder


def write_setup(root, validation):
    """A musdb setup file (musdb's own MUSDB18 setup with another validation list)."""
    import musdb

    with open(Path(musdb.__path__[0]) / "configs" / "mus.yaml") as fh:
        setup = yaml.safe_load(fh)
    setup["validation_tracks"] = list(validation)
    with open(Path(root) / "setup.yaml", "w") as fh:
        yaml.safe_dump(setup, fh)


def noise_stems(rng, nb_samples, scale=0.1):
    return {s: (scale * rng.standard_normal((nb_samples, 2))).astype(np.float32) for s in STEMS}


def dc_stems(track_index, nb_samples):
    """Constant stems: source k of track t has left 0.1*(k+1) + t and right twice the left.

    Left and right differ, so a swap is visible; track index is the integer part.
    """
    stems = {}
    for k, source in enumerate(STEMS):
        left = 0.1 * (k + 1) + track_index
        stems[source] = np.tile(np.float32([left, 2 * left]), (nb_samples, 1))
    return stems


def mono_magnitude(audio, n_fft, n_hop, center=False):
    """Reference in plain numpy: frames uncentred (Open-Unmix's statistics) or centred
    (reflect padding), periodic Hann window, rFFT magnitude per channel, then the mean over
    channels. Shape (nb_bins, nb_frames)."""
    if center:
        padded = np.pad(audio.T.astype(np.float64), ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
        nb_frames = 1 + audio.shape[0] // n_hop
    else:
        padded = audio.T.astype(np.float64)
        nb_frames = 1 + (audio.shape[0] - n_fft) // n_hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[:, t * n_hop : t * n_hop + n_fft] * window for t in range(nb_frames)], axis=-1)
    return np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0)
