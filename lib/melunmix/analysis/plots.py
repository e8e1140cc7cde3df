"""Every figure of the study, drawn from saved results only.

Each function takes data that a previous step saved (DataFrames, arrays of audio, or the
path of a CSV file), returns the :class:`matplotlib.figure.Figure` and, when ``path`` is
given, also writes it as a PNG (atomically, so a killed run never leaves half an image).
Nothing here trains, separates or scores.

Methods keep one colour in every figure (:data:`METHOD_COLORS`): the baseline
``"openunmix"`` blue, the proposed ``"melunmix"`` red, its MFCC variant orange, the
linear-branch control teal, each model's half-training checkpoint (``<model>-half``) a
lighter shade of its colour, the oracles and the mixture in greens, purples, browns and
grey: each model's and oracle's own (:mod:`melunmix.base.names`, where the method names, their
order and display names live: ``METHOD_ORDER``, ``METHOD_LABELS``, ``order_methods``,
``method_label``). :func:`method_color` and ``names.method_label`` accept any method name,
including ``"baseline"``/``"proposed"`` and per-seed names such as ``"openunmix/seed42"``
or ``"melunmix-half-seed1"``.

Figures are created through pyplot with whatever backend is active, so in a notebook
(inline backend) ``fig = plots.loss_curves(...)`` shows the figure once at the end of the
cell, as any pyplot figure (leaving the call as the cell's last expression would show it a
second time, as its value). Scripts that draw many figures should ``plt.close(fig)`` after
saving. No backend is forced here; tests select Agg themselves.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..base.files import atomic_path
from ..base.names import (HALF_SUFFIX, HISTORY_CSV_NAME, METRICS, MODELS, ORACLES, SOURCES, canonical_method,
                          method_label, order_methods, split_seed)
from .stats import mark_residue

__all__ = [
    "plot_tuning_curves",
    "plot_transfer",
    "METHOD_COLORS",
    "STEM_COLORS",
    "DEFAULT_DPI",
    "method_color",
    "save_figure",
    "loss_curves",
    "feature_panel",
    "waveform_and_spectrogram",
    "spectrogram_comparison",
    "metric_table_figure",
    "metric_boxplots",
    "search_space_plot",
    "stem_loudness_plot",
    "paired_differences_figure",
    "training_length_figure",
    "loudest_window",
    "vocal_spectrogram",
    "scaler_statistics_figure",
]

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
_TOP_DB = 80.0


# --------------------------------------------------------------------------- methods
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


# --------------------------------------------------------------------------- helpers
def _new_figure(nrows=1, ncols=1, figsize=(6.4, 4.8), **kwargs):
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


def _finish(fig, path, dpi):
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


def _read_table(obj, what: str) -> pd.DataFrame:
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


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; it has {list(map(str, df.columns))}"
            + (f". {hint}" if hint else "")
        )


def _as_audio(audio, what: str = "audio") -> np.ndarray:
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


def _check_rate(sample_rate) -> float:
    if not isinstance(sample_rate, (int, float, np.integer, np.floating)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    return float(sample_rate)


def _power_spectrogram(audio: np.ndarray, n_fft: int, n_hop: int) -> np.ndarray:
    """Channel-averaged power spectrogram ``(nb_bins, nb_frames)`` via :class:`features.STFT`."""
    import torch

    from ..dsp.features import STFT, magnitude  # torch only for the figures that compute features

    stft = STFT(n_fft=n_fft, n_hop=n_hop, center=True, pad_mode="constant")
    X = stft(torch.from_numpy(np.ascontiguousarray(audio)))  # (channels, bins, frames)
    # averaging powers, not complex values, so out-of-phase channels do not cancel
    return magnitude(X, power=2.0).mean(dim=0).numpy()


def _to_db(power: np.ndarray, ref: float) -> np.ndarray:
    """dB relative to ``ref`` (power), clipped ``_TOP_DB`` below it, via :func:`features.power_to_db`."""
    import torch

    from ..dsp.features import power_to_db  # torch only for the figures that compute features

    db = power_to_db(torch.from_numpy(power), ref=max(float(ref), 1e-20), top_db=None)
    return np.maximum(db.numpy(), -_TOP_DB)


def _spectrogram_image(ax, db, duration, sample_rate, max_freq=None, cmap="magma", vmin=None,
                       vmax=None):
    nyquist = sample_rate / 2.0
    im = ax.imshow(db, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                   extent=(0.0, duration, 0.0, nyquist / 1000.0), interpolation="nearest")
    ax.set_ylim(0.0, (max_freq if max_freq else nyquist) / 1000.0)
    ax.set_ylabel("Frequency (kHz)")
    return im


def _plot_waveform(ax, audio, sample_rate):
    time = np.arange(audio.shape[1]) / sample_rate
    names = ["left", "right"] if audio.shape[0] == 2 else [f"channel {i}" for i in range(audio.shape[0])]
    for channel, name in zip(audio, names):
        ax.plot(time, channel, linewidth=0.5, alpha=0.7, label=name if audio.shape[0] > 1 else None)
    ax.set_xlim(0.0, audio.shape[1] / sample_rate)
    ax.set_ylabel("Amplitude (full scale)")
    if audio.shape[0] > 1:
        ax.legend(loc="upper right", fontsize="small")


# --------------------------------------------------------------------------- training
def loss_curves(histories: Mapping[str, pd.DataFrame], path=None, log_y: bool = False,
                title: str = "Training and validation loss", dpi: int = DEFAULT_DPI):
    """Train (solid) and validation (dashed) MSE per epoch of several models, one figure.

    Parameters
    ----------
    histories : dict of str -> DataFrame or path
        Model name -> its training history (``models/<name>/history.csv`` or the
        DataFrame), with columns ``epoch``, ``train_loss``, ``valid_loss`` (others are
        ignored). Each model gets its method colour; its best validation epoch is marked.
    path : path-like, optional
        Where to save the PNG.
    log_y : bool
        Logarithmic loss axis (useful when the first epochs dwarf the rest).
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes with ``2 * len(histories)`` lines; a second axes beside it with the
        validation vocals SDR (dB) per epoch when a history has a ``valid_sdr`` column
        (``train.valid_sdr_every``).
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict of model name -> history DataFrame")
    frames = {}
    for name, history in histories.items():
        df = _read_table(history, f"history of {name!r}")
        _require_columns(df, ["epoch", "train_loss", "valid_loss"], f"history of {name!r}",
                         "melunmix.training.train writes these to models/<name>/history.csv")
        if df.empty:
            raise ValueError(f"history of {name!r} has no epochs")
        frames[name] = df.sort_values("epoch")

    with_sdr = {name: df for name, df in frames.items()
                if "valid_sdr" in df.columns and df["valid_sdr"].notna().any()}
    fig, axes = _new_figure(ncols=2 if with_sdr else 1, figsize=(13.0 if with_sdr else 7.5, 4.5))
    if with_sdr:
        sdr_ax = axes[0, 1]
        for name in order_methods(with_sdr):
            df = with_sdr[name].dropna(subset=["valid_sdr"])
            sdr_ax.plot(df["epoch"].to_numpy(dtype=float), df["valid_sdr"].to_numpy(dtype=float),
                        color=method_color(name), marker="o", markersize=4, label=method_label(name))
        sdr_ax.set_xlabel("Epoch")
        sdr_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        sdr_ax.set_ylabel("median vocals SDR (dB), validation songs")
        sdr_ax.set_title("Validation SDR (BSS Eval v4)")
        sdr_ax.grid(True, alpha=0.3)
        sdr_ax.legend(fontsize="small")
    ax = axes[0, 0]
    for name in order_methods(frames):
        df, color, label = frames[name], method_color(name), method_label(name)
        epoch = df["epoch"].to_numpy(dtype=float)
        valid = df["valid_loss"].to_numpy(dtype=float)
        ax.plot(epoch, df["train_loss"].to_numpy(dtype=float), color=color, linestyle="-",
                marker="o", markersize=3, label=f"{label}, train")
        ax.plot(epoch, valid, color=color, linestyle="--", marker="s", markersize=3,
                label=f"{label}, validation")
        if np.isfinite(valid).any():
            best = int(np.nanargmin(valid))
            ax.scatter([epoch[best]], [valid[best]], s=90, facecolors="none", edgecolors=color,
                       linewidths=1.5, zorder=3)
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("MSE loss (magnitude spectrogram)")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title + ("\n(circles: best validation epoch)" if frames else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path, dpi)


def learning_curves(histories: Mapping[str, pd.DataFrame], path=None, half_step: float | None = None,
                    dpi: int = DEFAULT_DPI):
    """Validation loss and validation vocals SDR against optimiser steps, one colour per
    model: each seed a thin line, the median over a model's seeds a thick one.

    Parameters
    ----------
    histories : dict of str -> DataFrame or path
        Method (``openunmix-seed1``, ...; seeds of a model share its colour) -> history
        with ``epoch`` and ``valid_loss``, and optionally ``step`` (optimiser steps at
        the epoch's end; :func:`melunmix.study.steps.load_histories` adds it; else epochs are
        shown) and ``valid_sdr``.
    path : path-like, optional
        Where to save the PNG.
    half_step : float, optional
        Where the half-training comparison is taken (a dotted vertical line).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Axes 0: validation loss (log scale); axes 1 (when a history has ``valid_sdr``):
        validation SDR. A circle marks each run's best validation loss; the median line
        runs as long as every seed of the model still trains.
    """

    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict of method name -> history DataFrame")
    by_model: dict[str, dict[str, pd.DataFrame]] = {}
    for name, history in histories.items():
        df = _read_table(history, f"history of {name!r}")
        _require_columns(df, ["epoch", "valid_loss"], f"history of {name!r}",
                         "melunmix.training.train writes these to models/<name>/history.csv")
        by_model.setdefault(split_seed(name)[0], {})[name] = df.sort_values("epoch")
    x_name = "step" if all("step" in df.columns for runs in by_model.values() for df in runs.values()) else "epoch"
    with_sdr = any("valid_sdr" in df.columns and df["valid_sdr"].notna().any()
                   for runs in by_model.values() for df in runs.values())
    columns = [("valid_loss", "validation loss (MSE, log scale)")]
    if with_sdr:
        columns.append(("valid_sdr", "median vocals SDR (dB), validation songs"))
    fig, axes = _new_figure(ncols=len(columns), figsize=(6.0 * len(columns), 4.6))
    for (column, ylabel), ax in zip(columns, axes[0]):
        for model in order_methods(by_model):
            runs, color = by_model[model], method_color(model)
            curves = []
            for df in runs.values():
                rows = df.dropna(subset=[column]) if column in df.columns else df.iloc[:0]
                if rows.empty:
                    continue
                x, y = rows[x_name].to_numpy(dtype=float), rows[column].to_numpy(dtype=float)
                ax.plot(x, y, color=color, linewidth=0.8, alpha=0.35)
                if column == "valid_loss" and np.isfinite(y).any():
                    best = int(np.nanargmin(y))
                    ax.scatter([x[best]], [y[best]], s=22, facecolors="none", edgecolors=color, linewidths=1.0,
                               alpha=0.8, zorder=3)
                curves.append(pd.Series(y, index=x))
            if not curves:
                continue
            joined = pd.concat(curves, axis=1).sort_index().dropna()  # steps every seed reached
            label = f"{method_label(model)} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
            ax.plot(joined.index.to_numpy(dtype=float), joined.median(axis=1).to_numpy(dtype=float), color=color,
                    linewidth=2.2, label=label)
        if half_step is not None:
            ax.axvline(half_step, color="0.4", linestyle=":", linewidth=1.0)
        if column == "valid_loss":
            ax.set_yscale("log")
        ax.set_xlabel("optimiser steps" if x_name == "step" else "epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_title("Validation loss (circles: each run's best)")
    if with_sdr:
        axes[0, 1].set_title("Validation vocals SDR (BSS Eval v4)")
    axes[0, -1].legend(fontsize="small", loc="lower right" if with_sdr else "upper right")
    fig.suptitle("Thin: one seed; thick: median over seeds"
                 + ("; dotted: the half-training comparison" if half_step is not None else ""), fontsize="medium")
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- audio
def feature_panel(audio, sample_rate: float, n_fft: int, n_hop: int, n_mels: int, n_mfcc: int,
                  path=None, title: str | None = None, dpi: int = DEFAULT_DPI):
    """The poster's feature-extraction figure: waveform, STFT, mel spectrogram and MFCC.

    All four panels show the same excerpt, computed with :mod:`melunmix.dsp.features` (the
    transforms the models use): the linear STFT magnitude and the power mel spectrogram
    in dB relative to their maximum (80 dB range), and ``n_mfcc`` MFCCs of an
    ``n_mels``-band log-mel spectrogram. Stereo input is shown per channel in the
    waveform and averaged in power for the spectral panels.

    Parameters
    ----------
    audio : array, shape (nb_channels, nb_samples) or (nb_samples,)
        The excerpt (a few seconds), float samples in full scale.
    sample_rate : float
        Hz.
    n_fft, n_hop : int
        STFT frame length and hop in samples.
    n_mels : int
        Mel bands.
    n_mfcc : int
        Cepstral coefficients (at most ``n_mels``).
    path : path-like, optional
        Where to save the PNG.
    title : str, optional
        Figure title.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Four panels in a 2 x 2 grid plus three colour bars (7 axes).
    """
    import librosa
    import torch

    from ..dsp.features import MFCC, MelSpectrogram  # torch only for the figures that compute features

    sample_rate = _check_rate(sample_rate)
    audio = _as_audio(audio)
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
    power = _power_spectrogram(audio, n_fft, n_hop)  # (bins, frames)
    magnitude = torch.from_numpy(np.sqrt(power))
    mel_power = MelSpectrogram(sample_rate, n_fft, n_mels=n_mels, power=2.0)(magnitude).numpy()
    mfcc = MFCC(sample_rate, n_fft, n_mfcc=n_mfcc, n_mels=n_mels)(magnitude).numpy()
    duration = audio.shape[1] / sample_rate

    # a 2 x 2 grid: readable at page width (one row of four was 4.4:1)
    fig, axes = _new_figure(2, 2, figsize=(11.0, 6.6))
    (ax_wave, ax_stft), (ax_mel, ax_mfcc) = axes
    _plot_waveform(ax_wave, audio, sample_rate)
    ax_wave.set_title("Waveform")

    im = _spectrogram_image(ax_stft, _to_db(power, power.max()), duration, sample_rate)
    ax_stft.set_title(f"STFT magnitude (n_fft {n_fft}, hop {n_hop})")
    fig.colorbar(im, ax=ax_stft, label="dB (re max)")

    im = ax_mel.imshow(_to_db(mel_power, mel_power.max()), origin="lower", aspect="auto",
                       cmap="magma", extent=(0.0, duration, 0.0, n_mels), interpolation="nearest")
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    ticks = np.unique(np.linspace(0, n_mels - 1, min(n_mels, 6)).round().astype(int))
    ax_mel.set_yticks(ticks + 0.5)
    ax_mel.set_yticklabels([f"{centres[t]:.0f}" for t in ticks])
    ax_mel.set_ylabel("Band centre (Hz, mel scale)")
    ax_mel.set_title(f"Mel spectrogram ({n_mels} bands)")
    fig.colorbar(im, ax=ax_mel, label="dB (re max)")

    # c0 (overall level) and c1 (spectral tilt) dwarf the rest: a robust colour range
    # (95th percentile of |c1..|, clipped values marked on the colour bar) keeps the
    # spectral-shape coefficients visible
    shape = mfcc[1:] if n_mfcc > 1 else mfcc
    limit = max(float(np.percentile(np.abs(shape), 95)), 1e-6)
    im = ax_mfcc.imshow(mfcc, origin="lower", aspect="auto", cmap="coolwarm",
                        vmin=-limit, vmax=limit, extent=(0.0, duration, -0.5, n_mfcc - 0.5),
                        interpolation="nearest")
    ax_mfcc.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_mfcc.set_ylabel("MFCC index")
    ax_mfcc.set_title(f"MFCC ({n_mfcc} coefficients)")
    fig.colorbar(im, ax=ax_mfcc, label="Coefficient (dB units)", extend="both")
    for ax in (ax_mel, ax_mfcc):
        ax.set_xlabel("Time (s)")
    if title:
        fig.suptitle(title)
    return _finish(fig, path, dpi)


def waveform_and_spectrogram(audio, sample_rate: float, title: str, n_fft: int = 2048,
                             n_hop: int = 512, path=None, max_freq: float | None = None,
                             dpi: int = DEFAULT_DPI):
    """Waveform above its spectrogram (dB), on one time axis.

    Parameters
    ----------
    audio : array, shape (nb_channels, nb_samples) or (nb_samples,)
    sample_rate : float
        Hz.
    title : str
        E.g. the track name and stem.
    n_fft, n_hop : int
        STFT frame length and hop in samples.
    path : path-like, optional
        Where to save the PNG.
    max_freq : float, optional
        Highest frequency shown in Hz (default: Nyquist).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Two panels and a colour bar (3 axes).
    """
    sample_rate = _check_rate(sample_rate)
    audio = _as_audio(audio)
    power = _power_spectrogram(audio, n_fft, n_hop)
    duration = audio.shape[1] / sample_rate
    fig, axes = _new_figure(2, 1, figsize=(10.0, 6.0), sharex=True,
                            gridspec_kw={"height_ratios": [1, 2]})
    ax_wave, ax_spec = axes[:, 0]
    _plot_waveform(ax_wave, audio, sample_rate)
    im = _spectrogram_image(ax_spec, _to_db(power, power.max()), duration, sample_rate, max_freq)
    ax_spec.set_xlabel("Time (s)")
    ax_spec.set_xlim(0.0, duration)
    ax_spec.set_title(f"Spectrogram (n_fft {n_fft}, hop {n_hop})", fontsize="medium")
    # one colour bar beside both panels keeps their time axes aligned
    fig.colorbar(im, ax=[ax_wave, ax_spec], label="dB (re max)")
    fig.suptitle(title)
    return _finish(fig, path, dpi)


def spectrogram_comparison(panels: Mapping[str, np.ndarray], sample_rate: float, n_fft: int,
                           n_hop: int, path=None, max_freq: float | None = None,
                           title: str | None = None, dpi: int = DEFAULT_DPI):
    """Spectrograms of several signals on the same time, frequency and colour scales.

    For example mixture / true vocals / estimated vocals (baseline) / estimated vocals
    (proposed). All panels share one dB reference, the loudest bin over all of them,
    so that a quieter estimate looks quieter.

    Parameters
    ----------
    panels : dict of str -> array, shape (nb_channels, nb_samples) or (nb_samples,)
        Title -> audio, in display order (top to bottom; more than three panels fill two
        columns row by row); all of the same length.
    sample_rate : float
        Hz.
    n_fft, n_hop : int
        STFT frame length and hop in samples.
    path : path-like, optional
        Where to save the PNG.
    max_freq : float, optional
        Highest frequency shown in Hz (default: Nyquist).
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel and a shared colour bar (``len(panels) + 1`` axes).
    """
    sample_rate = _check_rate(sample_rate)
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty dict of title -> audio (nb_channels, nb_samples)")
    signals = {name: _as_audio(audio, f"panel {name!r}") for name, audio in panels.items()}
    lengths = {name: audio.shape[1] for name, audio in signals.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"panels have different lengths (samples): {lengths}; crop them to the "
                         "same excerpt so the time axes agree")
    powers = {name: _power_spectrogram(audio, n_fft, n_hop) for name, audio in signals.items()}
    ref = max(float(p.max()) for p in powers.values())
    duration = next(iter(lengths.values())) / sample_rate

    # Up to three panels one above the other; more fill two columns row by row, so six
    # signals make a 3 x 2 grid instead of a tower.
    ncols = 1 if len(powers) <= 3 else 2
    nrows = int(np.ceil(len(powers) / ncols))
    fig, axes = _new_figure(nrows, ncols, figsize=(10.0 if ncols == 1 else 12.0, 2.3 * nrows + 0.8),
                            sharex=True, sharey=True)
    used = list(axes.ravel()[:len(powers)])
    for ax in axes.ravel()[len(powers):]:
        fig.delaxes(ax)
    for ax, (name, power) in zip(used, powers.items()):
        im = _spectrogram_image(ax, _to_db(power, ref), duration, sample_rate, max_freq,
                                vmin=-_TOP_DB, vmax=0.0)
        ax.set_title(name)
    for ax in used[-ncols:]:  # the bottom panel of each column (with an odd count, one row up on the right)
        ax.set_xlabel("Time (s)")
        ax.xaxis.set_tick_params(labelbottom=True)
    used[-1].set_xlim(0.0, duration)
    fig.colorbar(im, ax=used, label="dB (re loudest bin of all panels)")
    if title:
        fig.suptitle(title)
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- evaluation
_LONG_TABLE = ["method", "target", "metric", "score"]


def _wide_metric_table(table) -> pd.DataFrame:
    """Poster table as index = method, columns = MultiIndex (target, metric)."""
    if isinstance(table, (str, os.PathLike)):
        path = Path(table)
        if not path.exists():
            raise FileNotFoundError(f"metric table {path} does not exist; run the evaluation first")
        head = pd.read_csv(path, nrows=0)
        if set(_LONG_TABLE) <= set(head.columns):
            table = pd.read_csv(path)
        else:
            table = pd.read_csv(path, header=[0, 1], index_col=0)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table: expected a DataFrame or CSV path, got {type(table).__name__}")
    if isinstance(table.columns, pd.MultiIndex):
        if table.columns.nlevels != 2:
            raise ValueError("table: wide format needs 2 column levels (target, metric), got "
                             f"{table.columns.nlevels}")
        wide = table
    else:
        _require_columns(table, _LONG_TABLE, "metric table",
                         "pass index = method with (target, metric) columns, or the long format "
                         "with columns method, target, metric, score")
        dup = table.duplicated(["method", "target", "metric"])
        if dup.any():
            row = table.loc[dup, ["method", "target", "metric"]].iloc[0].tolist()
            raise ValueError(
                f"metric table has several scores for (method, target, metric) = {tuple(row)}; "
                "pass the aggregated table (one median per method, target and metric), not "
                "per-track or per-frame scores (see metric_boxplots for those)")
        wide = table.pivot(index="method", columns=["target", "metric"], values="score")
    wide = wide.astype(float)
    metric_rank = {m: i for i, m in enumerate(METRICS)}
    columns = sorted(wide.columns, key=lambda c: (str(c[0]) != "vocals", str(c[0]),
                                                  metric_rank.get(c[1], 9), str(c[1])))
    return wide.loc[order_methods(wide.index), columns]


def metric_table_figure(table, path=None, title: str = "Median scores over test tracks (dB)",
                        dpi: int = DEFAULT_DPI):
    """The poster table drawn as a figure: rows methods, columns (target, metric), values in dB.

    Cell colours rank the methods within each column (darker green = higher, which is
    better for every BSS Eval metric); the best value of each column is bold.

    Parameters
    ----------
    table : DataFrame or path
        Either the wide table (index = method, MultiIndex columns ``(target, metric)``,
        as written to ``tables/`` by the evaluation), or the long format with columns
        ``method``, ``target``, ``metric``, ``score`` (one row per combination; pivoted
        here), or the path of a CSV of either.
    path : path-like, optional
        Where to save the PNG.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes holding one text per cell (values with 2 decimals, "n/a" for missing).
    """
    wide = _wide_metric_table(table)
    if wide.empty:
        raise ValueError("metric table is empty")
    values = wide.to_numpy(dtype=float)
    nb_rows, nb_cols = values.shape
    # per-column 0..1 scaling: SDR and SAR live on different ranges
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.inf)
    lo = np.where(finite.any(axis=0), masked.min(axis=0), 0.0)
    hi = np.where(finite.any(axis=0), np.where(finite, values, -np.inf).max(axis=0), 1.0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    shade = np.where(finite, (values - lo) / span, np.nan)

    fig, axes = _new_figure(figsize=(0.9 * nb_cols + 2.8, 0.45 * nb_rows + 1.8))
    ax = axes[0, 0]
    cmap = mpl.colormaps["Greens"].with_extremes(bad="#eeeeee")
    ax.imshow(np.ma.masked_invalid(0.15 + 0.6 * shade), cmap=cmap, vmin=0.0, vmax=1.0,
              aspect="auto")
    for i in range(nb_rows):
        for j in range(nb_cols):
            value = values[i, j]
            best = np.isfinite(value) and value == hi[j]
            text = f"{value:.2f}" if np.isfinite(value) else "inf" if value == np.inf else "n/a"
            ax.text(j, i, text, ha="center",
                    va="center", fontsize="small", fontweight="bold" if best else "normal")
    ax.set_xticks(range(nb_cols))
    ax.set_xticklabels([str(metric) for _, metric in wide.columns])
    ax.xaxis.tick_top()
    # one target label centred over its group of metric columns, groups split by a line
    targets = [str(target) for target, _ in wide.columns]
    start = 0
    for j in range(1, nb_cols + 1):
        if j == nb_cols or targets[j] != targets[start]:
            ax.annotate(targets[start], xy=((start + j - 1) / 2, -0.5), xytext=(0, 18),
                        textcoords="offset points", ha="center", va="bottom",
                        fontweight="bold", annotation_clip=False)
            if j < nb_cols:
                ax.axvline(j - 0.5, color="black", linewidth=1.5)
            start = j
    ax.set_yticks(range(nb_rows))
    ax.set_yticklabels([method_label(m) for m in wide.index])
    for label, method in zip(ax.get_yticklabels(), wide.index):
        label.set_color(method_color(method))
    ax.set_xticks(np.arange(nb_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(nb_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="both", length=0)
    # a figure title: an axes title would sit on top of the target labels
    fig.suptitle(title)
    return _finish(fig, path, dpi)


_SCORES = ["method", "track", "target", "metric", "score"]


def _track_medians(scores) -> pd.DataFrame:
    """Per-track medians over frames (NaN frames skipped), as museval aggregates; residue
    (``stats.mark_residue``: MIX's SAR) as inf, whatever wrote the scores."""
    df = _read_table(scores, "scores")
    _require_columns(df, _SCORES, "scores",
                     "expected museval's long format (one row per method, track, target, "
                     "metric and frame)")
    df = mark_residue(df.assign(score=pd.to_numeric(df["score"], errors="coerce")))
    return df.groupby(["method", "track", "target", "metric"], as_index=False)["score"].median()


def metric_boxplots(scores, target: str = "vocals", metrics=METRICS,
                    path=None, methods: Sequence[str] | None = None,
                    title: str | None = None, dpi: int = DEFAULT_DPI):
    """SiSEC-style boxplots: one panel per metric (a grid of two columns), one box per
    method, of per-track medians.

    Frames are first aggregated per track by their median (NaN frames skipped), exactly
    as museval does before it takes the median over tracks; each box then shows the
    distribution of those per-track values, with the tracks as dots. A model trained with
    several seeds is one box: per track, the mean over its seeds of those values (the
    tables give each seed).

    Parameters
    ----------
    scores : DataFrame or path
        museval's long format: columns ``method``, ``track``, ``target``, ``metric``,
        ``score`` (one row per frame; ``time`` and other columns ignored).
    target : str
        Which target to show, e.g. ``"vocals"``.
    metrics : sequence of str
        Panels, left to right.
    path : path-like, optional
        Where to save the PNG.
    methods : sequence of str, optional
        Which methods and in which order (default: all, baseline and proposed first).
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics)`` axes, each with one box (patch) per method.
    """
    medians = _seeds_pooled(_track_medians(scores))
    targets = sorted(medians["target"].unique())
    if target not in targets:
        raise ValueError(f"target {target!r} is not in the scores; available targets: {targets}")
    medians = medians[medians["target"] == target]
    available = sorted(medians["metric"].unique())
    metrics = list(metrics)
    missing = [m for m in metrics if m not in available]
    if not metrics or missing:
        raise ValueError(f"metric(s) {missing or metrics} not in the scores of {target!r}; "
                         f"available metrics: {available}")
    present = order_methods(medians["method"].unique())
    if methods is None:
        methods = present
    else:
        unknown = [m for m in methods if m not in present]
        if unknown:
            raise ValueError(f"method(s) {unknown} not in the scores; available: {present}")
        methods = list(methods)

    ncols = min(2, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = _new_figure(nrows, ncols, figsize=(ncols * (1.4 + 0.45 * len(methods)), 1.2 + 3.8 * nrows))
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    rng = np.random.default_rng(0)  # fixed jitter: the same data give the same picture
    for ax, metric in zip(axes.flat, metrics):
        _boxplot_panel(ax, medians[medians["metric"] == metric], methods, metric, rng)
    nb_tracks = medians["track"].nunique()
    pooled = sorted(set(medians.attrs.get("seeds", {}).values()))
    seeds = f"; a model's box: mean over its {pooled[0]} seeds per track" if len(pooled) == 1 and pooled[0] > 1 else ""
    fig.suptitle(title or f"{target}: per-track median scores ({nb_tracks} tracks{seeds})")
    return _finish(fig, path, dpi)


def _boxplot_panel(ax, rows: pd.DataFrame, methods: Sequence[str], metric: str, rng) -> None:
    """One metric's panel: a box and the tracks' dots per method; residue marked ``inf``."""
    data, residue = [], []
    for method in methods:
        values = rows.loc[rows["method"] == method, "score"].to_numpy(dtype=float)
        data.append(values[np.isfinite(values)])
        residue.append(bool(np.any(values == np.inf)))
    boxes = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False,
                       tick_labels=[method_label(m) for m in methods],
                       medianprops={"color": "black", "linewidth": 1.5})
    for box, median, method in zip(boxes["boxes"], boxes["medians"], methods):
        box.set_facecolor(method_color(method))
        box.set_alpha(0.55)
        box.set_gid(f"box {method}")
        median.set_gid(f"median {method}")  # findable by id in the figure or an SVG
    for position, (method, values) in enumerate(zip(methods, data), 1):
        jitter = rng.uniform(-0.15, 0.15, size=len(values))
        ax.scatter(position + jitter, values, s=10, color=method_color(method),
                   edgecolors="black", linewidths=0.3, zorder=3)
    # residue (stats.mark_residue: MIX's SAR) has no place on a dB axis: a mark says so
    for position, is_residue in enumerate(residue, 1):
        if is_residue:
            ax.annotate("inf", xy=(position, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize="small", fontweight="bold", gid="residue")
    ax.set_title(metric)
    ax.set_ylabel(f"{metric} (dB)")
    for label in ax.get_xticklabels():
        label.set(rotation=45, ha="right", rotation_mode="anchor")
    ax.grid(True, axis="y", alpha=0.3)


def _seeds_pooled(medians: pd.DataFrame) -> pd.DataFrame:
    """Per-track medians with each model's seeds averaged per track (method ``x-seedN`` ->
    ``x``); ``attrs["seeds"]``: method -> number of seeds pooled."""

    base = medians["method"].map(lambda name: split_seed(name)[0])
    if base.equals(medians["method"]):
        return medians
    counts = medians.assign(base=base).groupby("base")["method"].nunique().to_dict()
    pooled = (medians.assign(method=base)
              .groupby(["method", "track", "target", "metric"], as_index=False, sort=False)["score"].mean())
    pooled.attrs["seeds"] = {name: int(n) for name, n in counts.items() if n > 1}
    return pooled


_PAIRED_COLUMNS = ["model", "baseline", "target", "metric", "n_songs", "n_seeds", "median_diff",
                   "ci_low", "ci_high", "p_holm"]


def _songs_by_seeds(rows: pd.DataFrame) -> str | None:
    """``"16 songs x 3 seeds"`` when every row has the same counts, else None."""
    counts = set(zip(rows["n_songs"].astype(int), rows["n_seeds"].astype(int)))
    if len(counts) != 1:
        return None
    songs, seeds = counts.pop()
    return f"{songs} song{'s' if songs != 1 else ''} x {seeds} seed{'s' if seeds != 1 else ''}"


def paired_differences_figure(paired, path=None, target: str = "vocals",
                              metrics: Sequence[str] = METRICS, alpha: float = 0.05,
                              title: str | None = None, dpi: int = DEFAULT_DPI):
    """Forest plot of every model against the baseline: one panel per metric.

    Each row is a model (``names.order_methods``; half-training checkpoints in a lighter
    shade, square markers), then each further comparison of the table (the proposed model
    against a control: label ``"A - B"``, gids ``"point A vs B"``): the point is the median over songs of its paired difference
    to the baseline (dB, positive: the model scores higher), the bar its bootstrap
    interval, the dashed line zero. A filled marker is significant at ``alpha`` after
    Holm correction, an open one is not.

    Parameters
    ----------
    paired : DataFrame or path
        ``stats.paired_differences`` or ``tables/paired_differences.csv``.
    path : path-like, optional
        Where to save the PNG.
    target : str
        Which target's rows to draw.
    metrics : sequence of str
        Panels, left to right.
    alpha : float
        Significance level of the filled markers (on ``p_holm``).
    title : str, optional
        Default: target, baseline, interval level and songs x seeds.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics)`` axes; in each, per model a marker line with gid ``"point
        <model>"`` (x = median difference) and its interval with gid ``"ci <model>"``,
        and the zero line with gid ``"zero"``.
    """
    rows, metrics = _paired_rows(paired, target, metrics)
    # one line per comparison: each model against the main baseline (the most frequent
    # reference), then the proposed model against each control ("A - B" labels)
    main_baseline = rows["baseline"].value_counts().index[0]
    models = order_methods(rows.loc[rows["baseline"] == main_baseline, "model"].unique())
    comparisons = [(m, main_baseline) for m in models] + list(dict.fromkeys(
        (m, b) for m, b in zip(rows["model"], rows["baseline"]) if b != main_baseline))
    counts = _songs_by_seeds(rows)

    def label(model, reference):
        text = method_label(model) if reference == main_baseline else \
            f"{method_label(model)} - {method_label(reference)}"
        if counts:
            return text
        first = rows[(rows["model"] == model) & (rows["baseline"] == reference)].iloc[0]
        return f"{text} ({int(first.n_songs)}x{int(first.n_seeds)})"

    fig, axes = _new_figure(1, len(metrics), figsize=(2.6 * len(metrics) + 2.6 + 1.2 * (
        len(comparisons) > len(models)), max(0.42 * len(comparisons) + 1.9, 3.4)), sharey=True)  # never flatter than ~4:1
    positions = np.arange(len(comparisons))
    for ax, metric in zip(axes[0], metrics):
        by_pair = rows[rows["metric"] == metric].set_index(["model", "baseline"])
        for y, (model, reference) in zip(positions, comparisons):
            if (model, reference) in by_pair.index:
                gid = model if reference == main_baseline else f"{model} vs {reference}"
                _draw_paired_row(ax, y, by_pair.loc[(model, reference)], model, gid, alpha)
        _paired_axis(ax, rows, metric)
    axes[0, 0].set_yticks(positions)
    axes[0, 0].set_yticklabels([label(m, b) for m, b in comparisons])
    for text, (model, _) in zip(axes[0, 0].get_yticklabels(), comparisons):
        # the full model's colour: the lighter shade of a half checkpoint is hard to read as text
        text.set_color(method_color(str(model).removesuffix(HALF_SUFFIX)))
    axes[0, 0].set_ylim(len(comparisons) - 0.5, -0.5)  # first comparison on top
    fig.suptitle(title if title is not None else _paired_title(rows, target, main_baseline, counts, alpha))
    return _finish(fig, path, dpi)


def _paired_rows(paired, target: str, metrics: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The paired-differences table's rows of ``target``, checked to hold every metric."""
    df = _read_table(paired, "paired differences")
    _require_columns(df, _PAIRED_COLUMNS, "paired differences table",
                     "stats.paired_differences writes it (tables/paired_differences.csv)")
    rows = df[df["target"] == target]
    if rows.empty:
        raise ValueError(f"paired differences: no rows for target {target!r}; targets: "
                         f"{sorted(df['target'].unique())}")
    metrics = list(metrics)
    missing = [m for m in metrics if m not in set(rows["metric"])]
    if not metrics or missing:
        raise ValueError(f"paired differences: metric(s) {missing or metrics} not in the "
                         f"{target!r} rows; available: {sorted(rows['metric'].unique())}")
    return rows, metrics


def _draw_paired_row(ax, y: float, row: pd.Series, model: str, gid: str, alpha: float) -> None:
    """One comparison's point (filled when the verdict claims a difference) and interval."""
    color = method_color(model)
    value, low, high = (float(row[c]) for c in ("median_diff", "ci_low", "ci_high"))
    if "verdict" in row.index and isinstance(row["verdict"], str) and row["verdict"]:
        # the table's verdict: Holm p below alpha and the crossed interval off zero
        significant = row["verdict"] in ("higher", "lower")
    else:
        significant = np.isfinite(row["p_holm"]) and float(row["p_holm"]) < alpha
    if np.isfinite(low) and np.isfinite(high):
        bar = ax.hlines(y, low, high, color=color, linewidth=2.0)
        bar.set_gid(f"ci {gid}")
    (point,) = ax.plot([value], [y], linestyle="none",
                       marker="s" if str(model).endswith(HALF_SUFFIX) else "o",
                       markersize=7, color=color, markeredgecolor=color,
                       markerfacecolor=color if significant else "white",
                       markeredgewidth=1.5, zorder=3)
    point.set_gid(f"point {gid}")


def _paired_axis(ax, rows: pd.DataFrame, metric: str) -> None:
    """A panel's zero line, equivalence margin (when the table has one), title and grid."""
    zero = ax.axvline(0.0, color="black", linestyle="--", linewidth=1.0, zorder=1)
    zero.set_gid("zero")
    if "delta" in rows.columns and np.isfinite(rows["delta"].astype(float)).any():
        delta = float(rows["delta"].astype(float).max())  # the equivalence margin
        for sign in (-1, 1):
            ax.axvline(sign * delta, color="grey", linestyle=":", linewidth=1.0, zorder=1,
                       gid="equivalence margin")
    ax.set_title(metric)
    ax.set_xlabel(f"{metric} difference (dB)")
    ax.grid(True, axis="x", alpha=0.3)


def _paired_title(rows: pd.DataFrame, target: str, main_baseline: str, counts: str | None, alpha: float) -> str:
    baseline = method_label(main_baseline)
    level = rows["level"].iloc[0] * 100 if "level" in rows.columns else 95
    return (f"{target}: model - {baseline}, median over songs of paired differences, "
            f"{level:g} % bootstrap CI\n{counts or 'songs x seeds per model in brackets'}; "
            + (f"filled: a difference the verdict claims (Holm p < {alpha * 100:g} %, interval "
               "off zero, seeds agree); dotted: the equivalence margin"
               if "verdict" in rows.columns else
               f"filled: significant at {alpha * 100:g} % after Holm correction"))


def training_length_figure(medians, path=None, target: str = "vocals", metric: str = "SDR",
                           title: str | None = None, dpi: int = DEFAULT_DPI):
    """Median score of each model at half and at full training, with bootstrap intervals.

    Parameters
    ----------
    medians : DataFrame or path
        ``stats.model_medians`` or ``tables/model_medians.csv`` (columns ``model, target,
        metric, median, ci_low, ci_high``), holding ``<model>-half`` rows.
    path : path-like, optional
        Where to save the PNG.
    target, metric : str
        The score shown.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes; per model with a half-training checkpoint a line with gid
        ``"model <model>"`` through (0, half) and (1, full), and its intervals.
    """
    df = _read_table(medians, "model medians")
    _require_columns(df, ["model", "target", "metric", "median", "ci_low", "ci_high"],
                     "model medians table", "stats.model_medians writes it (tables/model_medians.csv)")
    rows = df[(df["target"] == target) & (df["metric"] == metric)].set_index("model")
    models = [m for m in order_methods(rows.index) if not str(m).endswith(HALF_SUFFIX)
              and f"{m}{HALF_SUFFIX}" in rows.index]
    if not models:
        raise ValueError(f"model medians: no model has both a half-training ('<model>{HALF_SUFFIX}') "
                         f"and a full-training row for {target} {metric}; models: {sorted(rows.index)}")
    fig, axes = _new_figure(figsize=(8.4, 4.6))
    ax = axes[0, 0]
    offsets = (np.arange(len(models)) - (len(models) - 1) / 2) * 0.06
    for model, offset in zip(models, offsets):
        both = rows.loc[[f"{model}{HALF_SUFFIX}", model]]
        x = np.array([0.0, 1.0]) + offset
        y = both["median"].to_numpy(dtype=float)
        low, high = both["ci_low"].to_numpy(dtype=float), both["ci_high"].to_numpy(dtype=float)
        color = method_color(model)
        (line,) = ax.plot(x, y, color=color, marker="o", label=method_label(model))
        line.set_gid(f"model {model}")
        finite = np.isfinite(low) & np.isfinite(high)
        ax.vlines(x[finite], low[finite], high[finite], color=color, linewidth=1.5)
    ax.set_xticks([0.0, 1.0])
    ax.set_xticklabels(["half training", "full training"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel(f"{target} {metric} (dB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or f"{target} {metric}: median over songs (seed means), bootstrap CI")
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- tuning
def _trial_column(df: pd.DataFrame, name: str) -> str:
    """``name`` or Optuna's ``params_<name>`` column."""
    for candidate in (name, f"params_{name}"):
        if candidate in df.columns:
            return candidate
    raise ValueError(f"trials table has no column {name!r} (nor 'params_{name}'); "
                     f"columns: {list(map(str, df.columns))}")


def search_space_plot(trials, x: str = "lr", y: str | None = "lr_decay_gamma",
                      value: str | None = None, path=None, log_x: bool | None = None,
                      title: str = "Hyper-parameter search: validation loss per trial",
                      dpi: int = DEFAULT_DPI):
    """Validation loss over the tuning search space; the best trial is starred.

    Parameters
    ----------
    trials : DataFrame or path
        One row per trial with the parameter columns (``lr`` or Optuna's
        ``params_lr``, ...) and the validation loss. When a ``state`` column
        exists (Optuna), only ``COMPLETE`` trials are shown; trials with a missing loss
        are dropped.
    x, y : str
        Parameters on the axes; ``y=None`` plots the loss against ``x`` alone.
    value : str, optional
        Column with the validation loss (lower is better). Default: ``value`` (Optuna's
        ``trials_dataframe``) or else ``best_valid_loss`` (``tuning/trials.csv`` of
        :mod:`melunmix.training.tune`).
    path : path-like, optional
        Where to save the PNG.
    log_x : bool, optional
        Logarithmic x axis; default: when ``x`` is ``"lr"``.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        With ``y``: the scatter axes and its colour bar (2 axes); without: 1 axes.
    """
    df = _read_table(trials, "trials")
    x_col = _trial_column(df, x)
    y_col = _trial_column(df, y) if y is not None else None
    if value is None:
        value = next((c for c in ("value", "best_valid_loss") if c in df.columns), "value")
    _require_columns(df, [value], "trials", "the validation loss of each trial")
    if "state" in df.columns:
        df = df[df["state"].astype(str).str.upper().str.endswith("COMPLETE")]
    df = df[np.isfinite(pd.to_numeric(df[value], errors="coerce"))]
    if df.empty:
        raise ValueError("trials table has no finished trial with a finite loss to plot")
    xs = df[x_col].to_numpy(dtype=float)
    losses = df[value].to_numpy(dtype=float)
    best = int(np.argmin(losses))
    log_x = (x == "lr") if log_x is None else log_x

    fig, axes = _new_figure(figsize=(7.0, 4.8))
    ax = axes[0, 0]
    if y_col is None:
        ax.scatter(xs, losses, s=40, color=method_color("openunmix"), edgecolors="black",
                   linewidths=0.5, label="trial")
        ax.scatter([xs[best]], [losses[best]], marker="*", s=300, color="gold",
                   edgecolors="black", zorder=3, label=f"best ({losses[best]:.3g})")
        ax.set_ylabel("Validation loss (MSE)")
    else:
        ys = df[y_col].to_numpy(dtype=float)
        points = ax.scatter(xs, ys, c=losses, cmap="viridis_r", s=60, edgecolors="black",
                            linewidths=0.5)
        ax.scatter([xs[best]], [ys[best]], marker="*", s=350, color="gold", edgecolors="black",
                   zorder=3, label=f"best: {x}={xs[best]:.3g}, {y}={ys[best]:.3g}")
        fig.colorbar(points, ax=ax, label="Validation loss (MSE, lower is better)")
        ax.set_ylabel(y)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x + (" (log scale)" if log_x else ""))
    ax.set_title(f"{title}\n({len(df)} trials)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- data
#: Most songs in one column of :func:`stem_loudness_plot`.
TRACKS_PER_COLUMN = 20


def stem_loudness_plot(table, path=None, stems=SOURCES,
                       value: str = "rms_dbfs", title: str = "Stem loudness per track",
                       dpi: int = DEFAULT_DPI):
    """Per-track RMS level of each stem (dBFS) as grouped horizontal bars.

    Parameters
    ----------
    table : DataFrame or path
        Either wide (one row per track: a ``track`` column or the index, and one column
        per stem holding its RMS level in dBFS) or long (columns ``track``, ``stem`` and
        ``value``).
    path : path-like, optional
        Where to save the PNG.
    stems : sequence of str
        Stems to draw, in order.
    value : str
        Level column of the long format.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        ``nb_tracks * len(stems)`` bars, in columns of at most :data:`TRACKS_PER_COLUMN`
        tracks (one axes each, first track on top). Silent stems (``-inf`` dBFS) are drawn
        hatched at the left edge of the axis.
    """
    df = _read_table(table, "stem loudness table")
    stems = list(stems)
    if "stem" in df.columns:
        _require_columns(df, ["track", "stem", value], "stem loudness table")
        df = df.pivot_table(index="track", columns="stem", values=value, aggfunc="first", sort=False)
    elif "track" in df.columns:
        df = df.set_index("track")
    _require_columns(df, stems, "stem loudness table",
                     "one column per stem with its RMS level in dBFS")
    if df.empty:
        raise ValueError("stem loudness table has no tracks")
    levels = df[stems].to_numpy(dtype=float)
    finite = levels[np.isfinite(levels)]
    floor = (np.floor(finite.min() / 10.0) * 10.0 - 10.0) if finite.size else -100.0
    nb_tracks = len(df)
    height = 0.8 / len(stems)
    # Columns of at most TRACKS_PER_COLUMN songs side by side, so a large dataset stays a
    # page-shaped figure (60 songs in one column were 960 x 3540 px).
    per_column = int(np.ceil(nb_tracks / int(np.ceil(nb_tracks / TRACKS_PER_COLUMN))))
    ncols = int(np.ceil(nb_tracks / per_column))
    per_track = 0.125 * max(len(stems), 2)
    fig, axes = _new_figure(ncols=ncols, figsize=(8.0 if ncols == 1 else 4.6 * ncols, 1.5 + per_track * per_column),
                            sharex=True)
    for column, ax in enumerate(axes[0]):
        rows = slice(column * per_column, min(nb_tracks, (column + 1) * per_column))
        positions = np.arange(rows.stop - rows.start)
        for k, stem in enumerate(stems):
            level = levels[rows, k]
            silent = ~np.isfinite(level)
            bars = ax.barh(positions + (k - (len(stems) - 1) / 2) * height,
                           np.where(silent, 0.0, level - floor), left=floor, height=height,
                           color=STEM_COLORS.get(stem, method_color(stem)), label=stem)
            for bar, is_silent in zip(bars, silent):
                if is_silent:  # visible placeholder so a silent stem is not mistaken for missing
                    bar.set_width(-floor * 0.02 if floor < 0 else 1.0)
                    bar.set_hatch("///")
                    bar.set_facecolor("white")
                    bar.set_edgecolor(STEM_COLORS.get(stem, "black"))
        ax.set_yticks(positions)
        ax.set_yticklabels([str(t) for t in df.index[rows]], fontsize="small" if ncols > 1 else None)
        ax.set_ylim(per_column - 0.5, -0.5)  # first track on top, as in the table; columns alike
        ax.set_xlim(floor, max(0.0, finite.max() + 3.0) if finite.size else 0.0)
        ax.set_xlabel("RMS level (dBFS)")
        ax.grid(True, axis="x", alpha=0.3)
    if ncols == 1:
        axes[0, 0].set_title(title)
    else:
        fig.suptitle(title)
    axes[0, -1].legend(title="stem", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- the sung voice
def loudest_window(audio, sample_rate: float, seconds: float = 4.0) -> int:
    """First sample of the ``seconds``-long stretch of ``audio`` with the most energy.

    Parameters
    ----------
    audio : array, shape (nb_channels, nb_samples) or (nb_samples,)
    sample_rate : float
        Hz.
    seconds : float
        Length of the stretch; the whole signal when it is shorter.

    Returns
    -------
    int
        Start sample (0 when the signal is shorter than ``seconds``), on a 10 ms grid.
    """
    sample_rate = _check_rate(sample_rate)
    audio = _as_audio(audio)
    length = int(round(seconds * sample_rate))
    if audio.shape[1] <= length:
        return 0
    step = max(1, int(round(0.01 * sample_rate)))
    energy = np.sum(audio.astype(np.float64) ** 2, axis=0)
    blocks = np.add.reduceat(energy, np.arange(0, audio.shape[1], step))
    width = max(1, length // step)
    window = np.convolve(blocks, np.ones(width), mode="valid")
    window = window[: (audio.shape[1] - length) // step + 1]
    return int(np.argmax(window)) * step


def vocal_spectrogram(audio, sample_rate: float, title: str, start: int = 0, seconds: float = 4.0,
                      path=None, max_freq: float = 8000.0, n_fft: int | None = None,
                      dpi: int = DEFAULT_DPI):
    """A few seconds of a voice, close up: formants moving between vowels, consonant noise.

    A fine-hop spectrogram (about 23 ms frames, 3 ms hop) of the channel average from
    ``start``, up to ``max_freq``. Vowels show as harmonics whose strong bands (formants)
    move at each syllable; fricatives and plosive bursts as short vertical bands of noise
    reaching high frequencies; breaths as faint noise before phrases.

    Parameters
    ----------
    audio : array, shape (nb_channels, nb_samples) or (nb_samples,)
    sample_rate : float
        Hz.
    title : str
    start : int
        First sample shown (e.g. :func:`loudest_window`).
    seconds : float
        Length shown.
    path : path-like, optional
        Where to save the PNG.
    max_freq : float
        Highest frequency shown (Hz).
    n_fft : int, optional
        Frame length in samples (default: the power of two nearest 23 ms); the hop is an
        eighth of it.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One spectrogram panel and its colour bar.
    """
    sample_rate = _check_rate(sample_rate)
    audio = _as_audio(audio)
    if not 0 <= int(start) < audio.shape[1]:
        raise ValueError(f"start must be a sample inside the audio (0 to {audio.shape[1] - 1}), got {start}")
    segment = np.ascontiguousarray(audio[:, int(start): int(start) + int(round(seconds * sample_rate))],
                                   dtype=np.float32)
    n_fft = int(n_fft) if n_fft else 1 << int(round(np.log2(0.023 * sample_rate)))
    n_hop = max(1, n_fft // 8)
    power = _power_spectrogram(segment, n_fft, n_hop)
    duration = segment.shape[1] / sample_rate
    fig, axes = _new_figure(figsize=(10.0, 4.5))
    ax = axes[0, 0]
    offset = start / sample_rate
    db = _to_db(power, power.max()) if power.max() > 0 else np.full_like(power, -_TOP_DB)
    im = _spectrogram_image(ax, db, duration, sample_rate, min(max_freq, sample_rate / 2.0))
    im.set_extent((offset, offset + duration, 0.0, sample_rate / 2000.0))
    ax.set_xlim(offset, offset + duration)
    ax.set_xlabel("Time (s)")
    ax.set_title(f"{title} ({n_fft}-sample frames, hop {n_hop})", fontsize="medium")
    fig.colorbar(im, ax=ax, label="dB (re max)")
    return _finish(fig, path, dpi)


def scaler_statistics_figure(input_mean, input_std, sample_rate: float, n_fft: int, bandwidth: float,
                             path=None, dpi: int = DEFAULT_DPI):
    """The input scaler's statistics per frequency bin: mean and standard deviation of the magnitude.

    What every model is initialised with (:mod:`melunmix.datasets.scaler`, over the
    training mixtures, mono, as Open-Unmix computes them), on a log scale against the
    bin's frequency, with the bandwidth fed to the network marked.

    Parameters
    ----------
    input_mean, input_std : array, shape (nb_bins,)
        Per-bin mean and standard deviation of the magnitude (bin ``k`` at
        ``k * sample_rate / n_fft`` Hz), e.g. ``TrainingData.input_mean`` / ``input_std``.
    sample_rate : float
        Hz.
    n_fft : int
        STFT length that made the bins.
    bandwidth : float
        Hz; the highest frequency the network sees (a dotted line).
    path : path-like, optional
        Where to save the PNG.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One panel, 8 x 3 inches.
    """
    mean = np.asarray(input_mean, dtype=np.float64).reshape(-1)
    std = np.asarray(input_std, dtype=np.float64).reshape(-1)
    if mean.shape != std.shape or mean.size == 0:
        raise ValueError(f"input_mean and input_std must be two non-empty vectors of one length, got shapes "
                         f"{np.shape(input_mean)} and {np.shape(input_std)}")
    sample_rate = _check_rate(sample_rate)
    if int(n_fft) <= 0:
        raise ValueError(f"n_fft must be positive, got {n_fft}")
    freqs = np.arange(mean.size) * sample_rate / int(n_fft)
    fig, axes = _new_figure(figsize=(8.0, 3.0))
    ax = axes[0, 0]
    ax.semilogy(freqs, mean, label="mean")
    ax.semilogy(freqs, std, label="std")
    ax.axvline(float(bandwidth), color="k", ls=":", label="bandwidth fed to the network")
    ax.set(xlabel="frequency (Hz)", ylabel="magnitude", title="Scaler statistics of the training mixtures (mono)")
    ax.legend()
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------- tuning
def plot_tuning_curves(histories, path: str | os.PathLike | None = None, dpi: int | None = None):
    """Learning rate and validation loss per epoch of every trial, one colour per trial.

    Shows that each searched setting changed training: with the exponential schedule the
    learning rate of every trial falls by its own factor per epoch.

    Parameters
    ----------
    histories : DataFrame or path
        ``trial_histories.csv`` (columns ``trial, epoch, valid_loss, lr``), or
        :func:`melunmix.training.tune.load_trial_histories` (with a ``model`` column: one row of panels per model).
    path : path-like, optional
        Where to save the PNG (e.g. ``figures/tuning_lr_curves.png``).
    dpi : int, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per model: learning rate (log scale) and validation loss, per epoch; side
        by side in one row per model for up to two models, else one above the other in one
        column per model.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    df = _read_table(histories, "trial histories")
    _require_columns(df, ["trial", "epoch", "valid_loss", "lr"], "trial histories")
    if df.empty:
        raise ValueError("trial histories are empty: run the search first")
    if "model" not in df.columns:
        df = df.assign(model="")
    models = list(dict.fromkeys(df["model"]))
    # One row per model (learning rate, loss) for one or two models; with more, one column
    # per model (learning rate above loss), so five models make a wide figure, not a tower.
    by_column = len(models) > 2
    if by_column:
        fig, grid = plt.subplots(2, len(models), figsize=(3.4 * len(models) + 1.0, 6.4), squeeze=False,
                                 layout="constrained")
        axes = grid.T
    else:
        fig, axes = plt.subplots(len(models), 2, figsize=(10.0, 3.6 * len(models)), squeeze=False,
                                 layout="constrained")
    trials = sorted(pd.unique(df["trial"]))
    norm = Normalize(vmin=min(trials), vmax=max(max(trials), min(trials) + 1))
    cmap = plt.get_cmap("viridis")
    for row, model in enumerate(models):
        part = df[df["model"] == model]
        for trial, group in part.groupby("trial", sort=True):
            group = group.sort_values("epoch")
            colour = cmap(norm(trial))
            for ax, column in zip(axes[row], ("lr", "valid_loss")):
                values = pd.to_numeric(group[column], errors="coerce")
                ax.plot(group["epoch"], values, marker="o", color=colour, lw=1.5, ms=4)
        label = f"{method_label(model)}: " if model else ""
        axes[row, 0].set_yscale("log")
        axes[row, 0].set_ylabel("learning rate (log scale)")
        axes[row, 0].set_title(f"{label}learning rate")
        axes[row, 1].set_ylabel("validation loss (MSE)")
        axes[row, 1].set_title(f"{label}validation loss")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.set_xticks(sorted(pd.unique(part["epoch"])))
            ax.grid(True, alpha=0.3)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=(axes[-1] if by_column else axes[:, -1]).tolist(),
                       label="trial")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Tuning trials per epoch ({len(trials)} trials, one colour each)")
    if path is not None:
        save_figure(fig, path, **({} if dpi is None else {"dpi": dpi}))
    return fig


def plot_transfer(table, tuning_dir: str | os.PathLike, path: str | os.PathLike | None = None,
                  dpi: int | None = None):
    """Training and validation loss per epoch of the transfer runs, tuned (solid) and default
    (dashed), one colour per model.

    Parameters
    ----------
    table : DataFrame or path
        From :func:`melunmix.training.tune.transfer_check` (or its ``transfer.csv``); its ``run_dir`` column gives
        the runs' folders relative to ``tuning_dir``.
    tuning_dir : path
        The tuning folder the transfer check ran in.
    path : path-like, optional
        Where to save the PNG (e.g. ``figures/tuning_transfer.png``).
    dpi : int, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: training loss and validation loss per epoch.
    """
    import matplotlib.pyplot as plt


    df = _read_table(table, "transfer table")
    _require_columns(df, ["model", "variant", "run_dir"], "transfer table")
    if df.empty:
        raise ValueError("the transfer table is empty (tune.transfer_epochs is 0?)")
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8), squeeze=False, layout="constrained")
    epochs = [0]
    for _, row in df.iterrows():
        history = pd.read_csv(Path(tuning_dir) / row["run_dir"] / HISTORY_CSV_NAME)
        epochs.append(int(history["epoch"].max()))
        tuned = row["variant"] == "tuned"
        colour = method_color(row["model"])
        label = f"{method_label(row['model'])}, {row['variant']} values"
        for ax, column in zip(axes[0], ("train_loss", "valid_loss")):
            ax.plot(history["epoch"], history[column], "-" if tuned else "--", marker="o" if tuned else "s",
                    ms=7, color=colour, markerfacecolor=colour if tuned else "white", label=label)
    for ax, title in zip(axes[0], ("training loss", "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{title} (MSE)")
        ax.set_title(f"{title.capitalize()} at the full rate")
        ax.set_xticks(range(1, max(epochs) + 1))
        ax.set_xlim(0.5, max(epochs) + 0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Transfer check: tuned vs default values, same seed and data")
    if path is not None:
        save_figure(fig, path, **({} if dpi is None else {"dpi": dpi}))
    return fig
