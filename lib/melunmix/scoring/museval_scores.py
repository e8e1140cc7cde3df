"""One track's BSS Eval v4 scores, as museval gives them, and their museval JSON files.

:func:`score_estimates` scores a track's ``vocals`` and ``accompaniment`` estimates as a
pair (1 s windows and hops, BSS Eval v4: one time-invariant distortion filter per track)
with :mod:`melunmix.dsp.bsseval` (the default) or ``museval.eval_mus_track`` itself; the
result is a ``museval.TrackStore``. :func:`write_track_scores` writes it atomically to
``<eval_dir>/<method>/test/<track>.json`` (:func:`track_json_path`), the names and format
that ``museval.EvalStore.add_eval_dir`` and ``museval.MethodStore.add_eval_dir`` read,
and :func:`is_scored` tells a complete file from a missing or cut one.

Who calls it: :mod:`melunmix.scoring.evaluate` (the study's models and oracles, in a process
pool) and :mod:`melunmix.commands.score` (``melunmix score``: a folder of any system's estimates,
which reuses the evaluation's pool). Tables from these files: :mod:`melunmix.analysis.stats`.

Example
-------
>>> from melunmix.scoring.track_audio import load_track
>>> audio = load_track(track)                                         # doctest: +SKIP
>>> store = score_estimates(audio, {"vocals": v, "accompaniment": a})  # doctest: +SKIP
>>> write_track_scores(store, track_json_path("eval", "mine", audio.name))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from ..dsp.bsseval import track_store
from ..base.files import atomic_path
from ..base.names import SCORED_TARGETS, TARGETS
from .track_audio import TrackAudio

#: BSS Eval v4 implementations that give museval's numbers (see :func:`score_estimates`).
SCORERS = ("fast", "museval")
#: museval's subset folder that its stores read (``<method>/test/*.json``).
SUBSET = "test"


def references_for(audio: TrackAudio, targets) -> dict[str, np.ndarray]:
    """The true audio of ``targets`` (musdb's order): the scored pair from
    ``audio.references``, drums, bass and other from ``audio.stems``."""
    out = {}
    for target in TARGETS:
        if target in targets:
            reference = audio.references.get(target)
            if reference is None:
                reference = audio.stems.get(target)
            if reference is None:
                raise ValueError(f"track '{audio.name}' has no true {target} to score an estimate against")
            out[target] = reference
    return out


def as_musdb_track(audio: TrackAudio, references: Mapping[str, np.ndarray] | None = None):
    """An in-memory musdb track (what ``museval.eval_mus_track`` reads) holding ``audio``
    (its ``references``, or those given)."""
    import musdb

    track = musdb.MultiTrack(path="", name=audio.name, subset=SUBSET, is_wav=True)
    track.rate = audio.rate
    track.sources, track.targets = {}, {}
    for target, reference in (audio.references if references is None else references).items():
        source = musdb.Source(track, name=target, path="")
        source.audio = reference
        track.sources[target] = source
        track.targets[target] = musdb.Target(track, sources=[source], name=target)
    return track


def score_estimates(
    audio: TrackAudio,
    estimates: Mapping[str, np.ndarray],
    win: float = 1.0,
    hop: float = 1.0,
    source: str = "the estimates",
    scorer: str = "fast",
):
    """BSS Eval v4 scores of one track's estimates, as museval gives them.

    As ``museval.eval_mus_track``: the estimated stems (vocals, drums, bass, other) are
    scored together when there are at least two, and vocals with accompaniment as a pair
    (the vocals' scores then come from the pair). The study scores the pair only.

    Parameters
    ----------
    audio : TrackAudio
        The track (:func:`melunmix.scoring.track_audio.load_track`).
    estimates : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        ``"vocals"`` and ``"accompaniment"``, and any of ``"drums"``, ``"bass"``,
        ``"other"`` (at least the pair, or any two targets), with exactly the mixture's shape;
        museval itself would silently pad or cut an estimate of another length. Other
        keys are ignored, as museval does.
    win, hop : float
        museval window and hop in seconds (SiSEC: 1 and 1).
    source : str
        What made the estimates (method, model files), named in error messages.
    scorer : {"fast", "museval"}
        ``"fast"``: :mod:`melunmix.dsp.bsseval`, museval's numbers to museval's own round-off
        (largest difference measured 3e-5 dB) about 17x faster per core and in ~0.1 GB;
        ``"museval"``: ``museval.eval_mus_track`` itself (the reference).

    Returns
    -------
    museval.TrackStore
        Frame-wise SDR, SIR, ISR, SAR (dB) of every scored target; ``.json`` is museval's file.

    Raises
    ------
    ValueError
        A missing target, an estimate of the wrong shape, or NaN / infinite samples.
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}")
    present = [t for t in TARGETS if t in estimates]
    if not all(t in present for t in SCORED_TARGETS) and len(present) < 2:  # museval's rule
        missing = [t for t in SCORED_TARGETS if t not in present]
        raise ValueError(
            f"{source} give no {missing[0]!r} estimate for track '{audio.name}' (got {sorted(estimates)}); "
            "vocals and accompaniment are scored as a pair (or any two targets together): separate with "
            "residual=True or provide an accompaniment model"
        )
    checked = {}
    for target in present:
        estimate = np.asarray(estimates[target])
        if estimate.shape != audio.mixture.shape:
            raise ValueError(
                f"{source}: the {target} estimate of track '{audio.name}' has shape {estimate.shape}, "
                f"expected the mixture's (nb_samples, nb_channels) = {audio.mixture.shape}; an "
                "estimate must have the input's exact length and channels"
            )
        if not np.all(np.isfinite(estimate)):
            raise ValueError(
                f"{source}: the {target} estimate of track '{audio.name}' has NaN or infinite "
                "samples; the model's output is not finite (diverged training or a corrupt "
                "model file): retrain or check the model file"
            )
        if not np.any(estimate):
            raise ValueError(
                f"{source}: the {target} estimate of track '{audio.name}' is silent (all zeros) over the "
                "whole track; BSS Eval cannot score a silent estimate (museval refuses it too): check "
                "that the estimate file holds the separated audio"
            )
        checked[target] = estimate.astype(np.float64, copy=False)
    with warnings.catch_warnings():
        # Silent windows (e.g. vocals that rest) give log10(0) inside bss_eval; museval
        # turns them into NaN frames, which the aggregation skips, as in SiSEC.
        warnings.simplefilter("ignore", RuntimeWarning)
        if scorer == "fast":
            store = track_store(references_for(audio, checked), checked, audio.rate, win, hop,
                                track_name=audio.name)
        else:
            import museval

            store = museval.eval_mus_track(as_musdb_track(audio, references_for(audio, checked)), checked,
                                           output_dir=None, mode="v4", win=win, hop=hop)
    store.validate()
    return store


def track_json_path(eval_dir: str | os.PathLike, method: str, track_name: str, subset: str = SUBSET) -> Path:
    """``<eval_dir>/<method>/test/<track_name>.json``, museval's layout."""
    return Path(eval_dir) / method / subset / f"{track_name}.json"


def write_track_scores(store, path: str | os.PathLike) -> Path:
    """Write a ``museval.TrackStore`` as museval's JSON, atomically."""
    # Empty suffix: the temporary name must not end in .json, or museval's glob of an
    # interrupted run would read a half-written file as a track.
    with atomic_path(path, suffix="") as tmp:
        tmp.write_text(store.json)
    return Path(path)


def is_scored(path: str | os.PathLike) -> bool:
    """True if ``path`` is a complete museval JSON with vocals and accompaniment frames."""
    import simplejson

    path = Path(path)
    if not path.is_file():
        return False
    try:
        data = simplejson.loads(path.read_text(), allow_nan=True)
        targets = {t["name"]: t["frames"] for t in data["targets"]}
    except (ValueError, KeyError, TypeError):
        return False
    return all(isinstance(targets.get(t), list) and targets[t] for t in SCORED_TARGETS)


__all__ = ["SCORERS", "SUBSET", "as_musdb_track", "score_estimates", "track_json_path", "write_track_scores",
           "is_scored"]
