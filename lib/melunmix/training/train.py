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

Under ``torchrun`` (:func:`melunmix.study.profile_commands.train_profile`, ``torchrun --nproc_per_node N -m melunmix.training.train``)
every process runs :func:`train` and the run is data parallel: each rank trains on its
share of every global batch of ``train.batch_size`` items, batch normalisation sees the
whole global batch, and rank 0 alone validates and writes the files above
(:mod:`melunmix.training.distributed`). The checkpoint does not depend on the number of ranks, so a
run continues with any number.

Example
-------
>>> from melunmix.base.config import load_profile
>>> from melunmix.training.training_data import prepare_data
>>> from melunmix.training.train import train
>>> settings = load_profile("smoke")
>>> data = prepare_data(settings)                                   # doctest: +SKIP
>>> result = train("melunmix", settings, data, "results/smoke/models/melunmix")  # doctest: +SKIP
>>> result.best_epoch, result.weights                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import datasets
from . import distributed
from ..base import provenance
from ..base.config import Settings, TrainSettings, run_paths
from ..datasets.torch_datasets import GlobalBatchSampler
from ..base.devices import resolve_device
from ..dsp.features import STFT
from .hyperparameters import resolve_hyperparameters
from ..base.names import canonical_model_name
from .epoch import EpochOutcome, train_epoch, validate, validation_sdr
from .model_setup import build_training_model, model_config
from .randomness import epoch_generator, epoch_seed, rng_state, seed_everything, set_rng_state
from .run_files import (CHECKPOINT_FORMAT, HISTORY_COLUMNS, RunFiles, SavedRun, VALID_SDR_COLUMN,
                        finite_or_none, half_epoch, is_complete, new_history)
from .schedule import EarlyStopping, make_scheduler, step_scheduler
from .training_data import TRAIN_STFT_CENTER, TrainingData, prepare_data


logger = logging.getLogger(__name__)


#: Training settings that change what a run computes (``epochs`` is left out on purpose:
#: raising it continues a finished run instead of refusing its checkpoint).
TRAJECTORY_SETTINGS = (
    "batch_size", "lr", "weight_decay", "lr_schedule", "lr_decay_gamma", "lr_decay_patience",
    "lr_decay_cooldown", "patience",
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

        seed_everything(self.seed)
        self.model = build_training_model(self.model_name, self.settings, self.data, self.target).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hp.lr, weight_decay=self.hp.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, self.hp)
        self.stopper = EarlyStopping(self.hp.patience)
        if saved is not None and saved.state is not None:
            self.restore(saved.state)
        else:
            self.history = new_history(self.model_name, self.target, self.seed, self.signature)
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
        set_rng_state(state["rng"])
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
            "rng": rng_state(),
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
        sampler = GlobalBatchSampler(len(self.train_set), self.hp.batch_size, epoch_seed(seed, epoch), ranks.rank,
                                     ranks.world_size)
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=sampler, num_workers=self.settings.data.nb_workers,
            generator=epoch_generator(seed, epoch), pin_memory=self.device.type == "cuda",
        )
        return train_epoch(
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
                valid_loss = validate(self.model, self.valid_set, self.stft, self.device)
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
            history[VALID_SDR_COLUMN].append(finite_or_none(outcome.sdr))
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
            finished=bool(history["finished"]) and is_complete(history, self.hp.epochs),
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
    if saved is not None and is_complete(saved.history, trainer.hp.epochs):
        if saved.state is not None and trainer.ranks.is_main:
            trainer.files.write_history(saved.history)  # in case a kill came between checkpoint and history
        return trainer.result(already=True, history=saved.history)
    trainer.start(saved)
    return trainer.fit(stop_after)


if __name__ == "__main__":  # python -m melunmix.training.train ...: the same as `melunmix train ...`
    import sys

    from melunmix.commands.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
