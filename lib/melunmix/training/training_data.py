"""What a run trains on: the training and validation datasets, the STFT and the scaler statistics (`prepare_data`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import datasets
from ..base.config import Settings, run_paths


#: STFT framing of training, validation and scaler statistics (Open-Unmix's: uncentred).
TRAIN_STFT_CENTER = False


@dataclass
class TrainingData:
    """The tracks and statistics a training run needs; made by :func:`prepare_data`.

    Attributes
    ----------
    root : Path
        Dataset root (MUSDB18, MUSDB18-HQ or the generated dataset).
    sample_rate : float
        Rate in Hz the datasets deliver audio at (tracks are resampled when they differ).
    train_tracks, valid_tracks : list of melunmix.datasets.TrackInfo
        The ``train`` and ``valid`` splits of the musdb train subset.
    input_mean, input_std : np.ndarray, shape (nb_bins,)
        Mean and standard deviation per STFT bin of the mono-averaged training mixture
        magnitudes at ``sample_rate`` (Open-Unmix's scaler statistics).
    n_fft, n_hop : int
        STFT the statistics were computed with.
    stats_dir : Path or None
        Where statistics are cached (``results/<profile>/features``); ``None``: not cached.
    fingerprint : str or None
        :func:`melunmix.datasets.dataset_fingerprint` of ``root``.
    progress : bool
        Progress bars while statistics are computed.
    """

    root: Path
    sample_rate: float
    train_tracks: list
    valid_tracks: list
    input_mean: np.ndarray
    input_std: np.ndarray
    n_fft: int
    n_hop: int
    stats_dir: Path | None = None
    fingerprint: str | None = None
    progress: bool = False
    _branch_stats: dict = field(default_factory=dict, repr=False)

    @property
    def nb_channels(self) -> int:
        """Audio channels of the tracks (2 for MUSDB18)."""
        return int(self.train_tracks[0].nb_channels)

    @property
    def nb_stft_bins(self) -> int:
        """Frequency bins of the STFT, ``n_fft // 2 + 1``: the model's ``nb_output_bins``
        (its ``nb_bins`` is the count below the bandwidth, as in Open-Unmix)."""
        return self.n_fft // 2 + 1

    def stats_key(self, kind: str, **params: Any) -> str:
        """Cache key of statistics of ``kind`` computed with ``params`` on these tracks."""
        parts = [kind, f"sr{_number(self.sample_rate)}"]
        parts += [f"{name}{_number(value)}" for name, value in sorted(params.items())]
        parts.append(self.fingerprint or "nofp")
        return "_".join(parts)

    def branch_stats(self, transform: torch.nn.Module, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std per feature of ``transform`` applied to the training mixtures.

        Parameters
        ----------
        transform : nn.Module
            Maps a magnitude spectrogram ``(..., nb_bins, nb_frames)`` to features
            ``(..., nb_features, nb_frames)``; the proposed model's ``branch_features``.
        **params
            What identifies the transform (feature kind, n_mels, ...), for the cache key.

        Returns
        -------
        mean, std : np.ndarray, shape (nb_features,)
        """

        key = self.stats_key("branch", n_fft=self.n_fft, n_hop=self.n_hop,
                             center=int(TRAIN_STFT_CENTER), **params)
        if key not in self._branch_stats:
            def compute() -> dict:
                return datasets.compute_feature_stats(
                    self.train_tracks, transform, n_fft=self.n_fft, n_hop=self.n_hop,
                    sample_rate=self.sample_rate, progress=self.progress, center=TRAIN_STFT_CENTER,
                )

            stats = _load_or_compute(self.stats_dir, key, compute)
            self._branch_stats[key] = (np.asarray(stats["mean"]), np.asarray(stats["std"]))
        return self._branch_stats[key]


def _number(value: Any) -> str:
    """Compact text of a number or word for file names (``44100.0`` -> ``44100``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _load_or_compute(stats_dir: Path | None, key: str, compute) -> dict:

    if stats_dir is None:
        return compute()
    return datasets.load_or_compute_stats(stats_dir, key, compute)


def prepare_data(
    settings: Settings,
    data_root: str | os.PathLike | None = None,
    stats_dir: str | os.PathLike | None = None,
    sample_rate: float | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> TrainingData:
    """Find the training and validation tracks and load (or compute) the scaler statistics.

    Parameters
    ----------
    settings : Settings
        The profile; ``settings.data`` and ``settings.stft`` are used.
    data_root : path, optional
        Dataset root; default ``settings.data.root``, then ``$MUSDB_ROOT`` /
        ``$MUSDB_PATH``, then the generated dataset (made on first use).
    stats_dir : path, optional
        Where statistics are saved and looked up; default ``results/<profile>/features``.
    sample_rate : float, optional
        Rate in Hz to train at; default ``settings.data.sample_rate`` (the tuner passes
        ``settings.tune.sample_rate``). Tracks at another rate are resampled once into
        the decode/resample cache.
    progress : bool, optional
        Progress bars while generating, decoding or resampling data and computing
        statistics; default ``settings.train.progress``.
    cache_dir : path, optional
        Decode/resample cache; default :func:`melunmix.datasets.default_cache_dir`.

    Returns
    -------
    TrainingData
        Its tracks are WAV-backed at ``sample_rate``.

    Raises
    ------
    FileNotFoundError, ValueError
        From :func:`melunmix.datasets.find_tracks` for a missing or broken dataset (the
        message names the folder or file), or when statistics on disk do not fit.
    """

    progress = settings.train.progress if progress is None else bool(progress)
    sample_rate = float(settings.data.sample_rate if sample_rate is None else sample_rate)
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be a positive rate in Hz, got {sample_rate!r}")
    root = datasets.ensure_dataset(
        data_root if data_root is not None else settings.data.root,
        generated=settings.data.generated, progress=progress,
    )
    found = {
        split: datasets.prepare_tracks(
            datasets.find_tracks(root, "train", split=split, is_wav=settings.data.is_wav,
                                 valid_tracks=settings.data.valid_tracks),
            sample_rate=sample_rate, cache_dir=cache_dir, progress=progress,
        )
        for split in ("train", "valid")
    }
    stats_dir = Path(stats_dir) if stats_dir is not None else run_paths(settings).features
    n_fft, n_hop = int(settings.stft.n_fft), int(settings.stft.n_hop)
    data = TrainingData(
        root=Path(root), sample_rate=sample_rate, train_tracks=found["train"], valid_tracks=found["valid"],
        input_mean=np.empty(0), input_std=np.empty(0), n_fft=n_fft, n_hop=n_hop,
        stats_dir=stats_dir, fingerprint=datasets.dataset_fingerprint(root), progress=progress,
    )
    key = data.stats_key("input", n_fft=n_fft, n_hop=n_hop, center=int(TRAIN_STFT_CENTER))
    stats = _load_or_compute(
        stats_dir, key,
        lambda: datasets.compute_scaler_stats(found["train"], n_fft, n_hop, sample_rate=sample_rate,
                                              progress=progress, center=TRAIN_STFT_CENTER),
    )
    data.input_mean = np.asarray(stats["mean"], dtype=np.float32)
    data.input_std = np.asarray(stats["std"], dtype=np.float32)
    if data.input_mean.shape != (data.nb_stft_bins,) or data.input_std.shape != (data.nb_stft_bins,):
        raise ValueError(
            f"scaler statistics '{key}' in {stats_dir} have shape {data.input_mean.shape}, expected "
            f"({data.nb_stft_bins},) for n_fft={n_fft}; delete that file and rerun"
        )
    return data
