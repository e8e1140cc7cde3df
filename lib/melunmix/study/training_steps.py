"""Notebook 04's steps: every model and seed of a run trained, their parameters, histories and losses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..base.files import atomic_path, read_json
from ..base.names import HISTORY_CSV_NAME, HISTORY_JSON_NAME, table_file
from .report import loss_summary, matched_steps, stop_reason
from .run_setup import Run, model_runs


def train_models(run: Run, data=None) -> dict:
    """Train (or resume, or reuse) every model and seed of the profile; method -> TrainResult."""
    # training only when called: `melunmix` commands and notebooks stay light
    from ..training.side_by_side import RunSpec, train_side_by_side
    from ..training.training_data import prepare_data  # training only when called: `melunmix` commands and notebooks stay light

    if data is None:
        data = prepare_data(run.settings, run.data_root, stats_dir=run.paths.features)
    specs = [RunSpec(item.method, item.model, item.seed, item.out_dir) for item in model_runs(run)]
    return train_side_by_side(specs, run.settings, data, tuning_dir=run.paths.tuning,
                              progress=run.settings.train.progress)


def parameter_table(run: Run) -> pd.DataFrame:
    """Trainable parameters of every trained model (read from the saved weights).

    One row per model (``model``, ``class``, ``feature``, ``parameters``): the seeds of a
    model share its architecture. The control (``linunmix``) must equal the proposed
    model's count; that is the point of it.
    """
    from ..models.networks import load_model, trainable_parameters  # torch only when models are loaded

    rows = {}
    for item in model_runs(run):
        if item.model in rows or not item.weights.exists():
            continue
        model = load_model(item.weights)
        rows[item.model] = {"model": item.model, "class": type(model).__name__,
                            "feature": getattr(model, "feature", "linear spectrogram only"),
                            "parameters": trainable_parameters(model)}
    return pd.DataFrame(list(rows.values()), columns=["model", "class", "feature", "parameters"])


def load_histories(run: Run) -> dict[str, pd.DataFrame]:
    """Per-epoch history (``epoch, train_loss, valid_loss, lr, epoch_time``, ...) of every
    trained model, with ``step``: optimiser steps at the epoch's end (from
    ``history.json``'s ``steps_per_epoch``, when recorded)."""

    histories = {}
    for item in model_runs(run):
        path = item.out_dir / HISTORY_CSV_NAME
        if path.exists():
            history = pd.read_csv(path)
            steps = _steps_per_epoch(item.out_dir)
            if steps:
                history["step"] = history["epoch"] * int(steps)
            histories[item.method] = history
    return histories


def _steps_per_epoch(out_dir: Path) -> int | None:
    """A run's optimiser steps per epoch (``history.json``), None when not recorded."""

    path = out_dir / HISTORY_JSON_NAME
    return (read_json(path) or {}).get("steps_per_epoch") if path.exists() else None


def half_training_step(run: Run) -> int | None:
    """Optimiser steps at the end of the half-training epoch (``train.epochs // 2``), where
    half-trained weights are scored; None when the profile scores none
    (``evaluate.half_training: false``) or before any run recorded its steps per epoch."""
    from ..training.run_files import half_epoch  # training only when called: `melunmix` commands and notebooks stay light

    if not run.settings.evaluate.half_training:
        return None
    for item in model_runs(run):
        steps = _steps_per_epoch(item.out_dir)
        if steps:
            return half_epoch(run.settings.train.epochs) * int(steps)
    return None


def stop_reasons(run: Run) -> dict[str, str | None]:
    """Why each trained run stopped (``history.json``'s ``stop_reason``), by method."""

    return {item.method: stop_reason(item.out_dir / HISTORY_JSON_NAME) for item in model_runs(run)}


def loss_table(run: Run, histories: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Final and best losses of every trained model, written to ``tables/losses.csv``
    (and the models at matched steps, :func:`melunmix.study.report.matched_steps`, to
    ``tables/matched_steps.csv``).

    Parameters
    ----------
    run : Run
    histories : dict, optional
        Method -> history, as :func:`load_histories` returns (read when not given).

    Returns
    -------
    pandas.DataFrame
        :func:`melunmix.study.report.loss_summary` of the histories (one row per method), the
        table the report shows under "Training".
    """

    histories = load_histories(run) if histories is None else histories
    losses = loss_summary(histories, stop_reasons(run))
    with atomic_path(run.paths.tables / table_file("losses")) as tmp:
        losses.to_csv(tmp)
    with atomic_path(run.paths.tables / table_file("matched_steps")) as tmp:
        matched_steps(histories).to_csv(tmp)
    return losses
