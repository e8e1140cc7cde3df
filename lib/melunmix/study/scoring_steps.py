"""Notebook 05's steps: every model, seed, half-training checkpoint and oracle of a run scored; the comparisons the study makes."""

from __future__ import annotations

import pandas as pd

from ..scoring import evaluate
from ..analysis import score_frames
from .run_setup import Run, check_external_models, model_runs, tracks


def evaluate_all(run: Run, test_tracks=None) -> pd.DataFrame:
    """Score every trained model, every model of ``evaluate.models`` (trained elsewhere) and
    every oracle of the profile on the test tracks.

    Tracks already scored are skipped. The oracles are skipped, with one line saying why,
    when a test song holds mixture + vocals only (:func:`oracles_for`). Returns museval's
    long table of frame scores.
    """
    ev = run.settings.evaluate
    external = check_external_models(run.settings)
    test_tracks = tracks(run, "test") if test_tracks is None else test_tracks
    oracles = oracles_for(ev.oracles, test_tracks)
    with evaluate.shared_workers(ev.jobs):  # one pool of scoring workers for every method
        _evaluate_methods(run, test_tracks, external, oracles)
    methods = [item.method for item in model_runs(run, half=ev.half_training) if item.weights.exists()]
    methods += list(ev.models) + list(oracles)
    return score_frames.load_scores(run.paths.eval, methods)


def oracles_for(oracles, test_tracks) -> list[str]:
    """The profile's ``oracles`` where they are defined: all of them when every test song has
    the four MUSDB18 stems, none (and one printed line saying why) otherwise."""
    partial = [track.name for track in test_tracks if not track.layout.four_sources]
    if oracles and partial:
        print(f"oracles {', '.join(oracles)} skipped: {len(partial)} test song(s) hold mixture + vocals only "
              f"(e.g. {partial[0]!r}); SiSEC 2018's oracles are defined on the four MUSDB18 stems")
        return []
    return list(oracles)


def _evaluate_methods(run: Run, test_tracks, external: dict, oracles) -> None:
    ev = run.settings.evaluate
    for item in model_runs(run, half=ev.half_training):
        if item.half and not item.weights.exists():
            continue  # runs shorter than 2 epochs have no half-training weights
        evaluate.evaluate_model(
            {item.target: item.weights}, test_tracks, run.paths.eval, item.method,
            niter=ev.niter, softmask=ev.softmask, residual=ev.residual, wiener_win_len=ev.wiener_win_len,
            jobs=ev.jobs, progress=run.settings.train.progress, win=ev.win, hop=ev.hop,
            expected_model=item.model, n_fft=run.settings.stft.n_fft, n_hop=run.settings.stft.n_hop,
            scorer=ev.scorer, device=run.settings.train.device,
        )
    for name, path in ev.models.items():
        evaluate.evaluate_pretrained(
            external[name], test_tracks, run.paths.eval, name, sample_rate=run.settings.data.sample_rate,
            niter=ev.niter, softmask=ev.softmask, residual=ev.residual, wiener_win_len=ev.wiener_win_len,
            jobs=ev.jobs, progress=run.settings.train.progress, device=run.settings.train.device, win=ev.win,
            hop=ev.hop, scorer=ev.scorer,
        )
    for name in oracles:
        evaluate.evaluate_oracle(name, test_tracks, run.paths.eval, jobs=ev.jobs,
                                 progress=run.settings.train.progress, win=ev.win, hop=ev.hop,
                                 scorer=ev.scorer)


def comparisons(run: Run) -> list[tuple[str, str]]:
    """Pairs (model, baseline) to test per seed: every other model against Open-Unmix."""
    by_seed: dict[int, dict[str, str]] = {}
    for item in model_runs(run):
        by_seed.setdefault(item.seed, {})[item.model] = item.method
    pairs = []
    for methods in by_seed.values():
        baseline = methods.get("openunmix")
        if baseline is not None:
            pairs += [(method, baseline) for model, method in methods.items() if model != "openunmix"]
    return pairs
