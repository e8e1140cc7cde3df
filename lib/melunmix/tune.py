"""Tuning: the poster's search of the learning rate and its decay at a lower sample rate.

The poster tuned the learning rate and the decay rate on the training set at a lower
sampling rate before the 20-epoch runs. :func:`tune` does that with short runs of
:func:`melunmix.train.train` itself (one folder per trial) and Optuna's TPE sampler; the
objective is a trial's best validation loss (the musdb validation split, which is part of
the training set). Everything lives in ``out_dir`` (``results/<profile>/tuning``):

- ``study.db``: the Optuna study (SQLite), so an interrupted search resumes;
- ``trials/trial_NNN/``: each trial's run folder (history, weights, checkpoint);
- ``trials.csv``: one row per trial (parameters, best validation loss, epochs, time, state);
- ``trial_histories.csv``: every trial's per-epoch losses, for plots;
- ``features/``: the scaler statistics at the tuning rate;
- ``best_params.json``: the best parameters (top level) and a ``search`` summary, written
  when the search is complete and read by training (:func:`load_best_params`,
  ``settings.train.use_tuned``).

Reproducibility: the sampler of trial ``n`` is seeded with ``settings.tune.seed + n``, so
the parameters tried depend only on the seed and the results of earlier trials, whether or
not the search was interrupted; every trial trains with the same seed.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings, TrainSettings, run_paths
from .files import read_json, write_json, write_text

logger = logging.getLogger(__name__)

BEST_PARAMS_NAME = "best_params.json"
TRIALS_CSV_NAME = "trials.csv"
HISTORIES_CSV_NAME = "trial_histories.csv"
STORAGE_NAME = "study.db"
STUDY_NAME = "melunmix-tune"
TRIALS_DIR_NAME = "trials"
SCALES = ("log", "linear")


@dataclass
class TuneResult:
    """What :func:`tune` leaves behind.

    Attributes
    ----------
    out_dir : Path
        The tuning folder.
    best_params : dict
        Best parameters, e.g. ``{"lr": 0.003, "lr_decay_gamma": 0.4}``.
    best_valid_loss : float
        Best validation loss of the best trial.
    best_trial : int
        Its number (0-based, Optuna's).
    trials : pandas.DataFrame
        The trials table (as ``trials.csv``).
    nb_trials_run : int
        Trials this call trained (0 when the search was already complete).
    trials_csv, histories_csv, best_params_json, storage : Path
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
    storage: Path


def load_best_params(tuning_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The tuned training parameters in ``<tuning_dir>/best_params.json``, or None.

    The file holds the parameters at its top level (``{"lr": 0.003, "lr_decay_gamma":
    0.4, "search": {...}}``); ``search`` describes the search (best validation loss,
    trial, number of trials, rate, epochs) and is not a parameter.

    Parameters
    ----------
    tuning_dir : path
        A tuning folder (``results/<profile>/tuning``).

    Returns
    -------
    dict or None
        ``{name: value}`` with names of :class:`melunmix.config.TrainSettings` fields;
        None when the search has not finished (no file yet).
    """
    path = Path(tuning_dir) / BEST_PARAMS_NAME
    if not path.exists():
        return None
    content = read_json(path)
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a JSON object of parameters; delete it and rerun the tuning")
    params = {name: value for name, value in content.items() if name != "search"}
    bad = {name: value for name, value in params.items()
           if isinstance(value, bool) or not isinstance(value, (int, float))}
    if not params or bad:
        raise ValueError(
            f"{path} must map training settings to numbers (got {bad or 'no parameters'}); "
            "delete it and rerun the tuning"
        )
    return params


def search_space(space: dict[str, list[Any]]) -> dict[str, Any]:
    """Optuna distributions from ``settings.tune.space``.

    Parameters
    ----------
    space : dict
        ``{name: [low, high, "log" | "linear"]}``; names are training settings
        (:class:`melunmix.config.TrainSettings` fields). Integer settings (e.g.
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


def trial_settings(settings: Settings, params: dict[str, Any]) -> Settings:
    """Settings of one trial: the profile at the tuning rate, short runs, ``params`` applied.

    The trial trains ``settings.tune.model`` for ``settings.tune.epochs`` epochs of
    ``settings.tune.samples_per_track`` items per track at ``settings.tune.sample_rate``
    with seed ``settings.tune.seed``, and never reads tuned parameters itself.
    """
    trial = copy.deepcopy(settings)
    trial.data.sample_rate = float(settings.tune.sample_rate)
    trial.data.samples_per_track = int(settings.tune.samples_per_track)
    trial.train = dataclasses.replace(
        trial.train, epochs=int(settings.tune.epochs), use_tuned=False, seeds=[int(settings.tune.seed)], **params
    )
    return trial


def _search_signature(settings: Settings, fingerprint: str | None) -> dict[str, Any]:
    """What must not change for a stored study to be continued."""
    tune_settings = dataclasses.asdict(settings.tune)
    for name in ("enabled", "nb_trials"):  # raising nb_trials continues a finished search
        tune_settings.pop(name)
    fixed = dataclasses.asdict(settings.train)
    for name in ("models", "seeds", "device", "progress", "use_tuned", "epochs", *settings.tune.space):
        fixed.pop(name, None)
    return {
        "tune": tune_settings,
        "train": fixed,
        "stft": dataclasses.asdict(settings.stft),
        "model": dataclasses.asdict(settings.model),
        "data": {"seq_dur": settings.data.seq_dur, "valid_seq_dur": settings.data.valid_seq_dur,
                 "targets": list(settings.data.targets), "fingerprint": fingerprint},
    }


def _trial_dir(out_dir: Path, number: int) -> Path:
    return out_dir / TRIALS_DIR_NAME / f"trial_{number:03d}"


def _finished_count(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))


def _read_history(run_dir: Path) -> dict | None:
    from .train import HISTORY_JSON_NAME

    path = run_dir / HISTORY_JSON_NAME
    return read_json(path) if path.exists() else None


def _tables(study, out_dir: Path, param_names: list[str]) -> tuple[str, str, list[dict]]:
    """The trials table and the per-epoch histories of every trial, as CSV text."""
    rows, history_rows = [], []
    for trial in study.get_trials(deepcopy=False):
        history = _read_history(_trial_dir(out_dir, trial.number)) or {}
        epochs = history.get("epoch", [])
        row = {"trial": trial.number, "state": trial.state.name}
        row.update({name: trial.params.get(name) for name in param_names})
        row.update(
            best_valid_loss=trial.value if trial.values else history.get("best_valid_loss"),
            best_epoch=history.get("best_epoch"),
            nb_epochs=len(epochs),
            time_s=round(sum(history.get("epoch_time", [])), 3),
            stop_reason=history.get("stop_reason"),
        )
        rows.append(row)
        for values in zip(*(history.get(c, []) for c in ("epoch", "train_loss", "valid_loss", "lr", "epoch_time"))):
            history_rows.append({"trial": trial.number, **dict(zip(("epoch", "train_loss", "valid_loss", "lr",
                                                                   "epoch_time"), values))})
    columns = ["trial", "state", *param_names, "best_valid_loss", "best_epoch", "nb_epochs", "time_s", "stop_reason"]
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
) -> TuneResult:
    """Search training parameters with short runs at ``settings.tune.sample_rate``.

    Parameters
    ----------
    settings : Settings
        The profile; the ``tune`` section gives the model, number of trials, epochs,
        samples per track, sample rate (Hz), seed and search space.
    data_root : path, optional
        Dataset root (as :func:`melunmix.train.prepare_data`).
    out_dir : path, optional
        Tuning folder; default ``results/<profile>/tuning``.
    progress : bool, optional
        Progress bars of the trials' training; default ``settings.train.progress``.
    stats_dir : path, optional
        Where the statistics at the tuning rate are cached; default ``<out_dir>/features``.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        A bad search space, a stored study made with other settings (the message names
        the file), or every trial diverged.

    Notes
    -----
    ``settings.tune.enabled`` is for the caller (the notebook) to decide whether to
    tune at all; this function always searches. Raising ``settings.tune.nb_trials``
    continues a finished search with the extra trials. One process at a time per
    ``out_dir``: a trial found RUNNING in the study is taken to be an interrupted one.
    """
    import optuna
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState

    from .train import check_run_signature, prepare_data, train

    if settings.tune.nb_trials < 1:
        raise ValueError(f"settings.tune.nb_trials must be at least 1, got {settings.tune.nb_trials}")
    distributions = search_space(settings.tune.space)
    param_names = list(distributions)
    paths = run_paths(settings)
    out_dir = Path(out_dir) if out_dir is not None else paths.tuning
    # Statistics at the tuning rate serve the search only: they stay in its folder.
    stats_dir = Path(stats_dir) if stats_dir is not None else out_dir / "features"
    progress = settings.train.progress if progress is None else bool(progress)
    out_dir.mkdir(parents=True, exist_ok=True)

    base = trial_settings(settings, {})
    data = prepare_data(base, data_root=data_root, stats_dir=stats_dir,
                        sample_rate=settings.tune.sample_rate, progress=progress)
    storage_path = (out_dir / STORAGE_NAME).resolve()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own one line per trial instead
    try:
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=f"sqlite:///{storage_path}", direction="minimize",
            load_if_exists=True, sampler=TPESampler(seed=settings.tune.seed),
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    signature = _search_signature(settings, data.fingerprint)
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", signature)
    else:
        check_run_signature(stored, signature, storage_path, out_dir, what="tuning search")

    def run(number: int, params: dict[str, Any]) -> tuple[float | None, Any]:
        start = time.perf_counter()
        result = train(settings.tune.model, trial_settings(settings, params), data,
                       _trial_dir(out_dir, number), seed=settings.tune.seed, progress=progress)
        value = result.best_valid_loss
        value = value if value is not None and math.isfinite(value) else None
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        outcome = f"best valid loss {value:.5g} (epoch {result.best_epoch})" if value is not None else "diverged"
        line = f"tuning trial {number + 1}/{settings.tune.nb_trials}: {shown} -> {outcome}, {time.perf_counter() - start:.1f} s"
        print(line, flush=True)
        logger.info(line)
        return value, result

    def record(trial_or_number, value: float | None) -> None:
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            if value is None:
                study.tell(trial_or_number, state=TrialState.FAIL)
            else:
                study.tell(trial_or_number, value)
        finally:
            optuna.logging.set_verbosity(verbosity)
        trials_text, histories_text, _ = _tables(study, out_dir, param_names)
        write_text(out_dir / TRIALS_CSV_NAME, trials_text)
        write_text(out_dir / HISTORIES_CSV_NAME, histories_text)

    nb_run = 0
    # A trial whose process was killed stays RUNNING in the storage: finish it first,
    # from its own checkpoint, with the parameters it was given.
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        value, _ = run(stale.number, dict(stale.params))
        record(stale.number, value)
        nb_run += 1
    while _finished_count(study) < settings.tune.nb_trials:
        study.sampler = TPESampler(seed=settings.tune.seed + len(study.trials))
        trial = study.ask(distributions)
        value, _ = run(trial.number, dict(trial.params))
        record(trial, value)
        nb_run += 1

    trials_text, histories_text, rows = _tables(study, out_dir, param_names)
    write_text(out_dir / TRIALS_CSV_NAME, trials_text)
    write_text(out_dir / HISTORIES_CSV_NAME, histories_text)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ValueError(
            f"every tuning trial in {out_dir} diverged (NaN loss); narrow settings.tune.space "
            f"(e.g. a lower learning-rate bound), delete {out_dir} and rerun"
        )
    best = min(complete, key=lambda t: (t.value, t.number))
    best_params_path = out_dir / BEST_PARAMS_NAME
    write_json(best_params_path, {
        **best.params,
        "search": {
            "best_valid_loss": best.value,
            "trial": best.number,
            "nb_trials": len(rows),
            "model": settings.tune.model,
            "sample_rate": float(settings.tune.sample_rate),
            "epochs": int(settings.tune.epochs),
            "samples_per_track": int(settings.tune.samples_per_track),
        },
    })
    import pandas as pd

    return TuneResult(
        out_dir=out_dir, best_params=dict(best.params), best_valid_loss=float(best.value),
        best_trial=best.number, trials=pd.read_csv(out_dir / TRIALS_CSV_NAME), nb_trials_run=nb_run,
        trials_csv=out_dir / TRIALS_CSV_NAME, histories_csv=out_dir / HISTORIES_CSV_NAME,
        best_params_json=best_params_path, storage=storage_path,
    )
