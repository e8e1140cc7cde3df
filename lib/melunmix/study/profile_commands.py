"""A whole profile's training and tuning, as ``melunmix train`` (also under ``torchrun``) and ``melunmix tune`` run them.

They know profiles and runs, so they live in the study layer, and the training layer
(``train``, ``tune``) never imports them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..base.config import load_profile, run_paths
from ..base.names import canonical_model_name
from .run_setup import model_runs, open_run

if TYPE_CHECKING:  # only for the annotations: train and tune are imported when called
    from ..training.train import TrainResult
    from ..training.tune import TuneResult


def train_profile(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    stand_in: bool = False,
    progress: bool | None = None,
    device: str | None = None,
) -> dict[str, TrainResult]:
    """Train a profile's models and seeds (what notebook 04 trains), in one or several processes.

    Started by ``torchrun`` (``torchrun --nproc_per_node N -m melunmix.training.train --profile X``),
    every process runs this function: it joins the process group
    (:func:`melunmix.training.distributed.init_from_environment`: NCCL on GPUs, gloo on CPUs), rank
    0 prepares the data first (dataset, caches, statistics) and the others then read it,
    and each run of :func:`melunmix.training.train.train` is data parallel. Without ``torchrun`` it
    is one process. Finished runs are skipped and interrupted ones resume from their
    checkpoint, with any number of processes.

    Parameters
    ----------
    profile : str
        Profile name or YAML path.
    data_root, results_dir, stand_in
        As :func:`open_run`.
    models : list of str, optional
        Train only these models of the profile (default: all of ``train.models``).
    seeds : list of int, optional
        Train only these seeds of the profile (default: all of ``train.seeds``).
    progress : bool, optional
        Progress bars (rank 0 only); default ``settings.train.progress``.
    device : str, optional
        Overrides the profile's ``train.device`` (as :func:`open_run`).

    Returns
    -------
    dict of str to TrainResult
        By evaluation method name (``openunmix``, ``melunmix-seed42``, ...).

    Raises
    ------
    ValueError
        A model or seed the profile does not train (the message lists those it does), and
        see :func:`open_run`.
    """
    import torch

    from ..training import distributed  # torch.distributed only when training
    # training only when called: `melunmix` commands and notebooks stay light
    from ..training.side_by_side import RunSpec, train_side_by_side
    from ..training.train import train  # as above
    from ..training.training_data import prepare_data  # as above

    from ..base.devices import device_overrides  # torch only when a step runs on a device

    # Bad arguments fail in every process before any joins the group.
    settings = load_profile(profile, overrides=device_overrides(device))
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
            run = open_run(profile, data_root, results_dir, progress=show, stand_in=stand_in, device=device)
            data = prepare_data(run.settings, run.data_root, stats_dir=run.paths.features, progress=show)
        specs = [RunSpec(item.method, item.model, item.seed, item.out_dir) for item in model_runs(run)
                 if (wanted_models is None or item.model in wanted_models)
                 and (not seeds or item.seed in [int(s) for s in seeds])]
        if ranks.is_distributed:  # every run data parallel over the group, one after the other
            settings = run.settings.to_dict()
            settings["data"].pop("root", None)  # the same data may sit at another path on each node
            settings["train"].pop("progress", None)
            distributed.agree({"settings": settings, "data": data.fingerprint,
                               "runs": [f"{spec.method}" for spec in specs]}, ranks, "runs to train")
            return {spec.method: train(spec.model, run.settings, data, out_dir=spec.out_dir, seed=spec.seed,
                                       progress=show, tuning_dir=run.paths.tuning) for spec in specs}
        return train_side_by_side(specs, run.settings, data, tuning_dir=run.paths.tuning, progress=show)
    finally:
        if joined:
            distributed.shutdown()


def tune_profile(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    storage: str | None = None,
    stand_in: bool = False,
    progress: bool | None = None,
    device: str | None = None,
) -> dict[str, TuneResult]:
    """One tuning worker: every search of a profile (:func:`melunmix.training.tune.tune_all`) into
    its tuning folder.

    Start one per machine or job on a shared storage (``storage``, or the profile's
    ``tune.storage``): each worker takes trials until the search has
    ``tune.nb_trials``, finishes those of killed workers, and waits for the others' to
    end; then each writes the tables and ``best_params.json`` from the storage. With the
    default storage (the folder's own SQLite file) it is the one process of the search.

    Parameters
    ----------
    profile : str
        Profile name or YAML path.
    data_root, results_dir, stand_in
        As :func:`open_run`.
    storage : str, optional
        Overrides ``tune.storage``: a database URL or a journal file path (see
        :func:`melunmix.training.tune.open_storage`).
    progress : bool, optional
        Progress bars; default ``settings.train.progress``.
    device : str, optional
        Overrides the profile's ``train.device`` for the trials (as :func:`open_run`).

    Returns
    -------
    dict of str to TuneResult
        By canonical model name.
    """
    import contextlib
    import copy

    from ..training.tune import preparing_lock, tune_all  # optuna and training only when tuning

    loaded = load_profile(profile)
    shared = (storage or loaded.tune.storage) is not None
    # Workers started together make the dataset (first use) one at a time.
    lock = preparing_lock(run_paths(loaded, results_dir).tuning) if shared else contextlib.nullcontext()
    with lock:
        run = open_run(profile, data_root, results_dir, progress=progress, stand_in=stand_in, device=device)
    settings = run.settings
    if storage is not None:
        settings = copy.deepcopy(settings)
        settings.tune.storage = str(storage)
    return tune_all(settings, run.data_root, out_dir=run.paths.tuning, progress=progress)
