"""Independent training runs side by side: one process and one thread per run.

A study trains many small networks (models x seeds) that do not share anything but their
data. One small network keeps a core busy only part of the time (measured at an earlier
study's sizes, hidden 128, 2048/512, batches of 16 x 4 s: the baseline took 1.08 s per
step on one thread and 0.58 s on two, the proposed model 1.29 s and 1.10 s), so on a CPU
the cheaper way to use
``n`` cores is ``n`` runs at once, each on one thread, rather than one run on ``n``.

:func:`train_side_by_side` does that with a process pool (``train.jobs`` workers, spawned,
each limited to one torch / BLAS thread and dying with the parent as the scoring pool's
workers do: :func:`melunmix.base.processes.init_pool_worker`). Each worker trains whole runs
with :func:`melunmix.training.train.train`, so everything a run does alone holds here too: its
checkpoint after every epoch, resume after a kill, reuse when finished. Which run a worker
takes does not change the run: its random streams come from its own seed.

What the thread count changes: a run's arithmetic on one thread can round differently
from the same run on two (like another CPU's vector instructions; README, Testing), so a
run's ``settings.json`` records the threads it trained with.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from ..base.devices import resolve_device
from ..base.processes import children_ignore_sigint, init_pool_worker, kill_pool_workers, usable_cores
from .model_setup import build_training_model
from .train import train

if TYPE_CHECKING:  # pragma: no cover
    from ..base.config import Settings
    from .training_data import TrainingData
    from .train import TrainResult


@dataclass(frozen=True)
class RunSpec:
    """One training run: a model, a seed and its folder."""

    method: str  # evaluation method name, e.g. "openunmix-seed1"
    model: str
    seed: int
    out_dir: Path


def jobs_for(settings: "Settings", nb_runs: int) -> int:
    """Runs trained at once: ``train.jobs`` (``None``: one per usable core), at most
    ``nb_runs``; 1 on a GPU (one device, shared) and in a ``torchrun`` group."""

    wanted = settings.train.jobs
    jobs = usable_cores() if wanted is None else int(wanted)
    if jobs < 1:
        raise ValueError(f"train.jobs must be at least 1 (or null: one per core), got {wanted!r}")
    if resolve_device(settings.train.device).type != "cpu" or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    return max(1, min(jobs, nb_runs))


def _train_one(spec: RunSpec, settings: "Settings", data: "TrainingData", tuning_dir: Path | None):

    return spec.method, train(spec.model, settings, data, out_dir=spec.out_dir, seed=spec.seed, progress=False,
                              tuning_dir=tuning_dir)


def _summary(result: "TrainResult") -> str:
    if result.already_finished:
        return "already trained"
    loss = result.best_valid_loss
    shown = "-" if loss is None else f"{loss:.4g}"
    return (f"{result.last_epoch} epochs, best validation loss {shown} at epoch {result.best_epoch}"
            f" ({result.stop_reason or 'not finished'})")


def train_side_by_side(
    specs: list[RunSpec],
    settings: "Settings",
    data: "TrainingData",
    tuning_dir: str | os.PathLike | None = None,
    jobs: int | None = None,
    progress: bool = False,
) -> dict[str, "TrainResult"]:
    """Train every run of ``specs``, ``jobs`` at a time (default :func:`jobs_for`).

    With one job the runs train one after the other in this process (its threads, its
    progress bars); with more, in a pool of one-thread workers, and a line is printed as
    each run ends. A run that fails stops the other workers at once (their runs resume
    from their last checkpoint on the next call) and its error is raised here; finished
    runs stay finished.

    Returns
    -------
    dict of str to TrainResult
        By ``spec.method``, in the order of ``specs``.
    """

    jobs = jobs_for(settings, len(specs)) if jobs is None else max(1, min(int(jobs), len(specs)))
    tuning = Path(tuning_dir) if tuning_dir is not None else None
    if jobs <= 1:
        results = {}
        for spec in specs:
            results[spec.method] = train(spec.model, settings, data, out_dir=spec.out_dir, seed=spec.seed,
                                         progress=progress, tuning_dir=tuning)
        return results
    # The second branch's input statistics are computed (or read) here once, so the
    # workers do not compute them side by side; they travel with ``data``.
    for model in dict.fromkeys(spec.model for spec in specs):
        build_training_model(model, settings, data)
    print(f"training {len(specs)} runs, {jobs} at a time (one thread each)", flush=True)
    results: dict[str, TrainResult] = {}
    # spawn: a forked child of a process that already ran torch's OpenMP pool can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=init_pool_worker,
                             initargs=(os.getpid(),)) as pool:
        with children_ignore_sigint():
            futures = [pool.submit(_train_one, spec, settings, data, tuning) for spec in specs]
        try:
            for done, future in enumerate(as_completed(futures), 1):
                method, result = future.result()
                results[method] = result
                print(f"[{done}/{len(specs)}] {method}: {_summary(result)}", flush=True)
        except BaseException:
            # A failed run, Ctrl-C or SystemExit: the other runs stop now (not at the end
            # of their training) and resume from their checkpoints on the next call.
            for future in futures:
                future.cancel()
            kill_pool_workers(pool)
            raise
    return {spec.method: results[spec.method] for spec in specs}
