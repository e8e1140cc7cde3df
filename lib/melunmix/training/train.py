"""Training: one model for one target with the Open-Unmix recipe, resumable to the epoch.

The baseline (``openunmix``) and the proposed model (``melunmix``) go through the same
code: the dataset yields waveforms, the STFT runs on the training device inside the loop,
and the loss is the mean squared error between the model's estimate and the magnitude
spectrogram of the target (all bins, both channels), as Open-Unmix trains.

Files written to ``out_dir`` (atomically, after every epoch; names owned by :class:`RunFiles`):

- ``<target>.pth``: the best weights so far (lowest validation loss), readable with
  :func:`melunmix.models.networks.load_model`;
- ``<target>_half.pth``: the best weights up to epoch ``epochs // 2`` (:func:`half_epoch`);
- ``checkpoint.pt``: everything needed to continue (model, optimizer, scheduler,
  early-stopping state, the random generators of python/numpy/torch, the epoch, the
  history, the run's signature);
- ``history.json`` / ``history.csv``: per epoch the training and validation loss, the
  learning rate and the epoch time, plus the best epoch and why training stopped;
- ``settings.json``: the resolved settings, the model's constructor arguments, the
  tuned parameters used (if any), the git commit and the library versions
  (:mod:`melunmix.base.provenance`).

:func:`train` reads as the recipe; a :class:`Trainer` holds its parts: the run's
signature and files (what a checkpoint must match, and the one way a folder is resumed:
:meth:`RunFiles.read`), the model with its optimiser, schedule and early stopping, and
the epoch (train step, validation, schedule, early stopping, divergence, commit point).

Calling :func:`train` again with the same arguments after a kill continues from the last
checkpoint; on CPU with the same seed the continued history equals an uninterrupted run's
exactly. A finished run returns at once.

Under ``torchrun`` (:func:`melunmix.study.steps.train_profile`, ``torchrun --nproc_per_node N -m melunmix.training.train``)
every process runs :func:`train` and the run is data parallel: each rank trains on its
share of every global batch of ``train.batch_size`` items, batch normalisation sees the
whole global batch, and rank 0 alone validates and writes the files above
(:mod:`melunmix.training.distributed`). The checkpoint does not depend on the number of ranks, so a
run continues with any number.

Example
-------
>>> from melunmix.base.config import load_profile
>>> from melunmix.training.train import prepare_data, train
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

from .. import datasets
from . import distributed
from ..models import networks as models
from ..base import provenance
from ..dsp.bsseval import score_track
from ..base.config import Settings, TrainSettings, flat_keys, run_paths
from ..datasets.torch_datasets import GlobalBatchSampler
from ..base.devices import resolve_device
from .distributed import all_reduce_sum, current
from ..dsp.features import STFT, bandwidth_to_max_bin, magnitude
from ..base.files import atomic_path, read_json, write_json, write_text
from .hyperparameters import resolve_hyperparameters
from ..models.model_files import models_at
from ..models.networks import save_model
from ..base.names import (CHECKPOINT_NAME, HISTORY_CSV_NAME, HISTORY_JSON_NAME, SETTINGS_JSON_NAME,
                          canonical_model_name)
from ..separation.separate import separate
from ..scoring.track_audio import load_track

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout; a file of another version is refused, not guessed at.
CHECKPOINT_FORMAT = 1
#: What a checkpoint holds, every entry read on resume (``epoch`` is where it continues).
CHECKPOINT_KEYS = ("format", "signature", "epoch", "model", "optimizer", "scheduler", "early_stopping",
                   "rng", "history")
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

    m = settings.model
    config = dict(
        nb_bins=data.nb_stft_bins,
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
    elif _width_reference(model_name) is not None:  # counts the reference's branch too
        config.update(n_mels=int(m.n_mels), n_mfcc=int(m.n_mfcc))
    return config


def _width_reference(model_name: str) -> str | None:
    """The model whose parameter count a width-matched control matches, else None."""

    return models.ARCHITECTURES[canonical_model_name(model_name)][1].get("width_of")


def _branch_feature(model_name: str) -> str | None:
    """The second branch's feature of a two-branch model (``"mel"``, ...), None for the baseline."""

    return models.ARCHITECTURES[canonical_model_name(model_name)][1].get("feature")


def build_training_model(model_name: str, settings: Settings, data: TrainingData,
                         target: str | None = None) -> torch.nn.Module:
    """Build the model with its input (and mel-branch) statistics from ``data``.

    The proposed model's branch statistics are computed with the model's own
    ``branch_features`` transform, so they are exactly what the branch normalises. With
    ``settings.train.init_weights`` the model starts from those weights
    (:func:`copy_initial_weights`; ``target``, default the first of
    ``settings.data.targets``, picks the model of an Open-Unmix folder).
    """

    config = model_config(model_name, settings, data)
    stats = dict(input_mean=data.input_mean, input_scale=data.input_std)
    if "feature" in config:
        # A probe model gives the branch transform; forking the generator keeps the real
        # model's initial weights independent of whether the statistics were cached.
        with torch.random.fork_rng(devices=[]):
            probe = models.build_model(model_name, **config)
        params = {k: config[k] for k in ("feature", "n_mels", "n_mfcc")}
        stats["mel_mean"], stats["mel_scale"] = data.branch_stats(probe.branch_features, **params)
    model = models.build_model(model_name, **config, **stats)
    if settings.train.init_weights:
        copy_initial_weights(model, settings.train.init_weights, target=target or settings.data.targets[0])
    return model


def copy_initial_weights(model: torch.nn.Module, source: str | os.PathLike, target: str = "vocals") -> list[str]:
    """Start ``model`` from trained weights (``train.init_weights``): every tensor of the
    source whose name and shape match ``model``'s is copied (the input and output scaling
    included, so a fine-tuned model keeps its source's normalisation).

    Parameters
    ----------
    model : nn.Module
        A freshly built model (:func:`build_training_model`).
    source : path
        A melunmix model file, or an Open-Unmix model folder or weights file
        (:func:`melunmix.models.umx_files.load_openunmix`; its ``target`` model).
    target : str
        Which model of an Open-Unmix folder.

    Returns
    -------
    list of str
        The names copied.

    Raises
    ------
    FileNotFoundError
        No such source.
    ValueError
        Not a model; a model of another target; another STFT or sample rate; a layer of
        the same name with another size (hidden size, channels, bandwidth); nothing shared.
    """

    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"train.init_weights {path}: no such file or folder")
    try:
        (theirs, trained), *_ = models_at(path, targets=None if path.is_file() else [target])
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"train.init_weights {err}") from None
    if theirs and theirs != target:
        raise ValueError(f"train.init_weights {path} is a {theirs!r} model, this run trains {target!r}; "
                         f"give the {target} model")
    for name in ("sample_rate", "n_fft", "n_hop"):
        ours, theirs = getattr(model, name, None), getattr(trained, name, None)
        if ours is not None and theirs is not None and float(ours) != float(theirs):
            raise ValueError(f"train.init_weights {path}: its {name} is {theirs:g}, this run's model has {ours:g}; "
                             "train at the weights' rate and STFT (data.sample_rate, stft.n_fft, stft.n_hop)")
    state, wanted = trained.state_dict(), model.state_dict()
    misfits = [f"{name} {tuple(value.shape)} (here {tuple(wanted[name].shape)})" for name, value in state.items()
               if name in wanted and wanted[name].shape != value.shape]
    if misfits:  # half a model copied would pass for a fine-tuned one
        raise ValueError(f"train.init_weights {path}: its layers have other sizes than this run's model: "
                         f"{', '.join(misfits[:3])}{' ...' if len(misfits) > 3 else ''}; set model.hidden_size, "
                         "the channels and stft.bandwidth as the weights were trained")
    copied = [name for name in state if name in wanted]
    if not copied:
        raise ValueError(f"train.init_weights {path}: none of its tensors is a layer of {type(model).__name__}")
    with torch.no_grad():
        for name in copied:
            wanted[name].copy_(state[name])
    logger.info("started from %s: %d of %d tensors copied", path, len(copied), len(wanted))
    return copied

# --------------------------------------------------------------------------- schedule, early stopping
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


# --------------------------------------------------------------------------- random state
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


def _epoch_seed(seed: int, epoch: int) -> int:
    """Shuffling (and worker seeds) of one epoch depend on (seed, epoch) only, so a
    resumed run draws the same batches as an uninterrupted one, with any number of ranks."""
    return int(seed) * 100_003 + int(epoch)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(_epoch_seed(seed, epoch))


# --------------------------------------------------------------------------- history
def _new_history(model_name: str, target: str, seed: int, signature: dict) -> dict[str, Any]:
    history: dict[str, Any] = {"model": model_name, "target": target, "seed": seed}
    history.update({column: [] for column in HISTORY_COLUMNS})
    history.update(best_epoch=None, best_valid_loss=None, finished=False, stop_reason=None, signature=signature)
    return history


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def history_for_json(history: dict[str, Any]) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- a run's files
def weights_name(target: str) -> str:
    """File name of the best weights of ``target`` in a run folder (``vocals.pth``)."""
    return f"{target}.pth"


@dataclass(frozen=True)
class SavedRun:
    """What an earlier call of :func:`train` left in a run folder (:meth:`RunFiles.read`).

    Attributes
    ----------
    history : dict
        The run's history (as ``history.json``).
    state : dict or None
        The checkpoint (:data:`CHECKPOINT_KEYS`) to continue from; None when only a
        finished run's history and weights remain (its checkpoint deleted to save space).
    """

    history: dict
    state: dict | None


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run: every name in the run folder is decided here.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    target : str
        The source the run estimates (names the weights files).
    """

    out_dir: Path
    target: str

    @property
    def weights(self) -> Path:
        return self.out_dir / weights_name(self.target)

    @property
    def half_weights(self) -> Path:
        return self.out_dir / half_weights_name(self.target)

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    @property
    def history_json(self) -> Path:
        return self.out_dir / HISTORY_JSON_NAME

    @property
    def history_csv(self) -> Path:
        return self.out_dir / HISTORY_CSV_NAME

    @property
    def settings_json(self) -> Path:
        return self.out_dir / SETTINGS_JSON_NAME

    def paths(self) -> dict[str, Path]:
        """The files by :class:`TrainResult` field name."""
        names = ("weights", "checkpoint", "history_json", "history_csv", "settings_json", "half_weights")
        return {name: getattr(self, name) for name in names}

    def read(self, signature: dict, device: torch.device) -> SavedRun | None:
        """What an earlier call left here, checked against this run's ``signature``.

        The checkpoint when there is one; else, when the checkpoint of a run was deleted
        to save space, its history (if its weights are there too): it says whether the
        run is complete. None for a new run.

        Raises
        ------
        ValueError
            The checkpoint (or history) belongs to another run, or is not a readable
            checkpoint of this format; the message names the file and says to delete
            ``out_dir`` or choose another.
        """
        state = _load_checkpoint(self.checkpoint, signature, self.out_dir, device)
        if state is not None:
            return SavedRun(state["history"], state)
        if self.history_json.exists() and self.weights.exists():
            history = read_json(self.history_json)
            check_run_signature(history.get("signature", {}), signature, self.history_json, self.out_dir)
            return SavedRun(history, None)
        return None

    def write_settings(self, record: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.settings_json, record)

    def write_history(self, history: dict[str, Any]) -> None:
        """Write ``history.json`` and ``history.csv``; files that already say the same are left alone."""
        texts = {
            self.history_json: json.dumps(history_for_json(history), indent=2) + "\n",
            self.history_csv: _history_csv(history),
        }
        for path, text in texts.items():
            if not path.exists() or path.read_text() != text:
                write_text(path, text)

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def save_weights(self, model: torch.nn.Module, epoch: int, history: dict[str, Any]) -> None:

        save_model(model, self.weights, target=self.target, epoch=epoch, history=history_for_json(history))

    def keep_half_weights(self) -> None:
        """The best weights so far become the half-training weights."""
        with atomic_path(self.half_weights) as tmp:
            shutil.copyfile(self.weights, tmp)


def _load_checkpoint(path: Path, signature: dict, out_dir: Path, device: torch.device) -> dict | None:
    if not path.exists():
        return None
    again = f"Delete the folder {out_dir} to train from scratch, or choose another output folder (--results-dir)."
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(
            f"{path} is not a readable training checkpoint ({type(err).__name__}: {err}). {again}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "signature" not in state:
        raise ValueError(f"{path} is not a melunmix training checkpoint (format {CHECKPOINT_FORMAT}). {again}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise ValueError(f"{path} is an incomplete training checkpoint (no {', '.join(missing)}). {again}")
    check_run_signature(state["signature"], signature, path, out_dir)
    if state["epoch"] != len(state["history"]["epoch"]):
        raise ValueError(f"{path} says epoch {state['epoch']} but its history has "
                         f"{len(state['history']['epoch'])} epochs. {again}")
    return state


def _normalise(values: dict) -> dict:
    """Round-trip through JSON so tuples/lists and numpy scalars compare as equal."""
    return json.loads(json.dumps(values, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def check_run_signature(found: dict, expected: dict, path: Path, out_dir: Path, what: str = "training run") -> None:
    """Raise when ``found`` (read from ``path``) differs from ``expected``, listing what differs.

    The message names the file and tells the user to delete ``out_dir`` or choose another.
    """
    found, expected = flat_keys(_normalise(found)), flat_keys(_normalise(expected))
    differences = [
        f"{key}: {found.get(key, '(missing)')!r} there, {expected.get(key, '(missing)')!r} here"
        for key in sorted(set(found) | set(expected))
        if found.get(key, "(missing)") != expected.get(key, "(missing)")
    ]
    if differences:
        raise ValueError(
            f"{path} belongs to another {what} ({'; '.join(differences)}). "
            f"Delete the folder {out_dir} to start over, or choose another output folder (--results-dir)."
        )


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


def half_epoch(epochs: int) -> int:
    """The epoch whose best-so-far weights stand for "half training": ``epochs // 2`` (0: none)."""
    return int(epochs) // 2


def half_weights_name(target: str) -> str:
    """File name of the half-training weights of ``target`` in a run folder (``vocals_half.pth``)."""
    return f"{target}_half.pth"


# --------------------------------------------------------------------------- the epoch's steps
def _spectrograms(stft, mixture: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:

    return magnitude(stft(mixture)), magnitude(stft(target))


def _train_epoch(model, loader, stft, optimizer, device, bar_desc: str, progress: bool,
                 batch_sizes: list[int] | None = None) -> tuple[float, str | None]:
    """One pass over ``loader``; returns the mean loss and, if it diverged, why.

    With several ranks (``batch_sizes``: the global batch sizes, in order) ``loader``
    yields this rank's share of each global batch; its loss is weighted by the share so
    that DDP's averaged gradient is the global batch's, and the value recorded is the
    global batch's mean loss, the same on every rank.
    """

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


def validation_sdr(model: torch.nn.Module, tracks, target: str, settings: Settings,
                   device: torch.device) -> float:
    """Median over ``tracks`` of the median vocals SDR (dB) of ``model``'s separation.

    The full songs are separated as the evaluation does (Wiener settings of
    ``settings.evaluate``) and scored with BSS Eval v4 (:mod:`melunmix.dsp.bsseval`, museval's
    numbers), vocals and accompaniment as a pair; the poster's "more epochs" question then
    reads in dB. The model is left in eval mode; no random state is used.
    """

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


# --------------------------------------------------------------------------- the trainer
@dataclass
class EpochOutcome:
    """One epoch as :meth:`Trainer.run_epoch` saw it.

    Attributes
    ----------
    epoch : int
        1-based.
    train_loss, valid_loss : float
        Mean training loss; validation loss (NaN when the epoch diverged in training).
    lr : float
        Learning rate the epoch trained with.
    seconds : float
        Wall time of the epoch.
    sdr : float
        Median validation vocals SDR in dB (NaN when not computed this epoch).
    diverged : str or None
        Why the epoch diverged (a NaN/inf loss), or None.
    improved : bool
        The validation loss is the best so far (the weights file is this epoch's).
    message : str or None
        The warning of a diverged run (set by :meth:`Trainer.decide_stop`).
    """

    epoch: int
    train_loss: float
    valid_loss: float
    lr: float
    seconds: float
    sdr: float = math.nan
    diverged: str | None = None
    improved: bool = False
    message: str | None = None


class Trainer:
    """One training run: its signature and files, its model and optimiser state, its epochs.

    :func:`train` is the recipe that uses it: read what the folder holds
    (:meth:`RunFiles.read`), return a complete run as it is, else :meth:`start` (fresh or
    restored from the checkpoint) and :meth:`fit`.

    Parameters
    ----------
    model_name, settings, data, out_dir, seed, target, tuning_dir, progress
        As :func:`train` (``data`` is prepared when None).

    Attributes
    ----------
    hp : TrainSettings
        The training settings, tuned values applied (:func:`resolve_hyperparameters`).
    signature : dict
        What a checkpoint in ``out_dir`` must match: model, target, seed, constructor
        arguments, the :data:`TRAJECTORY_SETTINGS`, the data's excerpt settings and fingerprint.
    files : RunFiles
    device : torch.device
        This rank's device (:func:`melunmix.base.devices.resolve_device` of ``hp.device``).
    ranks : melunmix.training.distributed.Ranks
    history : dict
        Set by :meth:`start`: the history so far, updated every epoch.
    epoch : int
        The last epoch done (0 before the first).
    """

    def __init__(self, model_name: str, settings: Settings, data: TrainingData | None,
                 out_dir: str | os.PathLike | None, *, seed: int | None, target: str | None,
                 tuning_dir: str | os.PathLike | None, progress: bool | None):
        self.model_name = canonical_model_name(model_name)
        self.settings = settings
        self.target = _resolve_target(settings, target)
        self.seed = int(settings.train.seeds[0] if seed is None else seed)
        if out_dir is None:
            several_seeds = len(settings.train.seeds) > 1
            out_dir = run_paths(settings).model_dir(self.model_name, self.seed if several_seeds else None)
        self.files = RunFiles(Path(out_dir), self.target)
        progress = settings.train.progress if progress is None else bool(progress)
        self.hp, self.tuned, self.tuned_from = resolve_hyperparameters(settings, tuning_dir,
                                                                       model_name=self.model_name)
        _check_train_settings(self.hp, self.target)
        self.data = prepare_data(settings, progress=progress) if data is None else data
        if (self.data.n_fft, self.data.n_hop) != (settings.stft.n_fft, settings.stft.n_hop):
            raise ValueError(
                f"data was prepared for n_fft={self.data.n_fft}, n_hop={self.data.n_hop} but settings.stft asks "
                f"for n_fft={settings.stft.n_fft}, n_hop={settings.stft.n_hop}; call prepare_data with these settings"
            )
        # Under torchrun every rank makes a Trainer: rank 0 alone validates and writes files.
        self.ranks = distributed.current()
        self.device = distributed.rank_device(resolve_device(self.hp.device), self.ranks)
        self.progress = progress and self.ranks.is_main
        self.config = model_config(self.model_name, settings, self.data)
        self.signature = self._signature()
        self.label = f"{self.model_name}/{self.target}"
        self.history: dict[str, Any] = {}
        self.epoch = 0

    def _signature(self) -> dict[str, Any]:
        data = self.settings.data
        return {
            "model": self.model_name,
            "target": self.target,
            "seed": self.seed,
            "config": self.config,
            "train": {name: getattr(self.hp, name) for name in TRAJECTORY_SETTINGS},
            "data": {
                "seq_dur": data.seq_dur,
                "samples_per_track": data.samples_per_track,
                "valid_seq_dur": data.valid_seq_dur,
                "bandwidth": self.settings.stft.bandwidth,
                "fingerprint": self.data.fingerprint,
            },
        }

    def settings_record(self) -> dict[str, Any]:
        """What ``settings.json`` holds: the resolved settings, data, provenance."""
        data = self.data
        return {
            "model": self.model_name,
            "target": self.target,
            "seed": self.seed,
            "model_config": self.config,
            "train": dataclasses.asdict(self.hp),
            "tuned_params": self.tuned,
            "tuned_from": None if self.tuned_from is None else str(self.tuned_from),
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "data_root": str(data.root),
            "data_fingerprint": data.fingerprint,
            "sample_rate": data.sample_rate,
            "train_tracks": [t.name for t in data.train_tracks],
            "valid_tracks": [t.name for t in data.valid_tracks],
            "settings": self.settings.to_dict(),
            "git_commit": provenance.git_commit(),
            "versions": provenance.package_versions(),
            **({"distributed": {"world_size": self.ranks.world_size, "backend": torch.distributed.get_backend()}}
               if self.ranks.is_distributed else {}),
        }

    # ------------------------------------------------------------------ state
    def start(self, saved: SavedRun | None) -> None:
        """Build the model, optimiser, schedule and early stopping from the run's seed, then
        restore them from ``saved``'s checkpoint, or write ``settings.json`` for a new run;
        then the datasets and the STFT."""

        _seed_everything(self.seed)
        self.model = build_training_model(self.model_name, self.settings, self.data, self.target).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hp.lr, weight_decay=self.hp.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, self.hp)
        self.stopper = EarlyStopping(self.hp.patience)
        if saved is not None and saved.state is not None:
            self.restore(saved.state)
        else:
            self.history = _new_history(self.model_name, self.target, self.seed, self.signature)
            if self.ranks.is_main:
                self.files.write_settings(self.settings_record())
        self._make_datasets()
        # Open-Unmix trains on uncentred frames (its train script's encoder, center=False); the
        # scaler statistics are computed the same way, and separation centres as its Separator.
        self.stft = STFT(self.data.n_fft, self.data.n_hop, center=TRAIN_STFT_CENTER).to(self.device)
        self.trained = self.model  # what the steps run: the model itself, or its DDP wrapper
        if self.ranks.is_distributed:
            # Checked before any work: every rank needs a share of every global batch.
            GlobalBatchSampler(len(self.train_set), self.hp.batch_size, 0, self.ranks.rank, self.ranks.world_size)
            distributed.sync_batchnorm(self.model)
            self.trained = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint (:meth:`checkpoint`): model, optimiser, schedule, early
        stopping, history, random generators, epoch."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.history = state["history"]
        self.epoch = int(state["epoch"])
        # Resuming an unfinished run, or one that reached fewer epochs than now asked for.
        self.history.update(finished=False, stop_reason=None)
        _set_rng_state(state["rng"])
        if self.ranks.is_main:
            self.files.write_history(self.history)

    def checkpoint(self) -> dict[str, Any]:
        """Everything :meth:`restore` reads (:data:`CHECKPOINT_KEYS`), as plain types and tensors."""
        return {
            "format": CHECKPOINT_FORMAT,
            "signature": self.signature,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "rng": _rng_state(),
            "history": self.history,
        }

    def _make_datasets(self) -> None:

        data, settings = self.data, self.settings
        # prepare_data left the tracks WAV-backed at data.sample_rate: no resampling here.
        self.train_set = datasets.TrainDataset(
            data.train_tracks, targets=[self.target], seq_dur=settings.data.seq_dur,
            samples_per_track=settings.data.samples_per_track, seed=self.seed, sample_rate=data.sample_rate,
            progress=False,
        )
        self.valid_set = datasets.ValidDataset(
            data.valid_tracks, targets=[self.target], seq_dur=settings.data.valid_seq_dur,
            sample_rate=data.sample_rate, progress=False,
        )

    # ------------------------------------------------------------------ the epoch
    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Train from the epoch after :attr:`epoch` until the run finishes, or for
        ``stop_after`` epochs of this call."""
        hp = self.hp
        # Optimiser steps per epoch (global batches), for learning curves against steps.
        self.history["steps_per_epoch"] = math.ceil(len(self.train_set) / hp.batch_size)
        bar = tqdm(range(self.epoch + 1, hp.epochs + 1), desc=self.label, initial=self.epoch, total=hp.epochs,
                   disable=not self.progress, unit="epoch")
        for nb_done, epoch in enumerate(bar, 1):
            outcome = self.run_epoch(epoch)
            self.save_weights(outcome)
            self.decide_stop(outcome)
            self.commit()
            self.report(outcome)
            if self.history["finished"] or (stop_after is not None and nb_done >= stop_after):
                break
        bar.close()
        distributed.barrier(self.ranks)  # rank 0's files are written when any rank returns
        return self.result(already=False)

    def run_epoch(self, epoch: int) -> EpochOutcome:
        """Train one epoch and validate it (rank 0; the other ranks receive the numbers), then
        record it: the history, the learning-rate schedule and early stopping."""
        start = time.perf_counter()
        lr = float(self.optimizer.param_groups[0]["lr"])
        train_loss, diverged = self.train_step(epoch)
        valid_loss, sdr, diverged = self.validate(epoch, diverged)
        outcome = EpochOutcome(epoch, train_loss, valid_loss, lr, time.perf_counter() - start, sdr, diverged)
        self._record(outcome)
        return outcome

    def train_step(self, epoch: int) -> tuple[float, str | None]:
        """One pass over the epoch's batches (this rank's share of each); the mean loss and,
        if it diverged, why."""

        ranks, seed = self.ranks, self.seed
        self.train_set.set_epoch(epoch)
        if ranks.is_distributed:
            torch.manual_seed(distributed.rank_seed(seed, epoch, ranks.rank))  # dropout masks per rank
        # The order DataLoader(shuffle=True, generator=...) draws, or this rank's share of it;
        # the generator still seeds the loader's workers as before.
        sampler = GlobalBatchSampler(len(self.train_set), self.hp.batch_size, _epoch_seed(seed, epoch), ranks.rank,
                                     ranks.world_size)
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=sampler, num_workers=self.settings.data.nb_workers,
            generator=_epoch_generator(seed, epoch), pin_memory=self.device.type == "cuda",
        )
        return _train_epoch(
            self.trained, loader, self.stft, self.optimizer, self.device, f"epoch {epoch}", self.progress,
            batch_sizes=sampler.global_batch_sizes() if ranks.is_distributed else None,
        )

    def validate(self, epoch: int, diverged: str | None) -> tuple[float, float, str | None]:
        """Validation loss and (every ``valid_sdr_every`` epochs and at the last) SDR on rank 0,
        sent to every rank; a non-finite loss is a divergence."""
        valid_loss, sdr = math.nan, math.nan
        every = int(self.hp.valid_sdr_every)
        if self.ranks.is_main:
            if diverged is None:
                valid_loss = _validate(self.model, self.valid_set, self.stft, self.device)
                if not math.isfinite(valid_loss):
                    diverged = f"the validation loss is {valid_loss}"
            if every > 0 and diverged is None and (epoch % every == 0 or epoch >= self.hp.epochs):
                sdr = validation_sdr(self.model, self.data.valid_tracks, self.target, self.settings, self.device)
        # The other ranks wait here for rank 0's validation and decide as it does.
        valid_loss, diverged, sdr = distributed.broadcast([valid_loss, diverged, sdr], self.ranks)
        return valid_loss, sdr, diverged

    def _record(self, outcome: EpochOutcome) -> None:
        history = self.history
        with_sdr = int(self.hp.valid_sdr_every) > 0
        if with_sdr:
            column = history.setdefault(VALID_SDR_COLUMN, [])
            column.extend([None] * (len(history["epoch"]) - len(column)))  # epochs run without it
        values = (outcome.epoch, outcome.train_loss, outcome.valid_loss, outcome.lr, outcome.seconds)
        for column, value in zip(HISTORY_COLUMNS, values):
            history[column].append(value)
        if with_sdr:
            history[VALID_SDR_COLUMN].append(_finite_or_none(outcome.sdr))
        if outcome.diverged is None:
            step_scheduler(self.scheduler, outcome.valid_loss)
            outcome.improved = self.stopper.step(outcome.valid_loss, outcome.epoch)
            history["best_epoch"] = self.stopper.best_epoch
            history["best_valid_loss"] = self.stopper.best
        self.epoch = outcome.epoch

    def save_weights(self, outcome: EpochOutcome) -> None:
        """Rank 0: the best weights when the epoch improved; at :func:`half_epoch`, the best
        so far become the half-training weights (what the run would have given had it
        stopped there: the "more epochs" comparison scores them beside the final ones)."""
        if not self.ranks.is_main:
            return
        if outcome.improved:
            self.files.save_weights(self.model, outcome.epoch, self.history)
        if outcome.epoch == half_epoch(self.hp.epochs) and self.stopper.best_epoch:
            self.files.keep_half_weights()

    def decide_stop(self, outcome: EpochOutcome) -> None:
        """Whether the run is over: a diverged loss (with a message saying what to do), early
        stopping, or the last epoch; recorded in the history."""
        if outcome.diverged is not None:
            best = (f"the best weights so far (epoch {self.stopper.best_epoch}) are in {self.files.weights}"
                    if self.stopper.best_epoch else "no weights were saved")
            outcome.message = (
                f"{self.label}: training stopped at epoch {outcome.epoch}: {outcome.diverged}. The learning rate "
                f"({outcome.lr:.3g}) may be too high, or the data hold NaN/inf; {best}. "
                f"Delete {self.files.out_dir} and train again with other settings."
            )
            self.history.update(finished=True, stop_reason="nan", stop_message=outcome.message)
        elif self.stopper.should_stop:
            self.history.update(finished=True, stop_reason="early_stopping")
        elif outcome.epoch >= self.hp.epochs:
            self.history.update(finished=True, stop_reason="epochs")

    def commit(self) -> None:
        """Rank 0: the checkpoint, then the history. The checkpoint is the commit point of an
        epoch: a kill before it repeats the epoch (deterministically), a kill after it
        loses nothing."""
        if self.ranks.is_main:
            self.files.write_checkpoint(self.checkpoint())
            self.files.write_history(self.history)

    def report(self, outcome: EpochOutcome) -> None:
        """Rank 0: one line per epoch (printed and logged); the warning of a diverged run."""
        if not self.ranks.is_main:
            return
        sdr = self.history.get(VALID_SDR_COLUMN)
        summary = (
            f"{self.label} epoch {outcome.epoch}/{self.hp.epochs}: train loss {outcome.train_loss:.5g}, "
            f"valid loss {outcome.valid_loss:.5g}, lr {outcome.lr:.3g}, {outcome.seconds:.1f} s"
            + (" (best)" if outcome.improved else "")
            + (f", valid vocals SDR {sdr[-1]:.2f} dB" if sdr and sdr[-1] is not None else "")
        )
        tqdm.write(summary)
        logger.info(summary)
        if outcome.message is not None:
            warnings.warn(outcome.message, RuntimeWarning, stacklevel=4)  # at train()'s caller

    def result(self, already: bool, history: dict[str, Any] | None = None) -> TrainResult:
        """The :class:`TrainResult` of this run with ``history`` (default: this call's)."""
        history = self.history if history is None else history
        epochs_done = history["epoch"]
        return TrainResult(
            model_name=self.model_name, target=self.target, out_dir=self.files.out_dir, history=history,
            best_epoch=history["best_epoch"], last_epoch=epochs_done[-1] if epochs_done else 0,
            finished=bool(history["finished"]) and _is_complete(history, self.hp.epochs),
            already_finished=already, **self.files.paths(),
        )


def _check_train_settings(hp: TrainSettings, target: str) -> None:
    if hp.epochs < 1:
        raise ValueError(f"train.epochs must be at least 1, got {hp.epochs}")
    if isinstance(hp.valid_sdr_every, bool) or int(hp.valid_sdr_every) < 0:
        raise ValueError(f"train.valid_sdr_every must be 0 (off) or a number of epochs, got {hp.valid_sdr_every!r}")
    if hp.valid_sdr_every and target != "vocals":
        raise ValueError(f"train.valid_sdr_every scores vocals against accompaniment; the target is {target!r}: "
                         "set it to 0 for other targets")


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
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be a positive number of epochs or None, got {stop_after!r}")
    trainer = Trainer(model_name, settings, data, out_dir, seed=seed, target=target, tuning_dir=tuning_dir,
                      progress=progress)
    saved = trainer.files.read(trainer.signature, trainer.device)
    if saved is not None and _is_complete(saved.history, trainer.hp.epochs):
        if saved.state is not None and trainer.ranks.is_main:
            trainer.files.write_history(saved.history)  # in case a kill came between checkpoint and history
        return trainer.result(already=True, history=saved.history)
    trainer.start(saved)
    return trainer.fit(stop_after)


# --------------------------------------------------------------------------- entry point
if __name__ == "__main__":  # python -m melunmix.training.train ...: the same as `melunmix train ...`
    import sys

    from melunmix.commands.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
