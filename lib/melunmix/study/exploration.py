"""What notebooks 01 and 02 show of the data and the features: the dataset table, excerpts, feature timings."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..base.config import Settings
from ..base.names import STEMS
from .run_setup import Run, tracks


def _rms_db(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-10))


def dataset_table(run: Run, active_threshold_db: float = -50.0) -> pd.DataFrame:
    """One row per track: subset, split, duration (s), stem loudness (RMS dBFS), vocal activity.

    A stem the song does not hold (drums, bass and other of a song of mixture + vocals) is NaN.

    ``vocals_active`` is the fraction of 1 s windows whose vocals RMS exceeds
    ``active_threshold_db`` dBFS: museval scores silent windows as NaN, so this tells how
    much of a track the vocal scores describe.
    """
    import soundfile as sf

    rows = []
    for subset in ("train", "test"):
        for track in tracks(run, subset):
            row = {"track": track.name, "subset": subset, "split": track.split or "test",
                   "duration_s": round(track.nb_samples / track.rate, 2)}
            for stem in STEMS:
                if stem not in track.stems:  # a song of mixture + vocals has no drums, bass or other
                    row[f"{stem}_db"] = np.nan
                    continue
                audio, rate = sf.read(track.stems[stem], dtype="float32", always_2d=True)
                row[f"{stem}_db"] = round(_rms_db(audio), 2)
                if stem == "vocals":
                    win = int(rate)
                    nb_windows = max(1, len(audio) // win)
                    windows = audio[: nb_windows * win].reshape(nb_windows, win, -1)
                    active = [_rms_db(w) > active_threshold_db for w in windows]
                    row["vocals_active"] = round(float(np.mean(active)), 3)
            rows.append(row)
    return pd.DataFrame(rows)


def load_excerpt(track, start: float = 0.0, duration: float | None = 10.0,
                 stems=("mixture", "vocals")) -> dict[str, np.ndarray]:
    """Stems of a WAV-backed track as ``(nb_channels, nb_samples)`` float32 arrays.

    Parameters
    ----------
    start, duration : float
        Seconds; ``duration=None`` reads to the end.
    """
    from ..datasets import read_chunk  # the data layer (torch) only when a notebook step reads data

    first = int(round(start * track.rate))
    nb = track.nb_samples - first if duration is None else min(int(round(duration * track.rate)), track.nb_samples - first)
    if first < 0 or nb <= 0:
        raise ValueError(f"excerpt start={start} s, duration={duration} s is outside track {track.name!r} "
                         f"({track.nb_samples / track.rate:.1f} s)")
    return {stem: read_chunk(track.stems[stem], first, nb) for stem in stems}


def feature_transforms(settings: Settings) -> dict:
    """The torch modules of the three representations the poster compares, at the profile's STFT."""
    from ..dsp.features import MFCC, STFT, LogMelSpectrogram  # torch only for notebook 02's features

    sr, n_fft = settings.data.sample_rate, settings.stft.n_fft
    return {
        "stft": STFT(n_fft, settings.stft.n_hop),
        "mel": LogMelSpectrogram(sr, n_fft, n_mels=settings.model.n_mels),
        "mfcc": MFCC(sr, n_fft, n_mfcc=settings.model.n_mfcc, n_mels=settings.model.n_mels),
    }


def feature_table(audio: np.ndarray, settings: Settings, repeats: int = 5) -> pd.DataFrame:
    """Shape of each representation of ``audio`` (channels, samples) and its cost.

    Returns a table with the feature, its output shape (channels, bands, frames) and the
    median time in ms per second of audio over ``repeats`` runs (CPU, one excerpt).
    """
    import torch

    from ..dsp.features import magnitude  # torch only for notebook 02's features

    modules = feature_transforms(settings)
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))[None]
    seconds = x.shape[-1] / settings.data.sample_rate
    rows = []
    with torch.no_grad():
        for name, fn in (("stft", lambda: magnitude(modules["stft"](x))),
                         ("mel", lambda: modules["mel"](magnitude(modules["stft"](x)))),
                         ("mfcc", lambda: modules["mfcc"](magnitude(modules["stft"](x))))):
            out = fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            rows.append({"feature": name, "shape": tuple(out.shape[1:]), "bands": out.shape[-2],
                         "frames": out.shape[-1], "ms_per_s": 1000 * float(np.median(times)) / seconds})
    return pd.DataFrame(rows)
