"""The training settings a run uses: the profile's, with a finished search's best values on top.

A search (:mod:`melunmix.tune`) leaves ``best_params.json`` in its folder; training
(:mod:`melunmix.train`) reads it through :func:`resolve_hyperparameters`. Both ask this
module where a search's folder is and how the file reads, so training does not import
the tuner (the tuner imports training to run its trials).

``best_params.json`` holds the parameters at its top level and a ``search`` summary
(best validation loss, trial, number of trials, rate, STFT, schedule, epochs)::

    {"lr": 0.003, "lr_decay_gamma": 0.4, "search": {"lr_schedule": "exponential", ...}}
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from .config import Settings, TrainSettings, run_paths
from .files import read_json

BEST_PARAMS_NAME = "best_params.json"


def tuned_models(settings: Settings) -> list[str]:
    """The models searched with: ``settings.tune.model``, or with ``settings.tune.per_model``
    every model of ``settings.train.models`` (canonical names, in order, without repeats)."""
    from .models import canonical_model_name  # torch only when asked

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
    from .models import canonical_model_name

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
        ``{name: value}`` with names of :class:`melunmix.config.TrainSettings` fields (the
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
