"""What every figure shares: each method's colour, the resolution, new figures and their files, spectrogram images.

Methods keep one colour in every figure (:data:`METHOD_COLORS`): the baseline
``"openunmix"`` blue, the proposed ``"melunmix"`` red, its MFCC variant orange, the
linear-branch control teal, each model's half-training checkpoint (``<model>-half``) a
lighter shade of its colour, the oracles and the mixture in greens, purples, browns and
grey: each model's and oracle's own (:mod:`melunmix.base.names`). :func:`method_color`
accepts any method name, including ``"baseline"``/``"proposed"`` and per-seed names such
as ``"openunmix/seed42"`` or ``"melunmix-half-seed1"``.

The figures (:mod:`.training_figures`, :mod:`.audio_figures`, :mod:`.score_figures`,
:mod:`.tuning_figures`) take data that a previous step saved (DataFrames, arrays of audio,
or the path of a CSV file), return the :class:`matplotlib.figure.Figure` and, when ``path``
is given, also write it as a PNG (atomically, so a killed run never leaves half an image).
Nothing there trains, separates or scores. Figures are created through pyplot with whatever
backend is active, so in a notebook (inline backend) ``fig = score_figures.metric_boxplots(...)``
shows the figure once at the end of the cell. Scripts that draw many figures should
``plt.close(fig)`` after saving. No backend is forced here; tests select Agg themselves.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..base.files import atomic_path
from ..base.names import HALF_SUFFIX, MODELS, ORACLES, canonical_method


#: Resolution of saved PNGs (dots per inch).
DEFAULT_DPI = 120


def _lighter(color: str, amount: float = 0.5) -> str:
    """``color`` mixed with white (``amount`` 0: unchanged, 1: white), as a hex string."""
    rgb = np.asarray(mpl.colors.to_rgb(color))
    return mpl.colors.to_hex(rgb + (1.0 - rgb) * amount)


#: One colour per method across all figures (every name of ``names.METHOD_ORDER``): each
#: model's and oracle's own (:mod:`melunmix.base.names`), a lighter one for half training.
METHOD_COLORS = {
    **{name: color for model, style in MODELS.items()
       for name, color in ((model, style.color), (model + HALF_SUFFIX, _lighter(style.color)))},
    **{name: style.color for name, style in ORACLES.items()},
}


#: Colours of fallback methods (not in METHOD_COLORS), picked by a stable hash of the name.
_FALLBACK_COLORS = ("#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd")


STEM_COLORS = {"vocals": "#d62728", "drums": "#ff7f0e", "bass": "#1f77b4", "other": "#2ca02c",
               "accompaniment": "#7f7f7f", "mixture": "#000000"}


#: Dynamic range of spectrogram images (dB below the maximum).
TOP_DB = 80.0


def method_color(name: str) -> str:
    """Colour (hex string) of a method, the same in every figure.

    Parameters
    ----------
    name : str
        A model (``"openunmix"``, ``"melunmix"``, ``"mfccunmix"``, ``"linunmix"``), its
        half-training checkpoint (``"melunmix-half"``), an oracle (``"IRM1"``, ``"IRM2"``,
        ``"IBM"``, ``"MWF"``, ``"MIX"``), an alias (``"baseline"``, ``"proposed"``) or a
        per-seed name (``"melunmix-seed1"``, ``"melunmix/seed1"``). Other names get a
        colour from a stable hash, so they also keep their colour across figures and runs.
    """
    known = canonical_method(name)
    if known is not None:
        return METHOD_COLORS[known]
    return _FALLBACK_COLORS[zlib.crc32(str(name).encode()) % len(_FALLBACK_COLORS)]


def new_figure(nrows=1, ncols=1, figsize=(6.4, 4.8), **kwargs):
    """A constrained-layout pyplot figure and its axes as a 2-D array.

    pyplot (imported only here) attaches the active backend's canvas, so notebooks show
    the figure at the end of the cell and scripts can save it with any backend.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained",
                             squeeze=False, **kwargs)
    return fig, axes


def save_figure(fig, path: str | os.PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``fig`` to ``path`` atomically; the format follows the suffix (PNG if none).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
        Destination, e.g. ``results/demo/figures/loss_curves.png``; folders are created.
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    Path
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    return path


def finish(fig, path, dpi):
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


def read_table(obj, what: str) -> pd.DataFrame:
    """A DataFrame as given, or read from a CSV path (``what`` names it in errors)."""
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise FileNotFoundError(f"{what}: {path} does not exist; run the step that writes it first")
        if path.suffix.lower() != ".csv":
            raise ValueError(f"{what}: expected a DataFrame or a .csv file, got {path}")
        return pd.read_csv(path)
    raise ValueError(f"{what}: expected a pandas DataFrame or the path of a CSV file, "
                     f"got {type(obj).__name__}")


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; it has {list(map(str, df.columns))}"
            + (f". {hint}" if hint else "")
        )


def as_audio(audio, what: str = "audio") -> np.ndarray:
    """Audio as a float ``(nb_channels, nb_samples)`` array; mono ``(nb_samples,)`` accepted."""
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio)
    if audio.dtype.kind not in "fiu":
        raise ValueError(f"{what}: expected real audio samples, got dtype {audio.dtype}")
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2:
        raise ValueError(f"{what}: expected shape (nb_channels, nb_samples) or (nb_samples,), "
                         f"got {audio.shape}")
    if audio.shape[0] > audio.shape[1]:
        raise ValueError(f"{what}: shape {audio.shape} looks like (nb_samples, nb_channels); "
                         "pass audio.T, channels first")
    if audio.shape[1] == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{what} contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def check_rate(sample_rate) -> float:
    if not isinstance(sample_rate, (int, float, np.integer, np.floating)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    return float(sample_rate)


def power_spectrogram(audio: np.ndarray, n_fft: int, n_hop: int) -> np.ndarray:
    """Channel-averaged power spectrogram ``(nb_bins, nb_frames)`` via :class:`features.STFT`."""
    import torch

    from ..dsp.features import STFT, magnitude  # torch only for the figures that compute features

    stft = STFT(n_fft=n_fft, n_hop=n_hop, center=True, pad_mode="constant")
    X = stft(torch.from_numpy(np.ascontiguousarray(audio)))  # (channels, bins, frames)
    # averaging powers, not complex values, so out-of-phase channels do not cancel
    return magnitude(X, power=2.0).mean(dim=0).numpy()


def to_db(power: np.ndarray, ref: float) -> np.ndarray:
    """dB relative to ``ref`` (power), clipped ``TOP_DB`` below it, via :func:`features.power_to_db`."""
    import torch

    from ..dsp.features import power_to_db  # torch only for the figures that compute features

    db = power_to_db(torch.from_numpy(power), ref=max(float(ref), 1e-20), top_db=None)
    return np.maximum(db.numpy(), -TOP_DB)


def spectrogram_image(ax, db, duration, sample_rate, max_freq=None, cmap="magma", vmin=None,
                       vmax=None):
    nyquist = sample_rate / 2.0
    im = ax.imshow(db, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                   extent=(0.0, duration, 0.0, nyquist / 1000.0), interpolation="nearest")
    ax.set_ylim(0.0, (max_freq if max_freq else nyquist) / 1000.0)
    ax.set_ylabel("Frequency (kHz)")
    return im


def plot_waveform(ax, audio, sample_rate):
    time = np.arange(audio.shape[1]) / sample_rate
    names = ["left", "right"] if audio.shape[0] == 2 else [f"channel {i}" for i in range(audio.shape[0])]
    for channel, name in zip(audio, names):
        ax.plot(time, channel, linewidth=0.5, alpha=0.7, label=name if audio.shape[0] > 1 else None)
    ax.set_xlim(0.0, audio.shape[1] / sample_rate)
    ax.set_ylabel("Amplitude (full scale)")
    if audio.shape[0] > 1:
        ax.legend(loc="upper right", fontsize="small")
