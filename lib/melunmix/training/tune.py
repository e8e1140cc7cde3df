"""Tuning: the poster's search of the learning rate and its decay at a lower sample rate.

The poster tuned "the learning rate and the decay rate" with its proposed model on the
training set at a lower sampling rate before the 20-epoch runs. :func:`tune` does that
with short runs of :func:`melunmix.training.train.train` itself (one folder per trial) and Optuna's
TPE sampler; the objective is a trial's best validation loss (the musdb validation split,
which is part of the training set).

What is searched (``settings.tune.space``, by default): the learning rate (log scale),
Adam's weight decay (log scale) and ``lr_decay_gamma``, the factor the learning rate is
multiplied by after every epoch with ``train.lr_schedule: exponential`` -- both readings
of the poster's "decay rate". (With Open-Unmix's plateau schedule, whose patience is
longer than any trial, the decay factor would never act; :func:`tune` warns then.)

The trials are "the same model scaled down" to ``settings.tune.sample_rate``
(:func:`trial_settings`): the STFT keeps its window and hop durations (``n_fft`` and
``n_hop`` times tune_rate / data_rate, rounded to even integers) and the bandwidth crop
keeps the same fraction of the band (``bandwidth`` times the same ratio), so at 16 kHz the
poster's 4096 / 1024 at 44.1 kHz with 16 kHz of bandwidth becomes 1486 / 372 with 5.8 kHz.

Everything lives in the search folder (``results/<profile>/tuning``, or
``tuning/<model>/`` for each model with ``settings.tune.per_model``; :func:`search_dir`):

- ``study.db``: the Optuna study (SQLite), so an interrupted search resumes (unless
  ``settings.tune.storage`` names a shared storage, below);
- ``trials/trial_NNN/``: each trial's run folder (history, weights, checkpoint);
- ``trials.csv``: one row per trial (parameters, best validation loss, epochs, time, state);
- ``trial_histories.csv``: every trial's per-epoch losses and learning rate, for plots;
- ``features/``: the scaler statistics at the tuning rate;
- ``best_params.json``: the best parameters (top level) and a ``search`` summary, written
  when the search is complete and read by training (:func:`load_best_params`,
  ``settings.train.use_tuned``);
- ``transfer/<tuned|default>/``: with ``settings.tune.transfer_epochs``, two short runs
  at the data's full rate, with the tuned and the untuned values
  (:func:`transfer_check`), summed up in ``<tuning>/transfer.csv``.

Reproducibility: the sampler of trial ``n`` is seeded with ``settings.tune.seed + n``, so
the parameters tried depend only on the seed and the results of earlier trials, whether or
not the search was interrupted; every trial trains with the same seed.

Several workers, one search (:func:`melunmix.study.profile_commands.tune_profile`, ``melunmix tune``): with
``settings.tune.storage`` (or ``--storage``) set to a database URL (PostgreSQL, MySQL) or
to an Optuna journal file on a filesystem every worker sees, any number of processes on
any machines join the same study (named ``melunmix-tune:<profile>:<model>``). Each takes
trials until the search has ``nb_trials`` of them (:func:`_slots`: trials counted in
number order, so two workers asking at once for the last one cannot both run it), sends
a heartbeat every ``tune.heartbeat_interval`` seconds while a trial runs, and takes a
RUNNING trial silent for ``tune.grace_period`` seconds for a killed worker's: it is
marked FAIL and queued again with the same parameters and folder (Optuna's
``RetryHeartbeatStaleTrialCallback``), so it resumes from its last checkpoint, at most
:data:`MAX_RETRIES` times. Workers stay until every trial has finished (to take over
those of killed workers), then each writes the tables and ``best_params.json`` from the
storage; trial histories are stored with the trials, so the tables are complete even
where the trial folders are not shared. The workers' folder (``results/<profile>/tuning``)
should be shared too: a retry resumes from the killed trial's checkpoint only where it
can read it (elsewhere it trains the trial again from its start).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import json
import logging
import math
import os
import re
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.config import Settings, STFTSettings, TrainSettings, run_paths
from ..base.files import hold_lock, read_json, write_json, write_text
from .hyperparameters import (  # noqa: F401  (re-exported: what a search leaves, read by training too)
    BEST_PARAMS_NAME,
    RECIPE_FIT_NAME,
    SHARED_RECIPE_NAME,
    TRIALS_CSV_NAME,
    load_best_params,
    load_search_summary,
    search_dir,
    shared_recipe,
    tuned_models,
)
from ..base.names import HISTORY_JSON_NAME, canonical_model_name
from .run_files import check_run_signature, history_for_json
from .training_data import prepare_data
from .train import train

logger = logging.getLogger(__name__)

HISTORIES_CSV_NAME = "trial_histories.csv"
STORAGE_NAME = "study.db"
STUDY_NAME = "melunmix-tune"
TRIALS_DIR_NAME = "trials"
TRANSFER_DIR_NAME = "transfer"
TRANSFER_CSV_NAME = "transfer.csv"
#: The two runs of the transfer check: the tuned values and the profile's own.
TRANSFER_VARIANTS = ("tuned", "default")
SCALES = ("log", "linear")
#: Trial attributes a search keeps in the storage: the last heartbeat (seconds since the
#: epoch), the worker (host:pid), the history for the tables, and the surplus mark.
HEARTBEAT_ATTR = "melunmix:heartbeat"
WORKER_ATTR = "melunmix:worker"
HISTORY_ATTR = "melunmix:history"
SURPLUS_ATTR = "melunmix:surplus"
#: How often a trial whose worker died is queued again before its slot counts as failed.
MAX_RETRIES = 3
#: Lock file in the search folder: workers prepare the data one at a time.
PREPARE_LOCK_NAME = ".prepare.lock"


def preparing_lock(tuning_dir: str | os.PathLike):
    """The lock workers on a shared storage take in turn to prepare a search's data
    (:func:`melunmix.base.files.hold_lock`, waiting)."""
    import socket

    return hold_lock(Path(tuning_dir) / PREPARE_LOCK_NAME, {"pid": os.getpid(), "host": socket.gethostname(),
                                                           "job": "preparing the tuning data"}, wait=True)


#: A storage given as a URL (an RDB storage); anything else is a journal file path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class TuneResult:
    """What :func:`tune` leaves behind.

    Attributes
    ----------
    out_dir : Path
        The search folder (:func:`search_dir`).
    best_params : dict
        Best parameters, e.g. ``{"lr": 0.003, "weight_decay": 2e-6, "lr_decay_gamma": 0.8}``.
    best_valid_loss : float
        Best validation loss of the best trial.
    best_trial : int
        Its number (0-based, Optuna's).
    trials : pandas.DataFrame
        The trials table (as ``trials.csv``).
    nb_trials_run : int
        Trials this call trained (0 when the search was already complete).
    trials_csv, histories_csv, best_params_json : Path
    storage : Path or str
        The SQLite or journal file, or the database URL (password hidden).
    """

    out_dir: Path
    best_params: dict[str, Any]
    best_valid_loss: float
    best_trial: int
    trials: Any
    nb_trials_run: int
    trials_csv: Path
    histories_csv: Path
    best_params_json: Path
    storage: Path | str


def search_space(space: dict[str, list[Any]]) -> dict[str, Any]:
    """Optuna distributions from ``settings.tune.space``.

    Parameters
    ----------
    space : dict
        ``{name: [low, high, "log" | "linear"]}``; names are training settings
        (:class:`melunmix.base.config.TrainSettings` fields). Integer settings (e.g.
        ``batch_size``) get an integer distribution.

    Returns
    -------
    dict of str to optuna.distributions.BaseDistribution
    """
    from optuna.distributions import FloatDistribution, IntDistribution

    if not space:
        raise ValueError("settings.tune.space is empty; give at least one {name: [low, high, 'log'|'linear']}")
    fields = {f.name: f for f in dataclasses.fields(TrainSettings)}
    defaults = TrainSettings()
    distributions = {}
    for name, spec in space.items():
        if name not in fields:
            raise ValueError(
                f"settings.tune.space: {name!r} is not a training setting; valid names: {sorted(fields)}"
            )
        if not isinstance(spec, (list, tuple)) or len(spec) != 3 or spec[2] not in SCALES:
            raise ValueError(
                f"settings.tune.space.{name} must be [low, high, 'log' | 'linear'], got {spec!r}"
            )
        low, high, scale = spec
        default = getattr(defaults, name)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise ValueError(f"settings.tune.space: {name!r} is not a numeric training setting")
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise ValueError(f"settings.tune.space.{name}: bounds must be numbers, got {spec!r}") from None
        if not low < high or (scale == "log" and low <= 0):
            raise ValueError(
                f"settings.tune.space.{name}: need low < high (and low > 0 for 'log'), got {spec!r}"
            )
        if isinstance(default, int):
            distributions[name] = IntDistribution(int(low), int(high), log=scale == "log")
        else:
            distributions[name] = FloatDistribution(low, high, log=scale == "log")
    return distributions


def _even(value: float) -> int:
    """The even integer nearest ``value`` (at least 2)."""
    return max(2, 2 * int(round(value / 2)))


def tuning_stft(settings: Settings) -> STFTSettings:
    """The profile's STFT scaled to ``settings.tune.sample_rate``: the same model scaled down.

    With ``ratio = tune.sample_rate / data.sample_rate``: ``n_fft`` and ``n_hop`` are
    multiplied by ``ratio`` and rounded to the nearest even integer, so the window and the
    hop keep their durations (and the model sees as many frames per second and as many
    bins per Hz); ``bandwidth`` is multiplied by ``ratio``, so the crop keeps the same
    fraction of the band below the lower Nyquist frequency (16 kHz of 22.05 kHz at
    44.1 kHz -> 5.8 kHz of 8 kHz at 16 kHz). The poster's n_fft 4096 / hop 1024 at
    44.1 kHz become 1486 / 372 at 16 kHz. Unchanged when the rates are equal.
    """
    data_rate, tune_rate = float(settings.data.sample_rate), float(settings.tune.sample_rate)
    if not (data_rate > 0 and tune_rate > 0):
        raise ValueError(f"sample rates must be positive: data {data_rate!r}, tune {tune_rate!r}")
    stft = settings.stft
    if tune_rate == data_rate:
        return dataclasses.replace(stft)
    ratio = tune_rate / data_rate
    return dataclasses.replace(
        stft, n_fft=_even(stft.n_fft * ratio), n_hop=_even(stft.n_hop * ratio),
        bandwidth=float(stft.bandwidth) * ratio,
    )


def trial_settings(settings: Settings, params: dict[str, Any]) -> Settings:
    """Settings of one trial: the profile scaled to the tuning rate, short runs, ``params`` applied.

    The trial trains for ``settings.tune.epochs`` epochs of ``settings.tune.samples_per_track``
    items per track at ``settings.tune.sample_rate`` with the STFT of :func:`tuning_stft`
    and seed ``settings.tune.seed``, and never reads tuned parameters itself. Everything
    else (model sizes, excerpt durations, batch size, schedule) is the profile's.
    """
    trial = _short_run_settings(settings, settings.tune.epochs, settings.tune.seed, params)
    trial.stft = tuning_stft(settings)
    trial.data.sample_rate = float(settings.tune.sample_rate)
    return trial


def _short_run_settings(settings: Settings, epochs: int, seed: int, params: dict[str, Any]) -> Settings:
    """What a trial and a transfer run share: ``settings.tune.samples_per_track`` items per
    track, ``epochs`` epochs, one ``seed``, ``params`` applied, no tuned values read, no
    validation SDR (the search ranks by validation loss) and no ``train.init_weights`` (a
    trial trains from scratch, at the tuning rate, where weights of the full rate do not fit)."""
    run = copy.deepcopy(settings)
    run.data.samples_per_track = int(settings.tune.samples_per_track)
    run.train = dataclasses.replace(
        run.train, epochs=int(epochs), use_tuned=False, seeds=[int(seed)], valid_sdr_every=0, init_weights=None,
        **params
    )
    return run


def _sampler(tune, seed: int, constant_liar: bool = False):
    """Optuna's TPE sampler: ``tune.startup_trials`` random trials, then the model of the
    trials so far decides."""
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed, n_startup_trials=int(tune.startup_trials), constant_liar=constant_liar)


def _search_signature(settings: Settings, model: str, fingerprint: str | None) -> dict[str, Any]:
    """What must not change for a stored study to be continued."""
    tune_settings = dataclasses.asdict(settings.tune)
    # Raising nb_trials continues a finished search; the transfer check, the folder
    # layout and where and how the workers keep the trials do not change what a trial
    # computes; the model searched is recorded below.
    for name in ("enabled", "nb_trials", "transfer_epochs", "per_model", "shared_recipe", "model", "storage",
                 "heartbeat_interval", "grace_period"):
        tune_settings.pop(name)
    fixed = dataclasses.asdict(settings.train)
    for name in ("models", "seeds", "device", "jobs", "progress", "use_tuned", "epochs", "valid_sdr_every",
                 "init_weights",
                 *settings.tune.space):
        fixed.pop(name, None)
    return {
        "tune": {**tune_settings, "model": model},
        "train": fixed,
        "stft": dataclasses.asdict(tuning_stft(settings)),
        "model": dataclasses.asdict(settings.model),
        "data": {"sample_rate": float(settings.data.sample_rate), "seq_dur": settings.data.seq_dur,
                 "valid_seq_dur": settings.data.valid_seq_dur, "targets": list(settings.data.targets),
                 "fingerprint": fingerprint},
    }


def _trial_dir(out_dir: Path, number: int) -> Path:
    return out_dir / TRIALS_DIR_NAME / f"trial_{number:03d}"


def _root(trial) -> int:
    """The slot a trial fills: its own number, or for a retry the number of the trial it
    repeats (the first of its ``retry_history``); the slot's folder is ``trial_<root>``."""
    history = trial.system_attrs.get("retry_history")
    return int(history[0]) if history else int(trial.number)


def _slots(trials, nb_trials: int) -> tuple[dict[int, Any], set[int]]:
    """The search's slots and the surplus trials, from the storage's trials alone.

    A slot is one of the ``nb_trials`` trials the search runs: a trial asked for anew,
    together with its retries (a retry repeats a killed worker's trial with the same
    parameters and fills the same slot). Trials are taken in number order, which every
    worker sees the same: a new trial beyond the first ``nb_trials`` (two workers asked at
    the same moment for the last one) is surplus and is never run. A completed trial is
    never surplus (lowering ``nb_trials`` keeps finished work).

    Returns
    -------
    slots : dict of int to FrozenTrial
        Slot (root number) -> its latest trial, in slot order.
    surplus : set of int
        Numbers of the surplus trials.
    """
    from optuna.trial import TrialState

    slots, surplus, nb_new = {}, set(), 0
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.system_attrs.get("retry_history"):
            if _root(trial) in slots:
                slots[_root(trial)] = trial
            continue
        if trial.user_attrs.get(SURPLUS_ATTR) or (nb_new >= nb_trials and trial.state != TrialState.COMPLETE):
            surplus.add(trial.number)
            continue
        nb_new += 1
        slots[trial.number] = trial
    return slots, surplus


def _position(slots: dict[int, Any], root: int) -> int:
    """1-based place of slot ``root`` among the search's slots, for "trial k/N" (a slot's
    root number can exceed N when a surplus or failed trial took a number before it)."""
    order = sorted(slots)
    return order.index(root) + 1 if root in order else len(order) + 1


def _read_history(run_dir: Path) -> dict | None:

    path = run_dir / HISTORY_JSON_NAME
    return read_json(path) if path.exists() else None


def _tables(slots: dict[int, Any], out_dir: Path, param_names: list[str],
            startup_trials: int = 10) -> tuple[str, str, list[dict]]:
    """The trials table and the per-epoch histories of every slot, as CSV text.

    Column ``sampler`` says how a trial's values were chosen: ``random`` for the sampler's
    first ``startup_trials`` slots, ``TPE`` after them.

    A slot's history is read from its folder, or (a worker on another machine without
    the folder) from the history its worker stored with the trial.
    """
    rows, history_rows = [], []
    for index, (number, trial) in enumerate(sorted(slots.items())):
        history = _read_history(_trial_dir(out_dir, number)) or trial.user_attrs.get(HISTORY_ATTR) or {}
        epochs = history.get("epoch", [])
        row = {"trial": number, "state": trial.state.name, "sampler": "random" if index < startup_trials else "TPE"}
        row.update({name: trial.params.get(name) for name in param_names})
        row.update(
            best_valid_loss=trial.value if trial.values else history.get("best_valid_loss"),
            best_epoch=history.get("best_epoch"),
            nb_epochs=len(epochs),
            time_s=round(sum(t for t in history.get("epoch_time", []) if t is not None), 3),
            stop_reason=history.get("stop_reason"),
        )
        rows.append(row)
        for values in zip(*(history.get(c, []) for c in ("epoch", "train_loss", "valid_loss", "lr", "epoch_time"))):
            history_rows.append({"trial": number, **dict(zip(("epoch", "train_loss", "valid_loss", "lr",
                                                                "epoch_time"), values))})
    columns = ["trial", "state", "sampler", *param_names, "best_valid_loss", "best_epoch", "nb_epochs", "time_s", "stop_reason"]
    history_columns = ["trial", "epoch", "train_loss", "valid_loss", "lr", "epoch_time"]
    return _csv(rows, columns), _csv(history_rows, history_columns), rows


def _csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def tune(
    settings: Settings,
    data_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
    *,
    stats_dir: str | os.PathLike | None = None,
    model: str | None = None,
) -> TuneResult:
    """Search training parameters of one model with short runs at ``settings.tune.sample_rate``.

    Parameters
    ----------
    settings : Settings
        The profile; the ``tune`` section gives the model, number of trials, epochs,
        samples per track, sample rate (Hz), seed and search space.
    data_root : path, optional
        Dataset root (as :func:`melunmix.training.training_data.prepare_data`).
    out_dir : path, optional
        This search's folder; default :func:`search_dir` of the model
        (``results/<profile>/tuning``, or ``.../tuning/<model>`` with ``tune.per_model``).
    progress : bool, optional
        Progress bars of the trials' training; default ``settings.train.progress``.
    stats_dir : path, optional
        Where the statistics at the tuning rate are cached; default ``<out_dir>/features``.
    model : str, optional
        The model to search with; default ``settings.tune.model``. :func:`tune_all`
        searches every model of ``settings.train.models`` with ``tune.per_model``.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        A bad search space, a stored study made with other settings (the message names
        the file), or every trial diverged.

    Warns
    -----
    UserWarning
        ``lr_decay_gamma`` is searched with the plateau schedule although its patience is
        not shorter than a trial: the factor could not change any trial.

    Notes
    -----
    ``settings.tune.enabled`` is for the caller (the notebook) to decide whether to
    tune at all; this function always searches. Raising ``settings.tune.nb_trials``
    continues a finished search with the extra trials. With the folder's own SQLite
    file, one process at a time per ``out_dir``: a trial found RUNNING is taken to be an
    interrupted one and is queued again (it resumes from its checkpoint). With a shared
    ``settings.tune.storage`` any number of workers run this function together (see the
    module's notes); the tables and the best parameters are the same in every worker.
    Rows of the tables and ``best_trial`` are numbered by slot (the trial's folder), so
    a retried trial keeps the number of the trial it repeats. The tables are written
    once, when every trial has finished; each trial prints one line as it ends.
    """

    if settings.tune.nb_trials < 1:
        raise ValueError(f"settings.tune.nb_trials must be at least 1, got {settings.tune.nb_trials}")
    model = canonical_model_name(settings.tune.model if model is None else model)
    distributions = search_space(settings.tune.space)
    hp = settings.train
    if ("lr_decay_gamma" in distributions and hp.lr_schedule == "plateau"
            and hp.lr_decay_patience >= settings.tune.epochs):
        warnings.warn(
            f"settings.tune.space searches lr_decay_gamma with train.lr_schedule 'plateau' and "
            f"lr_decay_patience {hp.lr_decay_patience} >= tune.epochs {settings.tune.epochs}: the decay "
            "cannot act within a trial, so its best value is noise; use lr_schedule 'exponential'",
            UserWarning, stacklevel=2,
        )
    out_dir = Path(out_dir) if out_dir is not None else search_dir(settings, model)
    # Statistics at the tuning rate serve the search only: they stay in its folder.
    stats_dir = Path(stats_dir) if stats_dir is not None else out_dir / "features"
    progress = settings.train.progress if progress is None else bool(progress)
    search = _Search.open(settings, model, distributions, out_dir, data_root, stats_dir, progress)
    nb_run = 0
    while (taken := search.next_trial()) is not None:
        search.run_trial(*taken)
        nb_run += 1
    return search.finish(nb_run)


class _Search:
    """One worker's view of a search: the study in its storage, the data every trial trains
    on, and the steps of :func:`tune` (next trial, run it, finish)."""

    def __init__(self, settings: Settings, model: str, distributions: dict, out_dir: Path, data, study,
                 storage_label: Path | str, shared: bool, progress: bool):
        self.settings, self.model, self.distributions = settings, model, distributions
        self.out_dir, self.data, self.study = out_dir, data, study
        self.storage_label, self.shared, self.progress = storage_label, shared, progress
        self.nb_trials = int(settings.tune.nb_trials)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def open(cls, settings: Settings, model: str, distributions: dict, out_dir: Path, data_root, stats_dir: Path,
             progress: bool) -> _Search:
        """Prepare the data at the tuning rate, open (or create) the study and check that a
        stored one was made with the same settings."""
        import optuna


        out_dir.mkdir(parents=True, exist_ok=True)
        storage, storage_label, shared = open_storage(settings.tune.storage, out_dir)
        if shared and not settings.tune.grace_period > settings.tune.heartbeat_interval:
            raise ValueError(
                f"settings.tune.grace_period ({settings.tune.grace_period} s) must be longer than "
                f"tune.heartbeat_interval ({settings.tune.heartbeat_interval} s), or live workers are taken for dead"
            )
        # Workers sharing the folder prepare the data one after the other: the first fills
        # the resample cache and the statistics, the others read them.
        with preparing_lock(out_dir) if shared else contextlib.nullcontext():
            data = prepare_data(trial_settings(settings, {}), data_root=data_root, stats_dir=stats_dir,
                                sample_rate=settings.tune.sample_rate, progress=progress)
        try:
            with _quiet_optuna():
                study = optuna.create_study(
                    study_name=study_name(settings, model, shared), storage=storage, direction="minimize",
                    load_if_exists=True, sampler=_sampler(settings.tune, settings.tune.seed),
                )
        except json.JSONDecodeError as err:  # a journal line cut short (a full disk, a kill mid-write)
            raise ValueError(
                f"the tuning journal {storage_label} is corrupt ({err.msg}), e.g. a line cut short "
                "by a full disk: delete its last, incomplete line (the trials before it are kept), or the "
                "file to start the search again, and rerun"
            ) from None
        signature = _search_signature(settings, model, data.fingerprint)
        stored = study.user_attrs.get("search")
        if stored is None:
            study.set_user_attr("search", signature)
        else:
            check_run_signature(stored, signature, storage_label, out_dir, what="tuning search")
        return cls(settings, model, distributions, out_dir, data, study, storage_label, shared, progress)

    def slots(self) -> dict[int, Any]:
        return _slots(self.study.get_trials(deepcopy=False), self.nb_trials)[0]

    def next_trial(self) -> tuple[Any, int] | None:
        """The next trial this worker runs and its slot, or None when every slot's trial has
        finished.

        Trials of killed workers are failed and queued again first (same parameters and
        folder, so they resume from their checkpoint); while other workers' trials run and
        no slot is free, this waits.
        """
        from optuna.trial import TrialState

        tune = self.settings.tune
        while True:
            _fail_stale_trials(self.study, self.nb_trials, tune.grace_period if self.shared else None, self.worker)
            trials = self.study.get_trials(deepcopy=False)
            slots, _ = _slots(trials, self.nb_trials)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if len(slots) >= self.nb_trials and not waiting:
                if all(t.state.is_finished() for t in slots.values()):
                    return None
                time.sleep(min(float(tune.heartbeat_interval), 5.0))  # other workers' trials run
                continue
            # Seeded by the slot count: the parameters tried depend on the seed and on the earlier
            # trials' results only, interrupted or not (with one worker).
            self.study.sampler = _sampler(tune, tune.seed + len(slots), constant_liar=self.shared)
            with _quiet_optuna():
                trial = self.study.ask(self.distributions)
            trials = self.study.get_trials(deepcopy=False)
            if trial.number not in _slots(trials, self.nb_trials)[1]:
                return trial, _root(next(t for t in trials if t.number == trial.number))
            # Another worker asked at the same moment and got the last slot: never run this one.
            trial.set_user_attr(SURPLUS_ATTR, True)
            _tell(self.study, trial.number, None)

    def run_trial(self, trial, number: int) -> None:
        """Train ``trial`` in slot ``number``'s folder (resuming a killed run of it), print one
        line and record the result. An exception leaves the trial RUNNING, as a kill does: a
        rerun resumes it."""

        tune = self.settings.tune
        params = dict(trial.params)
        trial.set_user_attr(WORKER_ATTR, self.worker)
        start = time.perf_counter()
        with _heartbeat(trial, tune.heartbeat_interval if self.shared else None):
            result = train(self.model, trial_settings(self.settings, params), self.data,
                           _trial_dir(self.out_dir, number), seed=tune.seed, progress=self.progress)
        value = result.best_valid_loss
        value = value if value is not None and math.isfinite(value) else None
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        outcome = f"best valid loss {value:.5g} (epoch {result.best_epoch})" if value is not None else "diverged"
        place = _position(self.slots(), number)
        line = (f"tuning {self.model} trial {place}/{self.nb_trials}: {shown} -> {outcome}, "
                f"{time.perf_counter() - start:.1f} s" + (f" ({self.worker})" if self.shared else ""))
        print(line, flush=True)
        logger.info(line)
        trial.set_user_attr(HISTORY_ATTR, _history_summary(result.history))
        if not _tell(self.study, trial.number, value):
            warnings.warn(
                f"tuning {self.model} trial {number}: another worker took it for dead (no heartbeat for "
                f"{tune.grace_period} s) and queued it again; this result is not recorded",
                RuntimeWarning, stacklevel=3,
            )

    def finish(self, nb_run: int) -> TuneResult:
        """Write the tables and ``best_params.json`` from the storage (every worker writes the
        same) and return the search's result."""
        import pandas as pd
        from optuna.trial import TrialState

        out_dir, settings = self.out_dir, self.settings
        slots = self.slots()
        param_names = list(self.distributions)
        trials_text, histories_text, rows = _tables(slots, out_dir, param_names, settings.tune.startup_trials)
        write_text(out_dir / TRIALS_CSV_NAME, trials_text)
        write_text(out_dir / HISTORIES_CSV_NAME, histories_text)
        complete = {number: t for number, t in slots.items() if t.state == TrialState.COMPLETE}
        if not complete:
            raise ValueError(
                f"every tuning trial in {out_dir} diverged (NaN loss); narrow settings.tune.space "
                f"(e.g. a lower learning-rate bound), delete {out_dir} and rerun"
            )
        best_number = min(complete, key=lambda n: (complete[n].value, n))
        best = complete[best_number]
        write_json(out_dir / BEST_PARAMS_NAME, {
            **best.params,
            "search": {
                "best_valid_loss": best.value,
                "trial": best_number,
                "nb_trials": len(rows),
                "startup_trials": int(settings.tune.startup_trials),
                "best_chosen_by": next(row["sampler"] for row in rows if row["trial"] == best_number),
                "model": self.model,
                "sample_rate": float(settings.tune.sample_rate),
                "data_sample_rate": float(settings.data.sample_rate),
                "stft": dataclasses.asdict(tuning_stft(settings)),
                "lr_schedule": settings.train.lr_schedule,
                "epochs": int(settings.tune.epochs),
                "samples_per_track": int(settings.tune.samples_per_track),
            },
        })
        return TuneResult(
            out_dir=out_dir, best_params=dict(best.params), best_valid_loss=float(best.value),
            best_trial=best_number, trials=pd.read_csv(out_dir / TRIALS_CSV_NAME), nb_trials_run=nb_run,
            trials_csv=out_dir / TRIALS_CSV_NAME, histories_csv=out_dir / HISTORIES_CSV_NAME,
            best_params_json=out_dir / BEST_PARAMS_NAME, storage=self.storage_label,
        )


def open_storage(spec: str | None, out_dir: Path):
    """The Optuna storage a search keeps its trials in.

    Parameters
    ----------
    spec : str or None
        ``settings.tune.storage`` (or ``melunmix tune --storage``): None for the search
        folder's own SQLite file (one process at a time); a database URL
        (``postgresql://user:password@host/db``, ``mysql://...``, ``sqlite:////shared/path.db``)
        for an RDB storage; anything else is the path of an Optuna journal file
        (``JournalStorage`` with a ``JournalFileBackend``) on a filesystem every worker
        sees.
    out_dir : Path
        The search folder (for the default SQLite file).

    Returns
    -------
    storage : str or optuna.storages.BaseStorage
        What ``optuna.create_study(storage=...)`` takes.
    label : Path or str
        The file or URL (password hidden), for messages.
    shared : bool
        True for a storage given explicitly: several workers may use it at once, so each
        running trial sends heartbeats and a trial without one for
        ``settings.tune.grace_period`` seconds is taken for a killed worker's.
    """
    if spec is None:
        path = (out_dir / STORAGE_NAME).resolve()
        return f"sqlite:///{path}", path, False
    spec = str(spec)
    if _URL.match(spec):
        return spec, re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", spec), True
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(spec).expanduser().resolve()
    given = f"the tuning storage {spec!r} (--storage, or the profile's tune.storage)"
    if path.is_dir():
        raise ValueError(f"{given} is a folder; give a journal file path "
                         "(e.g. /shared/tuning/journal.log) or a database URL")
    blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"{given} lies under {blocking}, which is a file, not a folder; give a journal "
                         "file path in a folder (e.g. /shared/tuning/journal.log)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{given}: cannot create its folder {path.parent} ({err.strerror}); give a path "
                         "in a folder you can write") from None
    return JournalStorage(JournalFileBackend(str(path))), path, True


def study_name(settings: Settings, model: str, shared: bool) -> str:
    """The Optuna study of a search: ``melunmix-tune`` in the folder's own SQLite file; in a
    shared storage, which may hold several profiles and models, ``melunmix-tune:<profile>:<model>``."""
    return f"{STUDY_NAME}:{settings.name}:{model}" if shared else STUDY_NAME


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna's own log lines (and its experimental-API warnings) off; the search prints one line per trial."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _tell(study, number: int, value: float | None) -> bool:
    """Finish trial ``number`` (FAIL when ``value`` is None); False when it was already
    finished (another worker failed it first)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        with _quiet_optuna():
            if value is None:
                study.tell(number, state=TrialState.FAIL)
            else:
                study.tell(number, value)
    except (UpdateFinishedTrialError, ValueError):
        return False
    return True


def _fail_stale_trials(study, nb_trials: int, grace_period: float | None, worker: str) -> list[int]:
    """Mark the RUNNING trials of killed workers FAIL and queue each again once.

    Parameters
    ----------
    grace_period : float or None
        Seconds without a heartbeat after which a trial is stale; None (the folder's own
        storage, one process at a time): every RUNNING trial is a killed process's.

    Returns
    -------
    list of int
        Numbers of the trials this call failed.
    """
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    slots, surplus = _slots(trials, nb_trials)
    now = time.time()
    failed = []
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        if grace_period is not None:
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            last = max(float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)), started)
            if now - last <= grace_period:
                continue
        if not _tell(study, trial.number, None):
            continue  # finished meanwhile, or another worker failed it first
        failed.append(trial.number)
        retries = len(trial.system_attrs.get("retry_history", []))
        again = trial.number not in surplus and retries < MAX_RETRIES
        folder = f"{TRIALS_DIR_NAME}/{_trial_dir(Path(), _root(trial)).name}"
        line = (f"tuning: trial {_position(slots, _root(trial))}/{nb_trials} ({folder}, "
                f"worker {trial.user_attrs.get(WORKER_ATTR, '?')}) was interrupted; "
                + ("queued again, it resumes from its checkpoint" if again
                   else f"not retried ({retries} retries already)") + f" [seen by {worker}]")
        print(line, flush=True)
        logger.info(line)
        if again:
            with _quiet_optuna():
                RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, trial)
    return failed


@contextlib.contextmanager
def _heartbeat(trial, interval: float | None):
    """While the block runs, record the time in the trial every ``interval`` seconds
    (from a thread, so a long epoch does not silence it); nothing when ``interval`` is None."""
    if interval is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                trial.set_user_attr(HEARTBEAT_ATTR, time.time())
            except Exception:  # the trial was finished by another worker: nothing left to keep alive
                return
            if stop.wait(float(interval)):
                return

    thread = threading.Thread(target=beat, name=f"melunmix-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _history_summary(history: dict[str, Any]) -> dict[str, Any]:
    """What the trials tables need of a trial's history, JSON-safe (stored with the trial)."""

    clean = history_for_json(history)
    keys = ("epoch", "train_loss", "valid_loss", "lr", "epoch_time", "best_epoch", "best_valid_loss", "stop_reason")
    return {key: clean.get(key) for key in keys}


def tune_all(
    settings: Settings,
    data_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict[str, TuneResult]:
    """Every search the profile asks for: ``settings.tune.model`` into the tuning folder or,
    with ``settings.tune.per_model``, each model of ``settings.train.models`` into
    ``<tuning>/<model>/`` (sharing the statistics in ``<tuning>/features``).

    Parameters
    ----------
    settings : Settings
    data_root : path, optional
    out_dir : path, optional
        The tuning folder; default ``results/<profile>/tuning``.
    progress : bool, optional

    Returns
    -------
    dict of str to TuneResult
        By canonical model name, in the order searched.
    """
    root = Path(out_dir) if out_dir is not None else run_paths(settings).tuning
    results = {
        model: tune(settings, data_root, search_dir(settings, model, root), progress,
                    stats_dir=root / "features", model=model)
        for model in tuned_models(settings)
    }
    if settings.tune.per_model and settings.tune.shared_recipe:
        shared_recipe(settings, root)  # writes shared_recipe.json and recipe_fit.csv
    return results


def load_trial_histories(settings: Settings, tuning_dir: str | os.PathLike | None = None):
    """Every searched model's ``trial_histories.csv`` in one table with a ``model`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, trial, epoch, train_loss, valid_loss, lr, epoch_time``; empty
        when no search has run.
    """
    import pandas as pd

    frames = []
    for model in tuned_models(settings):
        path = search_dir(settings, model, tuning_dir) / HISTORIES_CSV_NAME
        if path.exists():
            frame = pd.read_csv(path)
            frame.insert(0, "model", model)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["model", "trial", "epoch", "train_loss", "valid_loss", "lr", "epoch_time"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- transfer
TRANSFER_COLUMNS = ["model", "variant", "epochs", "final_train_loss", "final_valid_loss",
                    "best_valid_loss", "time_s", "run_dir"]


def transfer_settings(settings: Settings, params: dict[str, Any]) -> Settings:
    """Settings of a transfer run: the profile at its own rate and STFT, ``params`` applied,
    ``settings.tune.transfer_epochs`` epochs of ``settings.tune.samples_per_track`` items per
    track (as a trial, so only the rate and the STFT differ from the search), seed
    ``settings.train.seeds[0]``, no tuned parameters read."""
    return _short_run_settings(settings, settings.tune.transfer_epochs, settings.train.seeds[0], params)


def transfer_check(
    settings: Settings,
    data_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
    *,
    stats_dir: str | os.PathLike | None = None,
):
    """Do the values tuned at the lower rate help at the data's full rate? Two short runs.

    For every searched model (:func:`tuned_models`), train ``settings.tune.transfer_epochs``
    epochs at ``settings.data.sample_rate`` with the profile's STFT twice, with the same
    seed and data: once with the tuned values (``best_params.json``) and once with the
    profile's own values of the same settings (what training uses without tuning), into
    ``<search folder>/transfer/tuned/`` and ``.../transfer/default/``. Finished runs are
    reused and interrupted ones continue (as :func:`melunmix.training.train.train`).

    Parameters
    ----------
    settings : Settings
    data_root : path, optional
    out_dir : path, optional
        The tuning folder; default ``results/<profile>/tuning``.
    progress : bool, optional
    stats_dir : path, optional
        Scaler statistics at the full rate; default ``results/<profile>/features`` (those
        training uses) when ``out_dir`` is not given, else ``<out_dir>/transfer/features``.

    Returns
    -------
    pandas.DataFrame
        One row per model and variant (``tuned`` / ``default``): the parameter values,
        epochs trained, final train and validation loss, best validation loss, seconds and
        the run folder relative to ``out_dir`` (``transfer/tuned``); also written to
        ``<out_dir>/transfer.csv``. Empty when ``transfer_epochs`` is 0.

    Raises
    ------
    FileNotFoundError
        A searched model has no ``best_params.json`` yet (run :func:`tune_all` first).
    """
    import pandas as pd


    epochs = int(settings.tune.transfer_epochs)
    if epochs <= 0:
        return pd.DataFrame(columns=TRANSFER_COLUMNS)
    root = Path(out_dir) if out_dir is not None else run_paths(settings).tuning
    if stats_dir is None:
        stats_dir = run_paths(settings).features if out_dir is None else root / TRANSFER_DIR_NAME / "features"
    progress = settings.train.progress if progress is None else bool(progress)
    data = None
    rows = []
    for model in tuned_models(settings):
        folder = search_dir(settings, model, root)
        tuned = load_best_params(folder)
        if tuned is None:
            raise FileNotFoundError(
                f"no {BEST_PARAMS_NAME} in {folder}: the transfer check needs a finished search; run tune_all first"
            )
        variants = {"tuned": dict(tuned), "default": {name: getattr(settings.train, name) for name in tuned}}
        for variant in TRANSFER_VARIANTS:
            params = variants[variant]
            run_settings = transfer_settings(settings, params)
            if data is None:
                data = prepare_data(run_settings, data_root=data_root, stats_dir=stats_dir, progress=progress)
            result = train(model, run_settings, data, folder / TRANSFER_DIR_NAME / variant,
                           seed=run_settings.train.seeds[0], progress=progress)
            history = result.history
            rows.append({
                "model": model, "variant": variant, **params, "epochs": len(history["epoch"]),
                "final_train_loss": history["train_loss"][-1] if history["train_loss"] else None,
                "final_valid_loss": history["valid_loss"][-1] if history["valid_loss"] else None,
                "best_valid_loss": history.get("best_valid_loss"),
                "time_s": round(sum(history["epoch_time"]), 3),
                "run_dir": result.out_dir.relative_to(root).as_posix(),
            })
    names = list(dict.fromkeys(name for row in rows for name in row if name not in TRANSFER_COLUMNS))
    columns = TRANSFER_COLUMNS[:2] + names + TRANSFER_COLUMNS[2:]
    write_text(root / TRANSFER_CSV_NAME, _csv(rows, columns))
    return pd.DataFrame(rows, columns=columns)
