"""The training settings a run uses: the profile's, with a finished search's best values on top.

A search (:mod:`melunmix.training.tune`) leaves ``best_params.json`` in its folder; training
(:mod:`melunmix.training.train`) reads it through :func:`resolve_hyperparameters`. Both ask this
module where a search's folder is and how the file reads, so training does not import
the tuner (the tuner imports training to run its trials).

``best_params.json`` holds the parameters at its top level and a ``search`` summary
(best validation loss, trial, number of trials, rate, STFT, schedule, epochs)::

    {"lr": 0.003, "lr_decay_gamma": 0.4, "search": {"lr_schedule": "exponential", ...}}
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from ..base.config import Settings, TrainSettings, run_paths
from ..base.files import read_json, write_json, write_text
from ..base.names import canonical_model_name

BEST_PARAMS_NAME = "best_params.json"
TRIALS_CSV_NAME = "trials.csv"
#: ``tune.shared_recipe``: the one recipe every model trains with, in the tuning folder.
SHARED_RECIPE_NAME = "shared_recipe.json"
#: ``tune.shared_recipe``: per model, the shared recipe's loss against the model's own best.
RECIPE_FIT_NAME = "recipe_fit.csv"
RECIPE_FIT_COLUMNS = ["model", "shared_valid_loss", "own_best_valid_loss", "gap_pct", "shared_rank",
                      "nb_complete", "own_best_trial", "own_best_params"]
SHARED_RULE = ("among the values every model's search tried, the lowest mean over models of the "
               "validation loss divided by that model's own best")


def tuned_models(settings: Settings) -> list[str]:
    """The models searched with: ``settings.tune.model``, or with ``settings.tune.per_model``
    every model of ``settings.train.models`` (canonical names, in order, without repeats)."""

    names = settings.train.models if settings.tune.per_model else [settings.tune.model]
    return list(dict.fromkeys(canonical_model_name(name) for name in names))


def search_dir(settings: Settings, model_name: str | None = None,
               tuning_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the search whose best parameters model ``model_name`` trains with.

    Parameters
    ----------
    settings : Settings
    model_name : str, optional
        Needed with ``settings.tune.per_model``; ignored otherwise.
    tuning_dir : path, optional
        The tuning folder; default ``results/<profile>/tuning``.

    Returns
    -------
    Path
        ``tuning_dir`` itself (one search, ``settings.tune.model``, read by every model) or,
        with ``settings.tune.per_model``, ``tuning_dir/<model>`` (one search per model).
    """
    root = Path(tuning_dir) if tuning_dir is not None else run_paths(settings).tuning
    if not settings.tune.per_model:
        return root
    if model_name is None:
        raise ValueError("settings.tune.per_model is on: name the model whose search folder is wanted")

    return root / canonical_model_name(model_name)


def load_best_params(tuning_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The tuned training parameters in ``<tuning_dir>/best_params.json``, or None.

    Parameters
    ----------
    tuning_dir : path
        A search folder (``results/<profile>/tuning``, or ``.../tuning/<model>`` with
        ``settings.tune.per_model``; :func:`search_dir`).

    Returns
    -------
    dict or None
        ``{name: value}`` with names of :class:`melunmix.base.config.TrainSettings` fields (the
        ``search`` summary left out); None when the search has not finished (no file yet).

    Raises
    ------
    ValueError
        The file holds no JSON object, or values that are not numbers (the message names
        the file).
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


def load_search_summary(tuning_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``search`` summary of ``<tuning_dir>/best_params.json`` (model, rate, STFT,
    schedule, best trial...), or None when there is no such file or summary."""
    path = Path(tuning_dir) / BEST_PARAMS_NAME
    if not path.exists():
        return None
    content = read_json(path)
    summary = content.get("search") if isinstance(content, dict) else None
    return summary if isinstance(summary, dict) else None


def _complete_trials(path: Path, names: list[str]) -> list[tuple[int, tuple[float, ...], float]]:
    """(trial, parameter values, best validation loss) of the finished trials in ``trials.csv``."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                values = tuple(float(row[name]) for name in names)
                loss = float(row["best_valid_loss"])
            except (KeyError, TypeError, ValueError):
                continue
            if row.get("state") == "COMPLETE" and math.isfinite(loss):
                rows.append((int(row["trial"]), values, loss))
    return rows


def shared_recipe(settings: Settings, tuning_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """One recipe for every model, chosen from the per-model searches (``tune.shared_recipe``).

    Every model's search (``settings.tune.per_model``) draws its seeded start-up values
    alike, so those points are tried by every model. Of the points every model finished,
    the recipe is the one with the lowest mean over models of its validation loss divided
    by that model's own best (so each model weighs the same, whatever its loss level);
    ties go to the earliest trial. How well it suits each model -- its loss against the
    model's own best, and its rank among the model's trials -- is written beside it.

    Parameters
    ----------
    settings : Settings
    tuning_dir : path, optional
        The tuning folder; default ``results/<profile>/tuning``.

    Returns
    -------
    dict or None
        ``{"params": {...}, "fit": [row per model]}`` (:data:`RECIPE_FIT_COLUMNS`), also
        written to ``<tuning_dir>/shared_recipe.json`` and ``recipe_fit.csv``; None while a
        model's search has not finished (no ``best_params.json``).

    Raises
    ------
    ValueError
        No values were finished by every model (the message says how to fix the search).
    """
    root = Path(tuning_dir) if tuning_dir is not None else run_paths(settings).tuning
    names = list(settings.tune.space)
    models = tuned_models(settings)
    trials, summaries = {}, {}
    for model in models:
        folder = search_dir(settings, model, root)
        summary = load_search_summary(folder)
        if summary is None or not (folder / TRIALS_CSV_NAME).exists():
            return None
        summaries[model] = summary
        trials[model] = _complete_trials(folder / TRIALS_CSV_NAME, names)
    losses = {model: {values: loss for _, values, loss in rows} for model, rows in trials.items()}
    best = {model: min(loss.values(), default=math.nan) for model, loss in losses.items()}
    common = set.intersection(*(set(loss) for loss in losses.values())) if losses else set()
    if not common:
        raise ValueError(
            f"no values of {names} were finished by every model's search in {root}, so no recipe can be "
            "shared; keep tune.startup_trials >= 1 and tune.seed the same for every model (the start-up "
            "draws are then alike), or set tune.shared_recipe to false"
        )
    first = {values: number for number, values, _ in reversed(trials[models[0]])}
    chosen = min(common, key=lambda v: (sum(losses[m][v] / best[m] for m in models) / len(models), first.get(v, 0)))
    # trials.csv holds text: an integer setting (batch_size...) goes back to an int
    kinds = {f.name: type(f.default) for f in dataclasses.fields(TrainSettings)}
    params = {name: int(value) if kinds.get(name) is int else value for name, value in zip(names, chosen)}
    fit = []
    for model in models:
        own_number, own_values, own_loss = min(trials[model], key=lambda row: (row[2], row[0]))
        shared_loss = losses[model][chosen]
        fit.append({
            "model": model, "shared_valid_loss": shared_loss, "own_best_valid_loss": own_loss,
            "gap_pct": round(100.0 * (shared_loss / own_loss - 1.0), 3),
            "shared_rank": 1 + sum(loss < shared_loss for loss in losses[model].values()),
            "nb_complete": len(trials[model]), "own_best_trial": own_number,
            "own_best_params": " ".join(f"{n}={v:.4g}" for n, v in zip(names, own_values)),
        })
    reference = summaries[models[0]]
    content = {
        **params,
        "search": {
            "rule": SHARED_RULE, "models": models, "candidates": len(common),
            "mean_loss_over_own_best": sum(losses[m][chosen] / best[m] for m in models) / len(models),
            **{key: reference[key] for key in ("sample_rate", "data_sample_rate", "stft", "lr_schedule",
                                               "epochs", "samples_per_track") if key in reference},
        },
    }
    path = root / SHARED_RECIPE_NAME
    if not path.exists() or read_json(path) != content:
        write_json(path, content)
    lines = [",".join(RECIPE_FIT_COLUMNS)]
    for row in fit:
        lines.append(",".join(repr(v) if isinstance(v, float) else str(v) for v in (row[c] for c in RECIPE_FIT_COLUMNS)))
    text = "\n".join(lines) + "\n"
    fit_path = root / RECIPE_FIT_NAME
    if not fit_path.exists() or fit_path.read_text() != text:  # more trials move the ranks, not the recipe
        write_text(fit_path, text)
    return {"params": params, "fit": fit}


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
        ``<tuning_dir>/<model>/best_params.json`` (see :func:`search_dir`).
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
    if not settings.train.use_tuned:
        return settings.train, None, None
    if settings.tune.per_model and settings.tune.shared_recipe:
        folder = Path(tuning_dir) if tuning_dir is not None else run_paths(settings).tuning
        recipe = shared_recipe(settings, folder)
        if recipe is None:
            return settings.train, None, None
        tuned, source = recipe["params"], folder / SHARED_RECIPE_NAME
        summary_folder = search_dir(settings, tuned_models(settings)[0], folder)
    else:
        folder = search_dir(settings, model_name, tuning_dir)
        tuned = load_best_params(folder)
        if not tuned:
            return settings.train, None, None
        source = folder / BEST_PARAMS_NAME
        summary_folder = folder
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(tuned) - known)
    if unknown:
        raise ValueError(
            f"{source} sets {unknown}, which are not training settings (valid: {sorted(known)}); "
            "fix settings.tune.space and rerun the tuning, or set train.use_tuned to false"
        )
    schedule = (load_search_summary(summary_folder) or {}).get("lr_schedule")
    if "lr_decay_gamma" in tuned and schedule is not None and schedule != settings.train.lr_schedule:
        raise ValueError(
            f"{source} holds an lr_decay_gamma searched with train.lr_schedule {schedule!r}, but this run "
            f"uses {settings.train.lr_schedule!r}; delete {folder} and rerun the tuning, or set "
            "train.use_tuned to false"
        )
    return dataclasses.replace(settings.train, **tuned), dict(tuned), source
