"""Figures of audio and data: waveforms, spectrograms, features, the separation examples, stem loudness, scaler statistics."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..base.names import SOURCES
from .figure_style import DEFAULT_DPI, STEM_COLORS, TOP_DB, as_audio, check_rate, finish, method_color, new_figure, plot_waveform, power_spectrogram, read_table, require_columns, spectrogram_image, to_db


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

    sample_rate = check_rate(sample_rate)
    audio = as_audio(audio)
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
    power = power_spectrogram(audio, n_fft, n_hop)  # (bins, frames)
    magnitude = torch.from_numpy(np.sqrt(power))
    mel_power = MelSpectrogram(sample_rate, n_fft, n_mels=n_mels, power=2.0)(magnitude).numpy()
    mfcc = MFCC(sample_rate, n_fft, n_mfcc=n_mfcc, n_mels=n_mels)(magnitude).numpy()
    duration = audio.shape[1] / sample_rate

    # a 2 x 2 grid: readable at page width (one row of four was 4.4:1)
    fig, axes = new_figure(2, 2, figsize=(11.0, 6.6))
    (ax_wave, ax_stft), (ax_mel, ax_mfcc) = axes
    plot_waveform(ax_wave, audio, sample_rate)
    ax_wave.set_title("Waveform")

    im = spectrogram_image(ax_stft, to_db(power, power.max()), duration, sample_rate)
    ax_stft.set_title(f"STFT magnitude (n_fft {n_fft}, hop {n_hop})")
    fig.colorbar(im, ax=ax_stft, label="dB (re max)")

    im = ax_mel.imshow(to_db(mel_power, mel_power.max()), origin="lower", aspect="auto",
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
    return finish(fig, path, dpi)


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
    sample_rate = check_rate(sample_rate)
    audio = as_audio(audio)
    power = power_spectrogram(audio, n_fft, n_hop)
    duration = audio.shape[1] / sample_rate
    fig, axes = new_figure(2, 1, figsize=(10.0, 6.0), sharex=True,
                            gridspec_kw={"height_ratios": [1, 2]})
    ax_wave, ax_spec = axes[:, 0]
    plot_waveform(ax_wave, audio, sample_rate)
    im = spectrogram_image(ax_spec, to_db(power, power.max()), duration, sample_rate, max_freq)
    ax_spec.set_xlabel("Time (s)")
    ax_spec.set_xlim(0.0, duration)
    ax_spec.set_title(f"Spectrogram (n_fft {n_fft}, hop {n_hop})", fontsize="medium")
    # one colour bar beside both panels keeps their time axes aligned
    fig.colorbar(im, ax=[ax_wave, ax_spec], label="dB (re max)")
    fig.suptitle(title)
    return finish(fig, path, dpi)


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
    sample_rate = check_rate(sample_rate)
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty dict of title -> audio (nb_channels, nb_samples)")
    signals = {name: as_audio(audio, f"panel {name!r}") for name, audio in panels.items()}
    lengths = {name: audio.shape[1] for name, audio in signals.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"panels have different lengths (samples): {lengths}; crop them to the "
                         "same excerpt so the time axes agree")
    powers = {name: power_spectrogram(audio, n_fft, n_hop) for name, audio in signals.items()}
    ref = max(float(p.max()) for p in powers.values())
    duration = next(iter(lengths.values())) / sample_rate

    # Up to three panels one above the other; more fill two columns row by row, so six
    # signals make a 3 x 2 grid instead of a tower.
    ncols = 1 if len(powers) <= 3 else 2
    nrows = int(np.ceil(len(powers) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(10.0 if ncols == 1 else 12.0, 2.3 * nrows + 0.8),
                            sharex=True, sharey=True)
    used = list(axes.ravel()[:len(powers)])
    for ax in axes.ravel()[len(powers):]:
        fig.delaxes(ax)
    for ax, (name, power) in zip(used, powers.items()):
        im = spectrogram_image(ax, to_db(power, ref), duration, sample_rate, max_freq,
                                vmin=-TOP_DB, vmax=0.0)
        ax.set_title(name)
    for ax in used[-ncols:]:  # the bottom panel of each column (with an odd count, one row up on the right)
        ax.set_xlabel("Time (s)")
        ax.xaxis.set_tick_params(labelbottom=True)
    used[-1].set_xlim(0.0, duration)
    fig.colorbar(im, ax=used, label="dB (re loudest bin of all panels)")
    if title:
        fig.suptitle(title)
    return finish(fig, path, dpi)


#: Most songs in one column of :func:`stem_loudness_figure`.
TRACKS_PER_COLUMN = 20


def stem_loudness_figure(table, path=None, stems=SOURCES,
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
    df = read_table(table, "stem loudness table")
    stems = list(stems)
    if "stem" in df.columns:
        require_columns(df, ["track", "stem", value], "stem loudness table")
        df = df.pivot_table(index="track", columns="stem", values=value, aggfunc="first", sort=False)
    elif "track" in df.columns:
        df = df.set_index("track")
    require_columns(df, stems, "stem loudness table",
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
    fig, axes = new_figure(ncols=ncols, figsize=(8.0 if ncols == 1 else 4.6 * ncols, 1.5 + per_track * per_column),
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
    return finish(fig, path, dpi)


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
    sample_rate = check_rate(sample_rate)
    audio = as_audio(audio)
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
    sample_rate = check_rate(sample_rate)
    audio = as_audio(audio)
    if not 0 <= int(start) < audio.shape[1]:
        raise ValueError(f"start must be a sample inside the audio (0 to {audio.shape[1] - 1}), got {start}")
    segment = np.ascontiguousarray(audio[:, int(start): int(start) + int(round(seconds * sample_rate))],
                                   dtype=np.float32)
    n_fft = int(n_fft) if n_fft else 1 << int(round(np.log2(0.023 * sample_rate)))
    n_hop = max(1, n_fft // 8)
    power = power_spectrogram(segment, n_fft, n_hop)
    duration = segment.shape[1] / sample_rate
    fig, axes = new_figure(figsize=(10.0, 4.5))
    ax = axes[0, 0]
    offset = start / sample_rate
    db = to_db(power, power.max()) if power.max() > 0 else np.full_like(power, -TOP_DB)
    im = spectrogram_image(ax, db, duration, sample_rate, min(max_freq, sample_rate / 2.0))
    im.set_extent((offset, offset + duration, 0.0, sample_rate / 2000.0))
    ax.set_xlim(offset, offset + duration)
    ax.set_xlabel("Time (s)")
    ax.set_title(f"{title} ({n_fft}-sample frames, hop {n_hop})", fontsize="medium")
    fig.colorbar(im, ax=ax, label="dB (re max)")
    return finish(fig, path, dpi)


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
    sample_rate = check_rate(sample_rate)
    if int(n_fft) <= 0:
        raise ValueError(f"n_fft must be positive, got {n_fft}")
    freqs = np.arange(mean.size) * sample_rate / int(n_fft)
    fig, axes = new_figure(figsize=(8.0, 3.0))
    ax = axes[0, 0]
    ax.semilogy(freqs, mean, label="mean")
    ax.semilogy(freqs, std, label="std")
    ax.axvline(float(bandwidth), color="k", ls=":", label="bandwidth fed to the network")
    ax.set(xlabel="frequency (Hz)", ylabel="magnitude", title="Scaler statistics of the training mixtures (mono)")
    ax.legend()
    return finish(fig, path, dpi)
