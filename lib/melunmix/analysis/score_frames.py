"""Scores read from museval JSON files into one table, in museval's aggregation.

The museval JSON files that :mod:`melunmix.scoring.evaluate` writes to
``<eval_dir>/<method>/test/<track>.json`` are read into one long table (``load_scores``)
and aggregated exactly as museval does (its own ``MethodStore``): the median over the 1 s
frames of a track (NaN frames, i.e. silent windows, skipped), then the median over tracks
(F.-R. Stöter, A. Liutkus, N. Ito, "The 2018 Signal Separation Evaluation Campaign",
LVA/ICA 2018). A ratio above ``names.RESIDUE_DB`` is floating-point residue and shown as
``inf`` (``mark_residue``); no table is written while a song is unscored
(``require_tracks``). The method names, their order and labels are
:mod:`melunmix.base.names`'.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..base.names import METRICS, RESIDUE_DB, SCORED_TARGETS, order_methods


def method_dirs(eval_dir: str | os.PathLike, subset: str = "test") -> list[Path]:
    """The method folders of ``eval_dir`` that hold at least one scored track, sorted by name."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        return []
    return sorted(
        p for p in eval_dir.iterdir() if p.is_dir() and any(_track_jsons(p, subset))
    )


def _track_jsons(method_dir: Path, subset: str = "test") -> list[Path]:
    # Hidden files are temporaries of an interrupted atomic write, never results.
    return sorted(
        p for p in (method_dir / subset).glob("*.json") if not p.name.startswith(".")
    )


def load_scores(
    eval_dir: str | os.PathLike, methods: Sequence[str] | None = None, subset: str = "test"
) -> pd.DataFrame:
    """Every frame score under ``eval_dir`` as one long table, read by museval's own stores.

    Each ``<eval_dir>/<method>/test/<track>.json`` is parsed with ``museval.json2df`` into an
    ``EvalStore`` per method, and the stores are joined in a ``MethodStore``.

    Parameters
    ----------
    eval_dir : path
        Folder holding one sub-folder per method (``results/<profile>/eval``).
    methods : sequence of str, optional
        Load only these methods (default: every method folder found).
    subset : str
        The scored subset's folder (museval's layout: ``test``, or ``train``).

    Returns
    -------
    pandas.DataFrame
        Columns ``method, track, target, metric, time, score``: one row per frame and
        metric; ``time`` is the frame start (s), ``score`` in dB (NaN for silent frames).

    Raises
    ------
    FileNotFoundError
        When ``eval_dir`` holds no scored track, or a requested method has none.
    """
    import museval
    import simplejson

    eval_dir = Path(eval_dir)
    found = {p.name: p for p in method_dirs(eval_dir, subset)}
    if methods is None:
        names = list(found)
    else:
        names = list(methods)
        missing = [m for m in names if m not in found]
        if missing:
            raise FileNotFoundError(
                f"no scored tracks for method(s) {missing} under {eval_dir} "
                f"(found: {sorted(found)}); run melunmix.scoring.evaluate.evaluate_model or "
                "evaluate_oracle for them first"
            )
    if not names:
        raise FileNotFoundError(
            f"no museval JSON files under {eval_dir}/<method>/{subset}/; run "
            "melunmix.scoring.evaluate.evaluate_model or evaluate_oracle first"
        )
    store = museval.MethodStore()
    for name in names:
        method = museval.EvalStore()
        for path in _track_jsons(found[name], subset):
            try:
                data = simplejson.loads(path.read_text(), allow_nan=True)
                method.add_track(museval.json2df(data, path.stem))
            except (ValueError, KeyError) as err:
                raise ValueError(
                    f"{path} is not a museval score file ({err}); delete it and rerun the "
                    "evaluation, which rescores missing tracks"
                ) from err
        # The folder name is the method: MethodStore.add_eval_dir would use Path.stem,
        # which cuts names at a dot.
        store.add_evalstore(method, name)
    df = store.df[["method", "track", "target", "metric", "time", "score"]]
    return mark_residue(df.astype({"score": float, "time": float}).reset_index(drop=True))


def mark_residue(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every score above :data:`RESIDUE_DB` set to ``+inf``.

    A frame above that ratio is the signal over the floating-point residue of BSS Eval's
    projection (MIX's SAR: the mixture carries no artefacts), a number that depends on the
    CPU's rounding rather than on the estimate. Its median over frames and tracks stays
    ``inf``; :func:`paired_differences` and :func:`model_medians` count only finite
    values. This is a deviation from museval, which prints the residue's ratio (README,
    deviations table). NaN (silent frames) stays NaN.
    """
    scores = df["score"].to_numpy(dtype=float)
    if not np.any(scores > RESIDUE_DB):
        return df
    return df.assign(score=np.where(scores > RESIDUE_DB, np.inf, scores))


def method_order(methods: Iterable[str], order: Sequence[str] | None) -> list[str]:
    methods = list(dict.fromkeys(methods))
    if order is not None:
        unknown = [m for m in order if m not in methods]
        if unknown:
            raise ValueError(f"methods {unknown} have no scores; scored methods: {sorted(methods)}")
        return list(order)
    return order_methods(methods)


def target_order(targets: Iterable[str]) -> list[str]:
    targets = set(targets)
    return [t for t in SCORED_TARGETS if t in targets] + sorted(targets - set(SCORED_TARGETS))


def method_store(df: pd.DataFrame):
    import museval

    required = {"method", "track", "target", "metric", "score"}
    if not isinstance(df, pd.DataFrame) or not required <= set(df.columns):
        raise ValueError(
            f"expected the frame scores of load_scores (columns {sorted(required)}), got "
            f"{list(getattr(df, 'columns', []))}"
        )
    if df.empty:
        raise ValueError("the score table is empty; evaluate some tracks first")
    store = museval.MethodStore(frames_agg="median", tracks_agg="median")
    store.df = mark_residue(df)
    return store


def per_track_wide(df: pd.DataFrame) -> pd.DataFrame:
    """Per-track medians, index (method, target, track), columns the metrics."""
    wide = method_store(df).agg_frames_scores().unstack("metric")
    wide = wide.reindex(columns=[m for m in METRICS if m in wide.columns])
    wide.columns.name = None
    return wide.reorder_levels(["method", "target", "track"]).sort_index()


def require_tracks(df: pd.DataFrame, tracks: Sequence[str], methods: Sequence[str] | None = None,
                   where: str | os.PathLike | None = None) -> None:
    """Refuse to aggregate while a method lacks the scores of a track.

    Scoring in shards (``melunmix score --shard I/N``) writes each track's JSON from
    another job; tables made before the last shard finished would silently describe fewer
    songs, so they are refused instead.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores` (may be empty).
    tracks : sequence of str
        Every track the tables must describe (e.g. the root's test songs).
    methods : sequence of str, optional
        Methods that must have them all (default: every method of ``df``).
    where : path, optional
        The folder the scores were read from, for the message.

    Raises
    ------
    ValueError
        Naming each method's missing tracks (up to 10, then a count) and the folder.
    """
    methods = list(dict.fromkeys(df["method"])) if methods is None else list(methods)
    problems = []
    for method in methods:
        scored = set(df.loc[df["method"] == method, "track"])
        missing = [name for name in tracks if name not in scored]
        if missing:
            shown = ", ".join(repr(name) for name in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            problems.append(f"{method!r} lacks {len(missing)} of {len(tracks)} tracks: {shown}{more}")
    if problems:
        place = f" in {where}" if where is not None else ""
        raise ValueError(
            f"no tables yet: {'; '.join(problems)}{place}. Score them first (a shard that has not finished "
            "or failed: rerun it; finished tracks are skipped)"
        )
