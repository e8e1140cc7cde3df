"""Training: one model for one target with the Open-Unmix recipe, resumable to the epoch.

The baseline (``openunmix``) and the proposed model (``melunmix``) go through the same
code: the dataset yields waveforms, the STFT runs on the training device inside the loop,
and the loss is the mean squared error between the model's estimate and the magnitude
spectrogram of the target (all bins, both channels), as Open-Unmix trains.

Files written to ``out_dir`` (atomically, after every epoch):

- ``<target>.pth``: the best weights so far (lowest validation loss), readable with
  :func:`melunmix.models.load_model`;
- ``checkpoint.pt``: everything needed to continue (model, optimizer, scheduler,
  early-stopping state, the random generators of python/numpy/torch, the epoch);
- ``history.json`` / ``history.csv``: per epoch the training and validation loss, the
  learning rate and the epoch time, plus the best epoch and why training stopped;
- ``settings.json``: the resolved settings, the model's constructor arguments, the
  tuned parameters used (if any) and the git commit.

Calling :func:`train` again with the same arguments after a kill continues from the last
checkpoint; on CPU with the same seed the continued history equals an uninterrupted run's
exactly. A finished run returns at once.

Under ``torchrun`` (:func:`train_profile`, ``torchrun --nproc_per_node N -m melunmix.train``)
every process runs :func:`train` and the run is data parallel: each rank trains on its
share of every global batch of ``train.batch_size`` items, batch normalisation sees the
whole global batch, and rank 0 alone validates and writes the files above
(:mod:`melunmix.distributed`). The checkpoint does not depend on the number of ranks, so a
run continues with any number.

Example
-------
>>> from melunmix.config import load_profile
>>> from melunmix.train import prepare_data, train
>>> settings = load_profile("smoke")
>>> data = prepare_data(settings)                                   # doctest: +SKIP
>>> result = train("melunmix", settings, data, "results/smoke/models/melunmix")  # doctest: +SKIP
>>> result.best_epoch, result.weights                               # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .config import Settings, TrainSettings, run_paths
from .files import atomic_path, read_json, write_json, write_text

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_JSON_NAME = "history.json"
HISTORY_CSV_NAME = "history.csv"
SETTINGS_JSON_NAME = "settings.json"
#: Version of the checkpoint layout; a file of another version is refused, not guessed at.
CHECKPOINT_FORMAT = 1
#: STFT framing of training, validation and scaler statistics (Open-Unmix's: uncentred).
TRAIN_STFT_CENTER = False
#: History column of the validation SDR (``train.valid_sdr_every``), when recorded.
VALID_SDR_COLUMN = "valid_sdr"
#: Columns of the history, one value per epoch.
HISTORY_COLUMNS = ("epoch", "train_loss", "valid_loss", "lr", "epoch_time")
#: Training settings that change what a run computes (``epochs`` is left out on purpose:
#: raising it continues a finished run instead of refusing its checkpoint).
TRAJECTORY_SETTINGS = (
    "batch_size", "lr", "weight_decay", "lr_schedule", "lr_decay_gamma", "lr_decay_patience",
    "lr_decay_cooldown", "patience",
)


# --------------------------------------------------------------------------- data
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
    def nb_bins(self) -> int:
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
            ``(..., nb_features, nb_frames)``; the proposed model's ``mel_features``.
        **params
            What identifies the transform (feature kind, n_mels, ...), for the cache key.

        Returns
        -------
        mean, std : np.ndarray, shape (nb_features,)
        """
        from . import datasets

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
    from . import datasets

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
    from . import datasets

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
    if data.input_mean.shape != (data.nb_bins,) or data.input_std.shape != (data.nb_bins,):
        raise ValueError(
            f"scaler statistics '{key}' in {stats_dir} have shape {data.input_mean.shape}, expected "
            f"({data.nb_bins},) for n_fft={n_fft}; delete that file and rerun"
        )
    return data


# --------------------------------------------------------------------------- model
def model_config(model_name: str, settings: Settings, data: TrainingData) -> dict[str, Any]:
    """Constructor arguments of the model to train, without the data statistics.

    The same dictionary identifies a run: a checkpoint made with other values is refused.

    Returns
    -------
    dict
        ``nb_bins``, ``nb_channels``, ``hidden_size``, ``nb_layers``, ``unidirectional``,
        ``max_bin``, ``sample_rate``, ``n_fft``, ``n_hop`` and, for the two-branch models,
        ``n_mels``, ``feature`` (fixed by the model name), ``n_mfcc``.
    """
    from .features import bandwidth_to_max_bin

    m = settings.model
    config = dict(
        nb_bins=data.nb_bins,
        nb_channels=data.nb_channels,
        hidden_size=int(m.hidden_size),
        nb_layers=int(m.nb_layers),
        unidirectional=bool(m.unidirectional),
        max_bin=bandwidth_to_max_bin(data.sample_rate, data.n_fft, settings.stft.bandwidth),
        sample_rate=float(data.sample_rate),
        n_fft=int(data.n_fft),
        n_hop=int(data.n_hop),
    )
    feature = _branch_feature(model_name)
    if feature is not None:
        config.update(n_mels=int(m.n_mels), feature=feature, n_mfcc=int(m.n_mfcc))
    return config


def _branch_feature(model_name: str) -> str | None:
    """The second branch's feature of a two-branch model (``"mel"``, ...), None for the baseline."""
    from . import models

    return models.MODELS[canonical_model_name(model_name)][1].get("feature")


def canonical_model_name(model_name: str) -> str:
    """``"baseline"`` -> ``"openunmix"``, ``"proposed"`` -> ``"melunmix"`` (the registry's names)."""
    from . import models

    return models.canonical_model_name(model_name)


def build_training_model(model_name: str, settings: Settings, data: TrainingData) -> torch.nn.Module:
    """Build the model with its input (and mel-branch) statistics from ``data``.

    The proposed model's branch statistics are computed with the model's own
    ``mel_features`` transform, so they are exactly what the branch normalises.
    """
    from . import models

    config = model_config(model_name, settings, data)
    stats = dict(input_mean=data.input_mean, input_scale=data.input_std)
    if "feature" in config:
        # A probe model gives the branch transform; forking the generator keeps the real
        # model's initial weights independent of whether the statistics were cached.
        with torch.random.fork_rng(devices=[]):
            probe = models.build_model(model_name, **config)
        params = {k: config[k] for k in ("feature", "n_mels", "n_mfcc")}
        stats["mel_mean"], stats["mel_scale"] = data.branch_stats(probe.mel_features, **params)
    return models.build_model(model_name, **config, **stats)


# --------------------------------------------------------------------------- run state
class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` epochs.

    An epoch improves when its loss is strictly below the best so far (Open-Unmix's rule
    with ``min_delta = 0``).
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f"early-stopping patience must be at least 1 epoch, got {patience}")
        self.patience = int(patience)
        self.best = math.inf
        self.best_epoch: int | None = None
        self.nb_bad_epochs = 0

    def step(self, loss: float, epoch: int) -> bool:
        """Record an epoch's validation loss; True when it is the best so far."""
        if loss < self.best:
            self.best, self.best_epoch, self.nb_bad_epochs = float(loss), int(epoch), 0
            return True
        self.nb_bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.nb_bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "nb_bad_epochs": self.nb_bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.nb_bad_epochs = int(state["nb_bad_epochs"])


def _rng_state() -> dict[str, Any]:
    """States of every random generator training draws from, as plain types and tensors.

    Plain types keep the checkpoint loadable with ``torch.load(weights_only=True)``.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; anything else as torch reads it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available; use device 'auto' or 'cpu'")
    return device


def resolve_hyperparameters(
    settings: Settings, tuning_dir: str | os.PathLike | None = None, model_name: str | None = None,
) -> tuple[TrainSettings, dict[str, Any] | None, Path | None]:
    """The training settings to use: the profile's, with the tuner's best parameters on top.

    Parameters
    ----------
    settings : Settings
        When ``settings.train.use_tuned`` is False the profile's values are used as they are.
    tuning_dir : path, optional
        The tuning folder; default ``results/<profile>/tuning``. The parameters are read
        from its ``best_params.json`` or, with ``settings.tune.per_model``, from
        ``<tuning_dir>/<model>/best_params.json`` (see :func:`melunmix.tune.search_dir`).
    model_name : str, optional
        The model to be trained; needed with ``settings.tune.per_model``.

    Returns
    -------
    train_settings : TrainSettings
        ``settings.train`` with the tuned values (e.g. ``lr``, ``weight_decay``,
        ``lr_decay_gamma``) applied.
    tuned : dict or None
        The tuned parameters used; None when there are none (or ``use_tuned`` is off).
    source : Path or None
        The ``best_params.json`` they came from.

    Raises
    ------
    ValueError
        The file sets names that are not training settings, or its ``lr_decay_gamma`` was
        searched under another ``lr_schedule`` than this run's (a per-epoch factor is no
        plateau factor).
    """
    from .tune import BEST_PARAMS_NAME, load_best_params, load_search_summary, search_dir

    if not settings.train.use_tuned:
        return settings.train, None, None
    folder = search_dir(settings, model_name, tuning_dir)
    tuned = load_best_params(folder)
    if not tuned:
        return settings.train, None, None
    source = folder / BEST_PARAMS_NAME
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(tuned) - known)
    if unknown:
        raise ValueError(
            f"{source} sets {unknown}, which are not training settings (valid: {sorted(known)}); "
            "fix settings.tune.space and rerun the tuning, or set train.use_tuned to false"
        )
    schedule = (load_search_summary(folder) or {}).get("lr_schedule")
    if "lr_decay_gamma" in tuned and schedule is not None and schedule != settings.train.lr_schedule:
        raise ValueError(
            f"{source} holds an lr_decay_gamma searched with train.lr_schedule {schedule!r}, but this run "
            f"uses {settings.train.lr_schedule!r}; delete {folder} and rerun the tuning, or set "
            "train.use_tuned to false"
        )
    return dataclasses.replace(settings.train, **tuned), dict(tuned), source


def make_scheduler(optimizer: torch.optim.Optimizer, hp: TrainSettings):
    """The learning-rate schedule ``hp.lr_schedule`` on ``optimizer``.

    ``"plateau"``: Open-Unmix's ``ReduceLROnPlateau`` (factor ``lr_decay_gamma``, patience
    ``lr_decay_patience``, cooldown ``lr_decay_cooldown``) on the validation loss.
    ``"exponential"``: ``ExponentialLR(gamma=lr_decay_gamma)``, the rate multiplied by
    ``lr_decay_gamma`` after every epoch. Step it once per epoch with :func:`step_scheduler`;
    both keep their whole state in ``state_dict()`` (saved in the checkpoint).
    """
    if hp.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=hp.lr_decay_gamma, patience=hp.lr_decay_patience,
            cooldown=hp.lr_decay_cooldown,
        )
    if hp.lr_schedule == "exponential":
        if not hp.lr_decay_gamma > 0:
            raise ValueError(f"train.lr_decay_gamma must be a positive factor per epoch, got {hp.lr_decay_gamma}")
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=hp.lr_decay_gamma)
    raise ValueError(f"train.lr_schedule must be 'plateau' or 'exponential', got {hp.lr_schedule!r}")


def step_scheduler(scheduler, valid_loss: float) -> None:
    """End-of-epoch step: the plateau schedule looks at the validation loss, the exponential one does not."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(valid_loss)
    else:
        scheduler.step()


@dataclass
class TrainResult:
    """What a call of :func:`train` leaves behind.

    Attributes
    ----------
    model_name, target : str
    out_dir : Path
    weights : Path
        Best weights, ``<out_dir>/<target>.pth``.
    checkpoint, history_json, history_csv, settings_json : Path
    half_weights : Path
        Best weights up to epoch ``epochs // 2`` (``<out_dir>/<target>_half.pth``), for
        the study's "more epochs" comparison; absent when ``epochs < 2``.
    history : dict
        As in ``history.json``: the per-epoch lists ``epoch``, ``train_loss``,
        ``valid_loss``, ``lr``, ``epoch_time`` (seconds) and ``best_epoch``,
        ``best_valid_loss``, ``finished``, ``stop_reason``.
    best_epoch : int or None
        Epoch (1-based) of the best validation loss.
    last_epoch : int
        Last epoch trained (0 if none).
    finished : bool
        Training is over (epochs reached, early stopping or a NaN loss); False when the
        call stopped early through ``stop_after``.
    already_finished : bool
        The call found a finished run and trained nothing.
    """

    model_name: str
    target: str
    out_dir: Path
    weights: Path
    checkpoint: Path
    history_json: Path
    history_csv: Path
    settings_json: Path
    half_weights: Path
    history: dict
    best_epoch: int | None
    last_epoch: int
    finished: bool
    already_finished: bool

    @property
    def best_valid_loss(self) -> float | None:
        return self.history.get("best_valid_loss")

    @property
    def stop_reason(self) -> str | None:
        return self.history.get("stop_reason")


def _new_history(model_name: str, target: str, seed: int, signature: dict) -> dict[str, Any]:
    history: dict[str, Any] = {"model": model_name, "target": target, "seed": seed}
    history.update({column: [] for column in HISTORY_COLUMNS})
    history.update(best_epoch=None, best_valid_loss=None, finished=False, stop_reason=None, signature=signature)
    return history


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _history_for_json(history: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a diverged epoch's loss is written as null."""
    out = dict(history)
    for column in ("train_loss", "valid_loss", "lr", VALID_SDR_COLUMN):
        if column in history:
            out[column] = [_finite_or_none(v) for v in history[column]]
    return out


def _history_columns(history: dict[str, Any]) -> tuple[str, ...]:
    """The per-epoch columns of ``history``: :data:`HISTORY_COLUMNS`, plus ``valid_sdr`` when recorded."""
    return HISTORY_COLUMNS + ((VALID_SDR_COLUMN,) if VALID_SDR_COLUMN in history else ())


def _history_csv(history: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = _history_columns(history)
    writer.writerow([*columns, "best_epoch"])
    best, best_epoch = math.inf, None
    for row in zip(*(history[column] for column in columns)):
        epoch, valid = row[0], row[2]
        if valid is not None and math.isfinite(valid) and valid < best:
            best, best_epoch = valid, epoch
        writer.writerow([*("" if v is None else repr(v) if isinstance(v, float) else v for v in row),
                         "" if best_epoch is None else best_epoch])
    return buffer.getvalue()


def validation_sdr(model: torch.nn.Module, tracks, target: str, settings: Settings,
                   device: torch.device) -> float:
    """Median over ``tracks`` of the median vocals SDR (dB) of ``model``'s separation.

    The full songs are separated as the evaluation does (Wiener settings of
    ``settings.evaluate``) and scored with BSS Eval v4 (:mod:`melunmix.bsseval`, museval's
    numbers), vocals and accompaniment as a pair; the poster's "more epochs" question then
    reads in dB. The model is left in eval mode; no random state is used.
    """
    from .bsseval import score_track
    from .evaluate import load_track
    from .separate import separate

    ev = settings.evaluate
    medians = []
    for track in tracks:
        audio = load_track(track)
        out = separate(np.ascontiguousarray(audio.mixture.T, dtype=np.float32), audio.rate, {target: model},
                       niter=ev.niter, softmask=ev.softmask, residual=True, wiener_win_len=ev.wiener_win_len,
                       device=device)
        estimates = {name: np.asarray(out[name], dtype=np.float64).T for name in ("vocals", "accompaniment")}
        scores = score_track(audio.references, estimates, audio.rate, ev.win, ev.hop)
        medians.append(np.nanmedian(scores["vocals"]["SDR"]))
    return float(np.nanmedian(medians)) if medians else math.nan


def _write_history(out_dir: Path, history: dict[str, Any]) -> None:
    """Write ``history.json`` and ``history.csv``; files that already say the same are left alone."""
    texts = {
        HISTORY_JSON_NAME: json.dumps(_history_for_json(history), indent=2) + "\n",
        HISTORY_CSV_NAME: _history_csv(history),
    }
    for name, text in texts.items():
        path = out_dir / name
        if not path.exists() or path.read_text() != text:
            write_text(path, text)


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict):
        out = {}
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: values}


def _normalise(values: dict) -> dict:
    """Round-trip through JSON so tuples/lists and numpy scalars compare as equal."""
    return json.loads(json.dumps(values, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def check_run_signature(found: dict, expected: dict, path: Path, out_dir: Path, what: str = "training run") -> None:
    """Raise when ``found`` (read from ``path``) differs from ``expected``, listing what differs.

    The message names the file and tells the user to delete ``out_dir`` or choose another.
    """
    found, expected = _flatten(_normalise(found)), _flatten(_normalise(expected))
    differences = [
        f"{key}: {found.get(key, '(missing)')!r} there, {expected.get(key, '(missing)')!r} here"
        for key in sorted(set(found) | set(expected))
        if found.get(key, "(missing)") != expected.get(key, "(missing)")
    ]
    if differences:
        raise ValueError(
            f"{path} belongs to another {what} ({'; '.join(differences)}). "
            f"Delete the folder {out_dir} to start over, or choose another out_dir."
        )


def _load_checkpoint(path: Path, signature: dict, out_dir: Path, device: torch.device) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(
            f"{path} is not a readable training checkpoint ({type(err).__name__}: {err}). "
            f"Delete the folder {out_dir} to train from scratch, or choose another out_dir."
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "signature" not in state:
        raise ValueError(
            f"{path} is not a melunmix training checkpoint (format {CHECKPOINT_FORMAT}). "
            f"Delete the folder {out_dir} to train from scratch, or choose another out_dir."
        )
    check_run_signature(state["signature"], signature, path, out_dir)
    return state


def _is_complete(history: dict[str, Any], epochs: int) -> bool:
    """Whether a run with this history has nothing left to do for ``epochs`` epochs.

    A run that stopped because it reached its epoch count continues when more epochs
    are asked for; early stopping and a diverged loss are final.
    """
    if not history.get("finished"):
        return False
    if history.get("stop_reason") == "epochs":
        return len(history["epoch"]) >= epochs
    return True


def _resolve_target(settings: Settings, target: str | None) -> str:
    if target is not None:
        return str(target)
    targets = list(settings.data.targets)
    if len(targets) != 1:
        raise ValueError(
            f"settings.data.targets lists {targets}; train() fits one target per call: pass target=... "
            "(one of them) and a separate out_dir for each"
        )
    return str(targets[0])


# --------------------------------------------------------------------------- loop
def half_epoch(epochs: int) -> int:
    """The epoch whose best-so-far weights stand for "half training": ``epochs // 2`` (0: none)."""
    return int(epochs) // 2


def half_weights_name(target: str) -> str:
    """File name of the half-training weights of ``target`` in a run folder (``vocals_half.pth``)."""
    return f"{target}_half.pth"


def _spectrograms(stft, mixture: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from .features import magnitude

    return magnitude(stft(mixture)), magnitude(stft(target))


def _train_epoch(model, loader, stft, optimizer, device, bar_desc: str, progress: bool,
                 batch_sizes: list[int] | None = None) -> tuple[float, str | None]:
    """One pass over ``loader``; returns the mean loss and, if it diverged, why.

    With several ranks (``batch_sizes``: the global batch sizes, in order) ``loader``
    yields this rank's share of each global batch; its loss is weighted by the share so
    that DDP's averaged gradient is the global batch's, and the value recorded is the
    global batch's mean loss, the same on every rank.
    """
    from .distributed import all_reduce_sum, current

    world_size = current().world_size if batch_sizes is not None else 1
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=bar_desc, leave=False, disable=not progress, unit="batch")
    for index, (mixture, target) in enumerate(bar, 1):
        mixture = mixture.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        X, Y = _spectrograms(stft, mixture, target)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(X), Y)
        nb_items = mixture.shape[0]
        if world_size > 1:
            share = nb_items / batch_sizes[index - 1]
            value = all_reduce_sum(loss.detach() * share).item()  # every rank stops together
            loss = loss * (share * world_size)  # DDP divides the summed gradients by world_size
            nb_items = batch_sizes[index - 1]
        else:
            value = loss.item()
        if not math.isfinite(value):
            bar.close()
            return value, f"the training loss is {value} at batch {index}"
        loss.backward()
        optimizer.step()
        total += value * nb_items
        count += nb_items
        bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
    bar.close()
    if count == 0:
        raise ValueError("the training dataset yielded no items; check settings.data.samples_per_track")
    return total / count, None


@torch.no_grad()
def _validate(model, dataset, stft, device) -> float:
    """Mean over validation items (batch 1) of the MSE of magnitude spectrograms."""
    model.eval()
    losses = []
    for index in range(len(dataset)):
        mixture, target = dataset[index]
        X, Y = _spectrograms(stft, mixture.unsqueeze(0).to(device), target.unsqueeze(0).to(device))
        losses.append(F.mse_loss(model(X), Y).item())
    if not losses:
        raise ValueError("the validation dataset is empty; the musdb validation split has no tracks")
    return float(np.mean(losses))


def _epoch_seed(seed: int, epoch: int) -> int:
    """Shuffling (and worker seeds) of one epoch depend on (seed, epoch) only, so a
    resumed run draws the same batches as an uninterrupted one, with any number of ranks."""
    return int(seed) * 100_003 + int(epoch)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(_epoch_seed(seed, epoch))


def _git_commit() -> str | None:
    from .pipeline import git_commit

    return git_commit()


def _versions() -> dict[str, str]:
    import platform

    import melunmix

    return {"melunmix": melunmix.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def train(
    model_name: str,
    settings: Settings,
    data: TrainingData | None = None,
    out_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    *,
    target: str | None = None,
    tuning_dir: str | os.PathLike | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train (or continue training) one model for one target.

    Parameters
    ----------
    model_name : str
        ``"openunmix"`` / ``"baseline"`` or ``"melunmix"`` / ``"proposed"``.
    settings : Settings
        The profile: ``data`` (targets, seq_dur, samples_per_track, valid_seq_dur,
        nb_workers), ``stft``, ``model`` and ``train`` sections.
    data : TrainingData, optional
        From :func:`prepare_data`; made from ``settings`` when omitted.
    out_dir : path, optional
        Run folder; default ``results/<profile>/models/<model_name>`` (``.../seed<seed>``
        when the profile lists several seeds).
    seed : int, optional
        Default: the first of ``settings.train.seeds``.
    progress : bool, optional
        Progress bars for epochs and batches; default ``settings.train.progress``. The
        one-line summary per epoch is printed either way.
    target : str, optional
        Source to estimate; default the only entry of ``settings.data.targets``.
    tuning_dir : path, optional
        The tuning folder (used when ``settings.train.use_tuned``); default
        ``results/<profile>/tuning``. Its ``best_params.json`` is read, or with
        ``settings.tune.per_model`` this model's ``<tuning_dir>/<model>/best_params.json``.
    stop_after : int, optional
        Return after this many epochs of this call as if the process had been killed
        (the run is left resumable, not finished). For tests and time-sliced jobs.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        ``out_dir`` holds a checkpoint of another model or other settings (the message
        names the file and what differs), or bad settings.
    """
    from . import datasets, distributed
    from .datasets.torch_datasets import GlobalBatchSampler
    from .features import STFT

    model_name_canonical = canonical_model_name(model_name)
    target = _resolve_target(settings, target)
    seed = int(settings.train.seeds[0] if seed is None else seed)
    if out_dir is None:
        several_seeds = len(settings.train.seeds) > 1
        out_dir = run_paths(settings).model_dir(model_name_canonical, seed if several_seeds else None)
    out_dir = Path(out_dir)
    progress = settings.train.progress if progress is None else bool(progress)
    hp, tuned, tuned_from = resolve_hyperparameters(settings, tuning_dir, model_name=model_name_canonical)
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be a positive number of epochs or None, got {stop_after!r}")
    if hp.epochs < 1:
        raise ValueError(f"train.epochs must be at least 1, got {hp.epochs}")
    if isinstance(hp.valid_sdr_every, bool) or int(hp.valid_sdr_every) < 0:
        raise ValueError(f"train.valid_sdr_every must be 0 (off) or a number of epochs, got {hp.valid_sdr_every!r}")
    if hp.valid_sdr_every and target != "vocals":
        raise ValueError(f"train.valid_sdr_every scores vocals against accompaniment; the target is {target!r}: "
                         "set it to 0 for other targets")
    if data is None:
        data = prepare_data(settings, progress=progress)
    if (data.n_fft, data.n_hop) != (settings.stft.n_fft, settings.stft.n_hop):
        raise ValueError(
            f"data was prepared for n_fft={data.n_fft}, n_hop={data.n_hop} but settings.stft asks for "
            f"n_fft={settings.stft.n_fft}, n_hop={settings.stft.n_hop}; call prepare_data with these settings"
        )
    # Under torchrun every rank runs this function: rank 0 alone validates and writes files.
    ranks = distributed.current()
    device = distributed.rank_device(resolve_device(hp.device), ranks)
    progress = progress and ranks.is_main

    config = model_config(model_name_canonical, settings, data)
    signature = {
        "model": model_name_canonical,
        "target": target,
        "seed": seed,
        "config": config,
        "train": {name: getattr(hp, name) for name in TRAJECTORY_SETTINGS},
        "data": {
            "seq_dur": settings.data.seq_dur,
            "samples_per_track": settings.data.samples_per_track,
            "valid_seq_dur": settings.data.valid_seq_dur,
            "bandwidth": settings.stft.bandwidth,
            "fingerprint": data.fingerprint,
        },
    }
    files = {
        "weights": out_dir / f"{target}.pth",
        "checkpoint": out_dir / CHECKPOINT_NAME,
        "history_json": out_dir / HISTORY_JSON_NAME,
        "history_csv": out_dir / HISTORY_CSV_NAME,
        "settings_json": out_dir / SETTINGS_JSON_NAME,
        "half_weights": out_dir / half_weights_name(target),
    }

    def result(history: dict, already: bool) -> TrainResult:
        epochs_done = history["epoch"]
        return TrainResult(
            model_name=model_name_canonical, target=target, out_dir=out_dir, history=history,
            best_epoch=history["best_epoch"], last_epoch=epochs_done[-1] if epochs_done else 0,
            finished=bool(history["finished"]) and _is_complete(history, hp.epochs),
            already_finished=already, **files,
        )

    state = _load_checkpoint(files["checkpoint"], signature, out_dir, device)
    if state is None and files["history_json"].exists() and files["weights"].exists():
        # The checkpoint of a finished run may be deleted to save space; its history
        # still says the run is complete.
        history = read_json(files["history_json"])
        check_run_signature(history.get("signature", {}), signature, files["history_json"], out_dir)
        if _is_complete(history, hp.epochs):
            return result(history, already=True)
    if state is not None and _is_complete(state["history"], hp.epochs):
        if ranks.is_main:
            _write_history(out_dir, state["history"])  # in case the kill came between the two writes
        return result(state["history"], already=True)

    from . import models

    _seed_everything(seed)
    model = build_training_model(model_name_canonical, settings, data).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    scheduler = make_scheduler(optimizer, hp)
    stopper = EarlyStopping(hp.patience)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stopper.load_state_dict(state["early_stopping"])
        history = state["history"]
        # Resuming an unfinished run, or one that reached fewer epochs than now asked for.
        history.update(finished=False, stop_reason=None)
        _set_rng_state(state["rng"])
        if ranks.is_main:
            _write_history(out_dir, history)
    elif ranks.is_main:
        history = _new_history(model_name_canonical, target, seed, signature)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(files["settings_json"], {
            "model": model_name_canonical,
            "target": target,
            "seed": seed,
            "model_config": config,
            "train": dataclasses.asdict(hp),
            "tuned_params": tuned,
            "tuned_from": None if tuned_from is None else str(tuned_from),
            "device": str(device),
            "data_root": str(data.root),
            "data_fingerprint": data.fingerprint,
            "sample_rate": data.sample_rate,
            "train_tracks": [t.name for t in data.train_tracks],
            "valid_tracks": [t.name for t in data.valid_tracks],
            "settings": settings.to_dict(),
            "git_commit": _git_commit(),
            "versions": _versions(),
            **({"distributed": {"world_size": ranks.world_size, "backend": torch.distributed.get_backend()}}
               if ranks.is_distributed else {}),
        })
    else:
        history = _new_history(model_name_canonical, target, seed, signature)

    # prepare_data left the tracks WAV-backed at data.sample_rate: no resampling here.
    train_set = datasets.TrainDataset(
        data.train_tracks, targets=[target], seq_dur=settings.data.seq_dur,
        samples_per_track=settings.data.samples_per_track, seed=seed, sample_rate=data.sample_rate,
        progress=False,
    )
    valid_set = datasets.ValidDataset(
        data.valid_tracks, targets=[target], seq_dur=settings.data.valid_seq_dur,
        sample_rate=data.sample_rate, progress=False,
    )
    # Open-Unmix trains on uncentred frames (its train script's encoder, center=False); the
    # scaler statistics are computed the same way, and separation centres as its Separator.
    stft = STFT(data.n_fft, data.n_hop, center=TRAIN_STFT_CENTER).to(device)
    trained = model  # what the steps run: the model itself, or its DDP wrapper
    if ranks.is_distributed:
        # Checked before any work: every rank needs a share of every global batch.
        GlobalBatchSampler(len(train_set), hp.batch_size, 0, ranks.rank, ranks.world_size)
        distributed.sync_batchnorm(model)
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    label = f"{model_name_canonical}/{target}"
    first = len(history["epoch"]) + 1
    epochs_this_call = 0
    bar = tqdm(range(first, hp.epochs + 1), desc=label, initial=first - 1, total=hp.epochs,
               disable=not progress, unit="epoch")
    for epoch in bar:
        start = time.perf_counter()
        train_set.set_epoch(epoch)
        if ranks.is_distributed:
            torch.manual_seed(distributed.rank_seed(seed, epoch, ranks.rank))  # dropout masks per rank
        # The order DataLoader(shuffle=True, generator=...) draws, or this rank's share of it;
        # the generator still seeds the loader's workers as before.
        sampler = GlobalBatchSampler(len(train_set), hp.batch_size, _epoch_seed(seed, epoch), ranks.rank,
                                     ranks.world_size)
        loader = torch.utils.data.DataLoader(
            train_set, batch_sampler=sampler, num_workers=settings.data.nb_workers,
            generator=_epoch_generator(seed, epoch), pin_memory=device.type == "cuda",
        )
        lr = float(optimizer.param_groups[0]["lr"])
        train_loss, diverged = _train_epoch(
            trained, loader, stft, optimizer, device, f"epoch {epoch}", progress,
            batch_sizes=sampler.global_batch_sizes() if ranks.is_distributed else None,
        )
        valid_loss = math.nan
        sdr_every = int(hp.valid_sdr_every)
        sdr = math.nan
        if ranks.is_main:
            if diverged is None:
                valid_loss = _validate(model, valid_set, stft, device)
                if not math.isfinite(valid_loss):
                    diverged = f"the validation loss is {valid_loss}"
            if sdr_every > 0 and diverged is None and (epoch % sdr_every == 0 or epoch >= hp.epochs):
                sdr = validation_sdr(model, data.valid_tracks, target, settings, device)
        # The other ranks wait here for rank 0's validation and decide as it does.
        valid_loss, diverged, sdr = distributed.broadcast([valid_loss, diverged, sdr], ranks)
        if sdr_every > 0:
            column = history.setdefault(VALID_SDR_COLUMN, [])
            column.extend([None] * (len(history["epoch"]) - len(column)))  # epochs run without it
        elapsed = time.perf_counter() - start
        for column, value in zip(HISTORY_COLUMNS, (epoch, train_loss, valid_loss, lr, elapsed)):
            history[column].append(value)
        if sdr_every > 0:
            history[VALID_SDR_COLUMN].append(_finite_or_none(sdr))
        improved = False
        if diverged is None:
            step_scheduler(scheduler, valid_loss)
            improved = stopper.step(valid_loss, epoch)
            history["best_epoch"] = stopper.best_epoch
            history["best_valid_loss"] = stopper.best
        if improved and ranks.is_main:
            models.save_model(model, files["weights"], target=target, epoch=epoch,
                              history=_history_for_json(history))
        if epoch == half_epoch(hp.epochs) and stopper.best_epoch and ranks.is_main:
            # What this run would have given had it stopped here: the best weights so far
            # (the "more epochs" comparison scores them beside the final ones).
            with atomic_path(files["half_weights"]) as tmp:
                shutil.copyfile(files["weights"], tmp)
        message = None
        if diverged is not None:
            best = (f"the best weights so far (epoch {stopper.best_epoch}) are in {files['weights']}"
                    if stopper.best_epoch else "no weights were saved")
            message = (
                f"{label}: training stopped at epoch {epoch}: {diverged}. The learning rate "
                f"({lr:.3g}) may be too high, or the data hold NaN/inf; {best}. "
                f"Delete {out_dir} and train again with other settings."
            )
            history.update(finished=True, stop_reason="nan", stop_message=message)
        elif stopper.should_stop:
            history.update(finished=True, stop_reason="early_stopping")
        elif epoch >= hp.epochs:
            history.update(finished=True, stop_reason="epochs")
        # The checkpoint is the commit point of an epoch: a kill before it repeats the
        # epoch (deterministically), a kill after it loses nothing.
        if ranks.is_main:
            checkpoint = {
                "format": CHECKPOINT_FORMAT,
                "signature": signature,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "early_stopping": stopper.state_dict(),
                "rng": _rng_state(),
                "dataset_epoch": epoch,
                "history": history,
            }
            with atomic_path(files["checkpoint"]) as tmp:
                torch.save(checkpoint, tmp)
            _write_history(out_dir, history)

        summary = (
            f"{label} epoch {epoch}/{hp.epochs}: train loss {train_loss:.5g}, valid loss {valid_loss:.5g}, "
            f"lr {lr:.3g}, {elapsed:.1f} s" + (" (best)" if improved else "")
            + (f", valid vocals SDR {history[VALID_SDR_COLUMN][-1]:.2f} dB"
               if history.get(VALID_SDR_COLUMN) and history[VALID_SDR_COLUMN][-1] is not None else "")
        )
        if ranks.is_main:
            tqdm.write(summary)
            logger.info(summary)
            if message is not None:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
        if history["finished"]:
            break
        epochs_this_call += 1
        if stop_after is not None and epochs_this_call >= stop_after:
            break
    bar.close()
    distributed.barrier(ranks)  # rank 0's files are written when any rank returns
    return result(history, already=False)


# --------------------------------------------------------------------------- entry point
def train_profile(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    stand_in: bool = False,
    progress: bool | None = None,
) -> dict[str, TrainResult]:
    """Train a profile's models and seeds (what notebook 04 trains), in one or several processes.

    Started by ``torchrun`` (``torchrun --nproc_per_node N -m melunmix.train --profile X``),
    every process runs this function: it joins the process group
    (:func:`melunmix.distributed.init_from_environment`: NCCL on GPUs, gloo on CPUs), rank
    0 prepares the data first (dataset, caches, statistics) and the others then read it,
    and each run of :func:`train` is data parallel. Without ``torchrun`` it is one process.
    Finished runs are skipped and interrupted ones resume from their checkpoint, with any
    number of processes.

    Parameters
    ----------
    profile : str
        Profile name or YAML path.
    data_root, results_dir, stand_in
        As :func:`melunmix.study.open_run`.
    models : list of str, optional
        Train only these models of the profile (default: all of ``train.models``).
    seeds : list of int, optional
        Train only these seeds of the profile (default: all of ``train.seeds``).
    progress : bool, optional
        Progress bars (rank 0 only); default ``settings.train.progress``.

    Returns
    -------
    dict of str to TrainResult
        By evaluation method name (``openunmix``, ``melunmix-seed42``, ...).

    Raises
    ------
    ValueError
        A model or seed the profile does not train (the message lists those it does), and
        see :func:`melunmix.study.open_run`.
    """
    from . import distributed
    from .config import load_profile
    from .study import model_runs, open_run

    # Bad arguments fail in every process before any joins the group.
    settings = load_profile(profile)
    known_models = [canonical_model_name(m) for m in settings.train.models]
    wanted_models = None if not models else [canonical_model_name(m) for m in models]
    unknown = [m for m in wanted_models or [] if m not in known_models]
    unknown_seeds = [s for s in seeds or [] if int(s) not in [int(x) for x in settings.train.seeds]]
    if unknown or unknown_seeds:
        raise ValueError(
            f"profile {settings.name!r} trains models {known_models} with seeds {list(settings.train.seeds)}; "
            f"{unknown + unknown_seeds} not among them (add them to the profile's train.models / train.seeds)"
        )
    joined = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ranks = distributed.init_from_environment(settings.train.device)
    try:
        show = (settings.train.progress if progress is None else bool(progress)) and ranks.is_main
        with distributed.main_first(ranks):
            run = open_run(profile, data_root, results_dir, progress=show, stand_in=stand_in)
            data = prepare_data(run.settings, run.data_root, stats_dir=run.paths.features, progress=show)
        results = {}
        for item in model_runs(run):
            if wanted_models is not None and item.model not in wanted_models:
                continue
            if seeds and item.seed not in [int(s) for s in seeds]:
                continue
            results[item.method] = train(item.model, run.settings, data, out_dir=item.out_dir, seed=item.seed,
                                         progress=show, tuning_dir=run.paths.tuning)
        return results
    finally:
        if joined:
            distributed.shutdown()


if __name__ == "__main__":  # python -m melunmix.train ...: the same as `melunmix train ...`
    import sys

    from melunmix.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
