"""Aggregate museval scores into the study's tables, and compare methods statistically.

Scores are read from the museval JSON files that :mod:`melunmix.scoring.evaluate` writes to
``<eval_dir>/<method>/test/<track>.json`` and aggregated exactly as museval does (its own
``EvalStore`` / ``MethodStore``): the median over the 1 s frames of a track (NaN frames,
i.e. silent windows, skipped), then the median over tracks [1]_.

Tables
------
- :func:`poster_table`: median SDR, SIR, ISR, SAR (dB) per method and target, the table of
  the poster and of SiSEC 2018.
- :func:`track_table`: the per-track medians behind it (museval's long format), and
  :func:`track_counts`: how many tracks each method has scores for.
- :func:`paired_wilcoxon`: Wilcoxon signed-rank test of two methods on paired per-track
  medians, per metric.
- :func:`bootstrap_ci`: percentile bootstrap intervals of each median over tracks.
- :func:`aggregate_seeds`: mean and spread of the medians over training seeds, for methods
  named ``<model>-seed<seed>``; :func:`main_table`: the same as one row per model (mean ± sd
  over seeds), with parameter counts when given.
- :func:`paired_differences`: every model against the baseline and the proposed model
  against each control, song by song (seeds paired), with a crossed bootstrap interval
  (songs and seeds resampled), song-level Wilcoxon and Holm-corrected p-values, a
  seed-level test and an equivalence verdict (two one-sided tests at
  :data:`EQUIVALENCE_DB`); :func:`answer_sentence` states one of its rows in words.
- :func:`model_medians`: median over songs of each model's seed-averaged scores, with the
  same bootstrap (half against full training).
- :func:`write_tables`: all of the above as CSV and Markdown files.

Methods
-------
The method names, their order and labels are :mod:`melunmix.base.names`' (``METHOD_ORDER``,
``METHOD_LABELS``, ``order_methods``, ``canonical_method``). A trained model's evaluation
folder is ``<model>`` (one seed) or ``<model>-seed<N>``; a checkpoint at half training is
``<model>-half`` / ``<model>-half-seed<N>``, so ``split_seed`` gives ``<model>-half``.

References
----------
.. [1] F.-R. Stöter, A. Liutkus, N. Ito, "The 2018 Signal Separation Evaluation Campaign",
   LVA/ICA 2018.
.. [2] S. Holm, "A simple sequentially rejective multiple test procedure", Scandinavian
   Journal of Statistics 6(2), 1979.
.. [3] F. Wilcoxon, "Individual comparisons by ranking methods", Biometrics Bulletin 1(6),
   1945.
.. [4] A. C. Davison, D. V. Hinkley, "Bootstrap Methods and their Application", Cambridge
   University Press, 1997 (section 3.8: resampling both factors of crossed data).
.. [5] D. J. Schuirmann, "A comparison of the two one-sided tests procedure and the power
   approach for assessing the equivalence of average bioavailability", Journal of
   Pharmacokinetics and Biopharmaceutics 15(6), 1987.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..base.files import write_text
from ..base.markdown import markdown_table
from ..base.names import (BASELINE, HALF_SUFFIX, METRICS, PROPOSED, RESIDUE_DB, RESIDUE_NOTE, SCORED_TARGETS,
                          is_reference, is_study_model, method_label, order_methods, split_seed)

#: The plateau rule (REFERENCE.md, "Plateau"): a run is at its plateau when early stopping
#: ended it, or when its last quarter of epochs improved its best validation loss by less
#: than this fraction (:func:`last_quarter_gain`).
PLATEAU_GAIN = 0.02

#: The equivalence margin (dB): "no difference" is said only when the 90 % interval of the
#: effect lies inside +-EQUIVALENCE_DB (two one-sided tests at 5 %). 0.2 dB is about the
#: poster's effect (+0.22 dB vocals SDR).
EQUIVALENCE_DB = 0.2
#: Fewest trained networks per model for an equivalence verdict: the bootstrap over k
#: seeds sees (k - 1) / k of their variance, and REFERENCE.md plans for >= 5 seeds to
#: detect 0.2 dB.
MIN_SEEDS_EQUIVALENCE = 5


# --------------------------------------------------------------------------- loading


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


# --------------------------------------------------------------------------- tables


def last_quarter_gain(valid_losses: Sequence[float]) -> float:
    """How much a run's last quarter of epochs improved its best validation loss.

    With ``n`` epochs the last quarter is the last ``ceil(n / 4)``; the gain is
    ``(best before it - best overall) / best before it`` (0 when the last quarter did not
    improve the best; NaN for a run of one epoch, without a finite loss before the last
    quarter, or with a non-finite loss in it: a diverged run is not at its plateau). Compare with :data:`PLATEAU_GAIN`.

    Examples
    --------
    >>> last_quarter_gain([10.0, 8.0, 7.0, 6.93])   # the last epoch gains 1 %
    0.01
    """
    losses = np.asarray(list(valid_losses), dtype=float)
    quarter = int(np.ceil(len(losses) / 4))
    before = losses[: len(losses) - quarter]
    if len(losses) < 2 or not np.isfinite(before).any() or not np.isfinite(losses[-quarter:]).all():
        return float("nan")  # a run that diverged (NaN, inf) at its end is not at a plateau
    best_before = float(np.nanmin(before))
    best = float(np.nanmin(np.where(np.isfinite(losses), losses, np.inf)))
    return round((best_before - best) / best_before, 12)


def at_plateau(valid_losses: Sequence[float], stop_reason: str | None = None) -> bool:
    """The plateau rule: early stopping ended the run, or its last quarter gained less than
    :data:`PLATEAU_GAIN` (:func:`last_quarter_gain`)."""
    if stop_reason == "early_stopping":
        return True
    gain = last_quarter_gain(valid_losses)
    return bool(np.isfinite(gain) and gain < PLATEAU_GAIN)


def _method_order(methods: Iterable[str], order: Sequence[str] | None) -> list[str]:
    methods = list(dict.fromkeys(methods))
    if order is not None:
        unknown = [m for m in order if m not in methods]
        if unknown:
            raise ValueError(f"methods {unknown} have no scores; scored methods: {sorted(methods)}")
        return list(order)
    return order_methods(methods)


def _target_order(targets: Iterable[str]) -> list[str]:
    targets = set(targets)
    return [t for t in SCORED_TARGETS if t in targets] + sorted(targets - set(SCORED_TARGETS))


def _method_store(df: pd.DataFrame):
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


def _per_track_wide(df: pd.DataFrame) -> pd.DataFrame:
    """Per-track medians, index (method, target, track), columns the metrics."""
    wide = _method_store(df).agg_frames_scores().unstack("metric")
    wide = wide.reindex(columns=[m for m in METRICS if m in wide.columns])
    wide.columns.name = None
    return wide.reorder_levels(["method", "target", "track"]).sort_index()


def track_table(df: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-track medians over frames (``MethodStore.agg_frames_scores``).

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`.
    methods : sequence of str, optional
        Methods and their order (default: :func:`order_methods`).

    Returns
    -------
    pandas.DataFrame
        museval's long format: columns ``method, track, target, metric, score`` (dB), one
        row per method, track, target and metric; NaN when every frame is NaN (a source
        silent for the whole track).
    """
    table = _method_store(df).agg_frames_scores().reset_index()
    order = {m: i for i, m in enumerate(_method_order(table["method"], methods))}
    targets = {t: i for i, t in enumerate(_target_order(table["target"]))}
    metrics = {m: i for i, m in enumerate(METRICS)}
    table = table[table["method"].isin(order)]
    keys = pd.DataFrame({
        "m": table["method"].map(order), "t": table["target"].map(targets),
        "k": table["track"], "x": table["metric"].map(metrics).fillna(len(metrics)),
    })
    table = table.loc[keys.sort_values(["m", "t", "k", "x"]).index]
    return table[["method", "track", "target", "metric", "score"]].reset_index(drop=True)


def poster_table(df: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The poster's table: median over frames, then over tracks, per method and target.

    Computed by ``museval.MethodStore.agg_frames_tracks_scores`` (the SiSEC aggregation;
    NaN frames and NaN track medians are skipped).

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`.
    methods : sequence of str, optional
        Methods and their row order (default: :func:`order_methods`).

    Returns
    -------
    pandas.DataFrame
        Index ``method``; columns a MultiIndex ``(target, metric)``: vocals then
        accompaniment, each SDR, SIR, ISR, SAR (dB). Read back from CSV with
        ``pandas.read_csv(path, header=[0, 1], index_col=0)``.
    """
    medians = _method_store(df).agg_frames_tracks_scores().unstack(["target", "metric"])
    targets = _target_order(medians.columns.get_level_values("target"))
    columns = [(t, m) for t in targets for m in METRICS if (t, m) in medians.columns]
    table = medians.reindex(index=_method_order(medians.index, methods), columns=pd.MultiIndex.from_tuples(
        columns, names=["target", "metric"]))
    table.index.name = "method"
    return table.astype(float)


def track_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Number of scored tracks per method (index) and target (columns)."""
    _method_store(df)
    counts = df.groupby(["method", "target"])["track"].nunique().unstack("target")
    counts = counts.reindex(index=_method_order(counts.index, None), columns=_target_order(counts.columns))
    counts.columns.name = None
    return counts.fillna(0).astype(int)


def paired_wilcoxon(
    df: pd.DataFrame,
    method_a: str,
    method_b: str,
    target: str = "vocals",
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Wilcoxon signed-rank test of ``method_a`` against ``method_b`` on per-track medians.

    Tracks are paired by name; a track missing from either method, or whose median is NaN
    in either, is left out. Two-sided ``scipy.stats.wilcoxon(a, b)`` with its defaults
    (zero differences dropped; the exact null distribution for small samples).

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`.
    method_a, method_b : str
        The two methods, e.g. the proposed model and the baseline.
    target : str
        ``"vocals"`` (default) or ``"accompaniment"``.
    metrics : sequence of str
        Metrics to test.

    Returns
    -------
    pandas.DataFrame
        One row per metric: ``method_a, method_b, target, metric, nb_tracks, median_a,
        median_b`` (medians over the paired tracks, dB), ``median_diff`` (median over tracks
        of ``a - b``), ``statistic`` and ``pvalue`` (both NaN when every difference is 0).
    """
    from scipy.stats import wilcoxon

    per_track = _per_track_wide(df)
    methods = set(per_track.index.get_level_values("method"))
    for name in (method_a, method_b):
        if name not in methods:
            raise ValueError(f"method {name!r} has no scores; scored methods: {sorted(methods)}")
    try:
        a, b = per_track.loc[(method_a, target)], per_track.loc[(method_b, target)]
    except KeyError:
        raise ValueError(f"no {target!r} scores for {method_a!r} or {method_b!r}") from None
    rows = []
    for metric in metrics:
        pair = pd.concat([a[metric].rename("a"), b[metric].rename("b")], axis=1, join="inner")
        pair = pair[np.isfinite(pair.to_numpy(dtype=float)).all(axis=1)]  # residue never compared
        if pair.empty:
            raise ValueError(f"{method_a!r} and {method_b!r} share no track with a finite {target} {metric}")
        diff = (pair["a"] - pair["b"]).to_numpy()
        if np.all(diff == 0):
            statistic = pvalue = np.nan
        else:
            result = wilcoxon(pair["a"].to_numpy(), pair["b"].to_numpy())
            statistic, pvalue = float(result.statistic), float(result.pvalue)
        rows.append(dict(
            method_a=method_a, method_b=method_b, target=target, metric=metric, nb_tracks=len(pair),
            median_a=float(np.median(pair["a"])), median_b=float(np.median(pair["b"])),
            median_diff=float(np.median(diff)), statistic=statistic, pvalue=pvalue,
        ))
    return pd.DataFrame(rows)


def bootstrap_ci(df: pd.DataFrame, n: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Percentile bootstrap interval of each median over tracks.

    For every method, target and metric the finite per-track medians (tracks sorted by
    name) are resampled with replacement ``n`` times. The index matrix is
    ``numpy.random.default_rng(seed).integers(0, nb_tracks, size=(n, nb_tracks))``, drawn
    afresh from ``seed`` for every group, so that methods scored on the same tracks are
    resampled with the same tracks (paired) and the result does not depend on the order
    of the groups. The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles (numpy's default, linear interpolation) of the ``n`` resampled medians.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`.
    n : int
        Number of resamples.
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``method, target, metric, median, low, high`` (dB) and ``nb_tracks``.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n (bootstrap resamples) must be a positive integer, got {n!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    per_track = _per_track_wide(df)
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for method in _method_order(per_track.index.get_level_values("method"), None):
        for target in _target_order(per_track.loc[method].index.get_level_values("target")):
            group = per_track.loc[(method, target)].sort_index()
            for metric in group.columns:
                values = group[metric].dropna().to_numpy(dtype=float)
                row = dict(method=method, target=target, metric=metric,
                           median=np.nan, low=np.nan, high=np.nan, nb_tracks=len(values))
                if len(values):
                    index = np.random.default_rng(seed).integers(0, len(values), size=(int(n), len(values)))
                    low, high = _interval(np.median(values[index], axis=1), quantiles)
                    row.update(median=float(np.median(values)), low=float(low), high=float(high))
                rows.append(row)
    return pd.DataFrame(rows)


def _interval(draws: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Quantiles of bootstrap draws: numpy's linear interpolation, or, when some draws are
    ``inf`` (residue, :func:`mark_residue`), the draws themselves (no interpolation
    between ``inf`` and a number)."""
    if np.isfinite(draws).all():
        return np.quantile(draws, quantiles)
    return np.quantile(draws, quantiles, method="inverted_cdf")


def aggregate_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread across training seeds of the medians of a :func:`poster_table`.

    Methods named ``<model>-seed<seed>`` are grouped by ``<model>``; other methods (the
    oracles, a model trained once) form groups of one.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`poster_table` (index method, columns ``(target, metric)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``method`` (the base name), ``target``, ``metric``, ``nb_seeds``, ``seeds``
        (e.g. ``"42,43"``; empty for unseeded names), ``mean``, ``std`` (sample standard
        deviation, ddof=1; NaN for one seed), ``min``, ``max`` (dB).
    """
    if not isinstance(table.columns, pd.MultiIndex) or table.columns.nlevels != 2:
        raise ValueError("aggregate_seeds needs a poster_table (index method, columns (target, metric))")
    groups: dict[str, list[tuple[str, int | None]]] = {}
    for method in table.index:
        base, seed = split_seed(method)
        groups.setdefault(base, []).append((method, seed))
    rows = []
    for base, members in groups.items():
        names = [name for name, _ in members]
        seeds = ",".join(str(s) for s in sorted(s for _, s in members if s is not None))
        for target, metric in table.columns:
            values = table.loc[names, (target, metric)].to_numpy(dtype=float)
            rows.append(dict(
                method=base, target=target, metric=metric, nb_seeds=len(values), seeds=seeds,
                mean=float(np.mean(values)),
                std=(float(np.std(values, ddof=1)) if len(values) > 1 and np.isfinite(values).all()
                     else np.nan),
                min=float(np.min(values)), max=float(np.max(values)),
            ))
    return pd.DataFrame(rows)


def _parameter_counts(params) -> dict[str, int]:
    """Model -> parameter count from a mapping, a Series or a table (method, parameters)."""
    if isinstance(params, pd.DataFrame):
        name = next((c for c in ("model", "method") if c in params.columns), None)
        count = next((c for c in ("parameters", "params") if c in params.columns), None)
        if name is None or count is None:
            raise ValueError(
                "params: a table needs columns 'method' (or 'model') and 'parameters' (or "
                f"'params'), as study.parameter_table returns; got {list(params.columns)}")
        params = dict(zip(params[name], params[count]))
    elif isinstance(params, pd.Series):
        params = params.to_dict()
    if not isinstance(params, Mapping):
        raise ValueError(f"params must map model names to parameter counts, got {type(params).__name__}")
    counts: dict[str, int] = {}
    for name, value in params.items():
        if isinstance(value, bool) or not float(value).is_integer() or value < 0:
            raise ValueError(f"params[{name!r}] = {value!r} is not a parameter count")
        base = split_seed(str(name))[0]
        if base in counts and counts[base] != int(value):
            raise ValueError(f"params: the seeds of {base!r} disagree ({counts[base]} and "
                             f"{int(value)} parameters); they must be the same architecture")
        counts[base] = int(value)
    return counts


def _lookup_params(counts: Mapping[str, int], model: str) -> int | None:
    # a half-training checkpoint is the same network as the model
    if model in counts:
        return counts[model]
    if model.endswith(HALF_SUFFIX):
        return counts.get(model[: -len(HALF_SUFFIX)])
    return None


def main_table(df: pd.DataFrame, params=None, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The study's main table: one row per model, the mean over seeds of its medians.

    Each seed's median over frames, then over tracks (:func:`poster_table`), is averaged
    over the seeds of its model (:func:`aggregate_seeds`); the spread is the sample
    standard deviation over seeds (NaN for one seed). The oracles and MIX keep their one
    row.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores` (or per-track scores, :func:`track_table`).
    params : mapping, Series or DataFrame, optional
        Trainable parameters per model: ``{"melunmix": 123456, ...}`` (keys may carry a
        seed, ``melunmix-seed1``; a ``-half`` checkpoint takes its model's count), or the
        table of ``study.parameter_table`` (columns ``method``, ``parameters``).
    methods : sequence of str, optional
        Methods (per seed) to include; default all.

    Returns
    -------
    pandas.DataFrame
        Index ``model`` (:func:`order_methods`); columns ``seeds`` (number of seeds; NA
        for the oracles and MIX), ``params`` (only when ``params`` is given; NA where
        unknown), then per target and metric ``"<target> <metric>"`` (mean, dB) and
        ``"<target> <metric> sd"`` (dB). :func:`main_table_markdown` renders it as
        ``mean ± sd``.
    """
    poster = poster_table(df, methods)
    seeds = aggregate_seeds(poster)
    models = order_methods(seeds["method"].unique())
    out = pd.DataFrame(index=pd.Index(models, name="model"))
    runs = seeds.groupby("method")["nb_seeds"].first()
    out["seeds"] = pd.array([pd.NA if is_reference(m) else int(runs[m]) for m in models], dtype="Int64")
    if params is not None:
        counts = _parameter_counts(params)
        out["params"] = pd.array([pd.NA if is_reference(m) else _lookup_params(counts, m)
                                  for m in models], dtype="Int64")
    for target, metric in poster.columns:
        rows = seeds[(seeds["target"] == target) & (seeds["metric"] == metric)].set_index("method")
        out[f"{target} {metric}"] = rows["mean"].reindex(models).to_numpy(dtype=float)
        out[f"{target} {metric} sd"] = rows["std"].reindex(models).to_numpy(dtype=float)
    return out


def main_table_markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """:func:`main_table` as Markdown: labels, ``mean ± sd`` cells (dB), parameter counts;
    residue (:func:`mark_residue`) as ``inf``, with the report's note under the table."""

    shown = pd.DataFrame(index=pd.Index([method_label(m) for m in table.index], name="model"))
    if "seeds" in table.columns:
        shown["seeds"] = ["" if pd.isna(v) else str(int(v)) for v in table["seeds"]]
    if "params" in table.columns:
        shown["params"] = ["" if pd.isna(v) else f"{int(v):,}" for v in table["params"]]
    for column in table.columns:
        if column in ("seeds", "params") or column.endswith(" sd"):
            continue
        sd = table.get(f"{column} sd")
        cells = []
        for i, mean in enumerate(table[column].to_numpy(dtype=float)):
            spread = np.nan if sd is None else float(sd.iloc[i])
            if mean == np.inf:
                cells.append("inf")
            elif not np.isfinite(mean):
                cells.append("n/a")
            elif np.isfinite(spread):
                cells.append(f"{mean:{floatfmt}} ± {spread:{floatfmt}}")
            else:
                cells.append(f"{mean:{floatfmt}}")
        shown[column] = cells
    residue = any("inf" in cells for cells in shown.to_numpy().T.tolist())
    return markdown_table(shown, floatfmt=floatfmt) + (f"\n{RESIDUE_NOTE}\n" if residue else "")


# --------------------------------------------------------------------------- paired differences


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values [2]_.

    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value
    of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))``: rejecting where it is
    below ``alpha`` controls the family-wise error rate at ``alpha``. NaN stays NaN and
    does not count in ``m``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    array([0.03, 0.06, 0.06])
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of differences (scipy's defaults); 1 when all are 0."""
    from scipy.stats import wilcoxon

    if len(diff) == 0:
        return np.nan
    if np.all(diff == 0):
        return 1.0  # no song differs: nothing to reject (scipy also says 1, with a warning)
    return float(wilcoxon(diff).pvalue)


def _crossed_bootstrap(a: np.ndarray, b: np.ndarray | None, paired: bool, n_boot: int,
                       seed: int) -> np.ndarray:
    """Bootstrap medians over songs of seed-averaged values; songs and seeds are crossed.

    ``a`` and ``b`` are ``(nb_songs, nb_seeds)``. A training seed is one network that
    scores every song, so a replicate draws the songs with replacement *and* one set of
    seed indices with replacement that serves every drawn song (REFERENCE.md, "Crossed
    bootstrap"); drawing seeds anew inside each song would treat the seeds as independent
    per song and understate their spread. Draws, in this order, from
    ``numpy.random.default_rng(seed)``: ``songs = integers(0, nb_songs, (n_boot,
    nb_songs))``, ``seeds = integers(0, nb_seeds, (n_boot, nb_seeds))`` for ``a`` and,
    when ``b`` is given and not ``paired``, again for ``b``. Paired: the seeds of one draw
    index ``a - b`` (one seed of both models); ``b`` None: ``a`` alone.
    """
    rng = np.random.default_rng(seed)
    nb_songs, nb_seeds = a.shape
    songs = rng.integers(0, nb_songs, size=(n_boot, nb_songs))
    values = a - b if (b is not None and paired) else a
    seeds = rng.integers(0, nb_seeds, size=(n_boot, nb_seeds))
    drawn = values[songs[:, :, None], seeds[:, None, :]].mean(axis=-1)
    if b is not None and not paired:
        seeds_b = rng.integers(0, b.shape[1], size=(n_boot, b.shape[1]))
        drawn = drawn - b[songs[:, :, None], seeds_b[:, None, :]].mean(axis=-1)
    return np.median(drawn, axis=1)


def _seed_level_p(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
    """Two-sided p of a test over trained networks: per seed, the median over songs.

    Paired seeds: a one-sample t-test of the per-seed medians of ``a - b``; seed means
    compared (no common seed): Welch's t-test of the per-seed medians of ``a`` against
    those of ``b``. NaN with fewer than 2 seeds on a side (no spread to test against);
    1 when every per-seed median difference is 0.
    """
    from scipy.stats import ttest_1samp, ttest_ind

    if paired:
        medians = np.median(a - b, axis=0)
        if len(medians) < 2:
            return np.nan
        if np.all(medians == medians[0]):
            return 1.0 if medians[0] == 0 else 0.0
        return float(ttest_1samp(medians, 0.0).pvalue)
    ma, mb = np.median(a, axis=0), np.median(b, axis=0)
    if len(ma) < 2 or len(mb) < 2:
        return np.nan
    return float(ttest_ind(ma, mb, equal_var=False).pvalue)


def _seed_groups(methods: Iterable[str]) -> dict[str, dict[int | None, str]]:
    """Base model -> {seed (None when unseeded): method name}."""
    groups: dict[str, dict[int | None, str]] = {}
    for method in methods:
        base, seed = split_seed(method)
        groups.setdefault(base, {})[seed] = method
    return groups


def _seed_key(seed: int | None) -> int:
    return -1 if seed is None else seed


def _check_bootstrap(n_boot, level) -> None:
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot (bootstrap resamples) must be an integer >= 0, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def paired_differences(
    df: pd.DataFrame,
    baseline: str = BASELINE,
    metrics: Sequence[str] = METRICS,
    targets: Sequence[str] = SCORED_TARGETS,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    models: Sequence[str] | None = None,
    controls: bool = True,
    proposed: str = PROPOSED,
    alpha: float = 0.05,
    delta: float = EQUIVALENCE_DB,
) -> pd.DataFrame:
    """Every model against the baseline, and the proposed model against each control,
    song by song: the study's answer.

    The comparisons: each model (its evaluation methods ``<model>`` or ``<model>-seed<N>``,
    grouped by :func:`split_seed`; ``<model>-half`` checkpoints are models of their own)
    against ``baseline``; then, with ``controls``, ``proposed`` against every other fully
    trained model (the controls: linear branch, MFCC branch, width-matched baseline), in
    rows whose ``baseline`` column names that control. For each comparison, target and
    metric:

    1. per-track medians over frames (museval's, :func:`track_table`);
    2. seeds: when the model and the baseline share seed numbers, they are **paired by
       seed** (``pairing = "seed"``): ``d[song, s] = model_s[song] - baseline_s[song]``
       for each common seed ``s`` (seeds only one of the two has are left out), and
       ``dbar[song]`` is the mean of ``d`` over those seeds. When they share none (an
       unseeded model against seeded baselines, or other seed numbers), each is
       **averaged over its own seeds first** (``pairing = "mean"``):
       ``dbar[song] = mean_s model_s[song] - mean_t baseline_t[song]``;
    3. songs: only songs with a finite score for every used seed of both count. A song
       that one of the two has a score for but not every used seed of both (not scored
       yet, or a NaN median) is left out and counted in ``n_songs_excluded``: no error,
       the count is in the table and in :func:`answer_sentence`;
    4. estimate: ``median_diff``, the median over songs of ``dbar`` (and ``mean_diff``,
       their mean), in dB; positive means the model scores higher than the baseline;
    5. interval: crossed percentile bootstrap [4]_ of that median (:func:`_crossed_bootstrap`):
       per replicate the songs are resampled with replacement and one resample of the
       seeds serves every song (independently for the model and the baseline when not
       paired); ``ci_low, ci_high`` are the ``(1 -+ level) / 2`` quantiles of ``n_boot``
       draws, ``eq_low, eq_high`` their 5 % and 95 % quantiles (the 90 % interval of the
       equivalence test). A fresh ``numpy.random.default_rng(seed)`` per row, so a row
       does not depend on which other comparisons are in the table;
    6. tests: two-sided Wilcoxon signed-rank test [3]_ of ``dbar`` over songs
       (``scipy.stats.wilcoxon``, its defaults: exact null distribution for small
       samples, zero differences dropped; p = 1 when every difference is 0); ``p_seed``,
       the test at the level of trained networks (:func:`_seed_level_p`: per seed the
       median over songs, a t-test over seeds; NaN below 2 seeds); ``p_holm``: Holm's
       correction [2]_ of the song-level p over the family of one target and metric,
       which holds the fully trained comparisons only (``in_family``); half-training rows
       are descriptive (``p_holm`` NaN);
    7. verdict: ``"higher"`` / ``"lower"`` when ``p_holm < alpha``, the ``level``
       interval excludes 0 and the seed-level test agrees (``p_seed < alpha``);
       ``"equivalent"`` when the 90 % interval lies inside ``+-delta`` (two one-sided
       tests at 5 % [5]_) with at least :data:`MIN_SEEDS_EQUIVALENCE` seeds; else ``"inconclusive"``, never "no
       difference"; ``"descriptive"`` for rows outside the family; ``""`` without an
       interval (``n_boot`` 0); ``"one network"`` when either side has a single seed (the
       spread of trained networks is unknown: a demonstration, no claim either way);
       ``"too few songs"`` when the exact Wilcoxon test cannot reach ``alpha``.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`, or per-track scores (:func:`track_table`,
        ``tables/per_track.csv``).
    baseline : str
        Base name of the baseline.
    metrics, targets : sequence of str
        Which rows to compute.
    n_boot : int
        Bootstrap resamples; 0 leaves the interval NaN.
    seed : int
        Seed of the bootstrap.
    level : float
        Coverage of the interval, in (0, 1).
    models : sequence of str, optional
        Base names to compare (default: every scored model of the study, :data:`MODELS`
        and their half-training checkpoints, but the baseline; not the oracles, MIX or a
        model trained elsewhere, ``evaluate.models``, which are rows of the tables only,
        outside every comparison and the Holm family).
    controls : bool
        Also compare ``proposed`` with every other fully trained model among ``models``.
    proposed : str
        Base name of the proposed model.
    alpha : float
        Significance level of the verdict.
    delta : float
        Equivalence margin (dB).

    Returns
    -------
    pandas.DataFrame
        One row per comparison, target and metric (against the baseline in
        :func:`order_methods` order, then the proposed model against each control):
        ``model, baseline`` (the model compared with), ``target, metric, pairing,
        n_songs, n_songs_excluded, n_seeds`` (seeds of the model used),
        ``n_seeds_baseline, median_diff, mean_diff, ci_low, ci_high`` (dB), ``level,
        eq_low, eq_high, delta`` (dB), ``p_wilcoxon, p_seed, in_family, p_holm,
        verdict``. NaN where no song counts.

    Raises
    ------
    ValueError
        When the baseline or a requested model has no scores.
    """
    _check_bootstrap(n_boot, level)
    per_track = _per_track_wide(df)
    groups = _seed_groups(per_track.index.get_level_values("method").unique())
    if baseline not in groups:
        raise ValueError(f"baseline {baseline!r} has no scores; scored models: {sorted(groups)}")
    if models is None:  # the study's own models; a model trained elsewhere (evaluate.models) is a table row only
        models = [m for m in groups if m != baseline and not is_reference(m) and is_study_model(m)]
    else:
        missing = [m for m in models if m not in groups]
        if missing:
            raise ValueError(f"model(s) {missing} have no scores; scored models: {sorted(groups)}")
    models = order_methods(models)
    pairs = [(model, baseline) for model in models]
    if controls and proposed in models:
        pairs += [(proposed, other) for other in models
                  if other != proposed and not other.endswith(HALF_SUFFIX)]
    quantiles = [(1 - level) / 2, (1 + level) / 2, 0.05, 0.95]
    rows = []
    for target in targets:
        if target not in per_track.index.get_level_values("target"):
            raise ValueError(f"no {target!r} scores; targets: "
                             f"{sorted(per_track.index.get_level_values('target').unique())}")
        by_target = per_track.xs(target, level="target")
        for metric in metrics:
            if metric not in by_target.columns:
                raise ValueError(f"no {metric!r} scores; metrics: {list(by_target.columns)}")
            scores = by_target[metric].unstack("method")  # tracks x methods
            block = []
            for model, reference in pairs:
                row = _paired_row(scores, groups[model], groups[reference], n_boot, seed, quantiles)
                in_family = not (model.endswith(HALF_SUFFIX) or reference.endswith(HALF_SUFFIX))
                block.append(dict(model=model, baseline=reference, target=target, metric=metric,
                                  **row, level=float(level), delta=float(delta),
                                  in_family=in_family, p_holm=np.nan))
            family = [row for row in block if row["in_family"]]
            for row, adjusted in zip(family, holm([r["p_wilcoxon"] for r in family])):
                row["p_holm"] = float(adjusted)
            for row in block:
                row["verdict"] = _verdict(row, alpha, delta)
            rows += block
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


#: The columns of :func:`paired_differences`, in order.
PAIRED_COLUMNS = ["model", "baseline", "target", "metric", "pairing", "n_songs",
                  "n_songs_excluded", "n_seeds", "n_seeds_baseline", "median_diff", "mean_diff",
                  "ci_low", "ci_high", "level", "eq_low", "eq_high", "delta", "p_wilcoxon",
                  "p_seed", "in_family", "p_holm", "verdict"]


def _verdict(row: Mapping, alpha: float, delta: float) -> str:
    """What a row of :func:`paired_differences` lets one say (its docstring, step 7)."""
    low, high, eq_low, eq_high = (row[k] for k in ("ci_low", "ci_high", "eq_low", "eq_high"))
    if not row["in_family"]:
        return "descriptive"
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if min(row["n_seeds"], row["n_seeds_baseline"]) < 2:
        return "one network"  # the spread of trained networks is unknown: no claim either way
    if 2.0 ** (1 - row["n_songs"]) >= alpha:
        return "too few songs"  # the exact test cannot reach alpha, the interval is unreliable
    seed_level = not np.isfinite(row["p_seed"]) or row["p_seed"] < alpha
    if np.isfinite(row["p_holm"]) and row["p_holm"] < alpha and (low > 0 or high < 0) and seed_level:
        return "higher" if row["median_diff"] > 0 else "lower"
    if -delta < eq_low and eq_high < delta and \
            min(row["n_seeds"], row["n_seeds_baseline"]) >= MIN_SEEDS_EQUIVALENCE:
        return "equivalent"
    return "inconclusive"


def _paired_row(scores: pd.DataFrame, model: dict, base: dict, n_boot: int, seed: int,
                quantiles: list[float]) -> dict:
    common = sorted(set(model) & set(base), key=_seed_key)
    paired = bool(common)
    seeds_a = common if paired else sorted(model, key=_seed_key)
    seeds_b = common if paired else sorted(base, key=_seed_key)
    a = scores.reindex(columns=[model[s] for s in seeds_a])
    b = scores.reindex(columns=[base[s] for s in seeds_b])
    candidates = a.index[a.notna().any(axis=1) | b.notna().any(axis=1)]
    # NaN (no score) and inf (residue, mark_residue) never decide a comparison
    keep = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    a = a[keep].sort_index().to_numpy(dtype=float)
    b = b[keep].sort_index().to_numpy(dtype=float)
    row = dict(pairing="seed" if paired else "mean", n_songs=len(a),
               n_songs_excluded=int(len(candidates) - keep.sum()), n_seeds=len(seeds_a),
               n_seeds_baseline=len(seeds_b), median_diff=np.nan, mean_diff=np.nan,
               ci_low=np.nan, ci_high=np.nan, eq_low=np.nan, eq_high=np.nan, p_wilcoxon=np.nan,
               p_seed=np.nan)
    if len(a) == 0:
        return row
    dbar = (a - b).mean(axis=1) if paired else a.mean(axis=1) - b.mean(axis=1)
    row.update(median_diff=float(np.median(dbar)), mean_diff=float(np.mean(dbar)),
               p_wilcoxon=_wilcoxon_p(dbar), p_seed=_seed_level_p(a, b, paired))
    if n_boot:
        low, high, eq_low, eq_high = np.quantile(
            _crossed_bootstrap(a, b, paired, int(n_boot), seed), quantiles)
        row.update(ci_low=float(low), ci_high=float(high), eq_low=float(eq_low),
                   eq_high=float(eq_high))
    return row


def model_medians(
    df: pd.DataFrame,
    metrics: Sequence[str] = METRICS,
    targets: Sequence[str] = SCORED_TARGETS,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Each model's median over songs of its seed-averaged per-track scores, with a CI.

    The absolute counterpart of :func:`paired_differences` (same song rule, same
    crossed bootstrap with the model alone): songs with a finite score for every
    seed of the model, each song's per-track medians averaged over seeds, then the
    median over songs. With one seed this is museval's median over tracks
    (:func:`poster_table`). Used to compare a model at half and at full training.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, target, metric, n_songs, n_seeds, median, mean, ci_low, ci_high``
        (dB) and ``level``; one row per base method (:func:`order_methods`), target and
        metric.
    """
    _check_bootstrap(n_boot, level)
    per_track = _per_track_wide(df)
    groups = _seed_groups(per_track.index.get_level_values("method").unique())
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for model in order_methods(groups):
        methods = [groups[model][s] for s in sorted(groups[model], key=_seed_key)]
        for target in targets:
            for metric in metrics:
                try:
                    values = per_track.xs(target, level="target")[metric].unstack("method")
                except KeyError:
                    raise ValueError(f"no {target!r} {metric!r} scores") from None
                a = values.reindex(columns=methods).dropna().sort_index().to_numpy(dtype=float)
                row = dict(model=model, target=target, metric=metric, n_songs=len(a),
                           n_seeds=len(methods), median=np.nan, mean=np.nan, ci_low=np.nan,
                           ci_high=np.nan, level=float(level))
                if len(a):
                    means = a.mean(axis=1)
                    row.update(median=float(np.median(means)), mean=float(np.mean(means)))
                    if n_boot:
                        low, high = _interval(
                            _crossed_bootstrap(a, None, False, int(n_boot), seed), quantiles)
                        row.update(ci_low=float(low), ci_high=float(high))
                rows.append(row)
    return pd.DataFrame(rows)


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def answer_sentence(
    paired,
    model: str = PROPOSED,
    baseline: str = BASELINE,
    target: str = "vocals",
    metric: str = "SDR",
    alpha: float = 0.05,
) -> str:
    """One row of :func:`paired_differences` in words, e.g.

    ``"MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.10 dB median vocals SDR
    [95 % CI -0.30, +0.50], 16 songs x 3 seeds; Wilcoxon p = 0.42 (Holm 0.84): no
    significant difference at 5 %."``

    The verdict follows the Holm-corrected p only: "significant at 5 % after Holm
    correction" when ``p_holm < alpha``; "not significant after Holm correction" when
    only the uncorrected p is below ``alpha``; else "no significant difference". When
    the number of songs is too small for the exact test ever to reach ``alpha``
    (``2 / 2**n_songs >= alpha``: 5 songs or fewer at 5 %) the sentence says so (a
    percentile bootstrap over so few songs is too narrow, too), and it names songs left
    out and seeds that were averaged rather than paired.

    Then the level of trained networks: the seed-level test's p with 2 seeds or more;
    with one seed, that one network is a demonstration, not evidence. Last the
    equivalence verdict of tables that have one (``eq_low``, ``eq_high``, ``delta``):
    "equivalent within +-delta" when the 90 % interval lies inside, "inconclusive" when
    neither a difference nor equivalence is shown.

    Parameters
    ----------
    paired : DataFrame or path
        :func:`paired_differences`, or its CSV (``tables/paired_differences.csv``).
    model, baseline, target, metric : str
        The row.
    alpha : float
        Significance level.
    """
    row = _answer_row(paired, model, baseline, target, metric)
    n_songs = int(row["n_songs"])
    head = f"{method_label(model)} - {method_label(baseline)}: "
    if n_songs == 0:
        return head + f"no song has {target} {metric} scores for both; nothing to compare."
    percent = f"{alpha * 100:g} %"
    return (head + _size_clause(row, target, metric) + _test_clause(row, baseline, alpha)
            + _seed_clause(row) + _equivalence_clause(row, percent) + ".")


def _answer_row(paired, model: str, baseline: str, target: str, metric: str) -> pd.Series:
    """The row of :func:`paired_differences` (a table or its CSV) for this comparison."""
    table = paired
    if isinstance(paired, (str, os.PathLike)):
        path = Path(paired)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; stats.write_tables writes it "
                                    "(notebook 05) when the baseline and a model are scored")
        table = pd.read_csv(path)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"paired: expected the paired_differences table, got {type(paired).__name__}")
    found = table[(table["model"] == model) & (table["baseline"] == baseline)
                  & (table["target"] == target) & (table["metric"] == metric)]
    if found.empty:
        pairs = sorted(set(zip(table["model"], table["baseline"])))
        raise ValueError(f"no paired difference of {model!r} against {baseline!r} on {target} "
                         f"{metric}; the table holds (model, baseline) {pairs}")
    return found.iloc[0]


def _size_clause(row: pd.Series, target: str, metric: str) -> str:
    """The difference, its interval and what it rests on (songs, seeds, songs left out)."""
    n_songs, n_seeds = int(row["n_songs"]), int(row["n_seeds"])
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if row["pairing"] == "mean":
        n_base = int(row["n_seeds_baseline"])
        seeds += (f" (baseline {n_base} seed{'s' if n_base != 1 else ''}; no common seed, so "
                  "seed means are compared, not paired)")
    text = f"{row['median_diff']:+.2f} dB median {target} {metric}"
    if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
        text += f" [{row['level'] * 100:g} % CI {row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
    text += f", {n_songs} song{'s' if n_songs != 1 else ''} x {seeds}"
    excluded = int(row.get("n_songs_excluded", 0) or 0)
    if excluded:
        text += (f", {excluded} song{'s' if excluded != 1 else ''} left out (not scored, or "
                 "no score, for every seed of both)")
    return text


def _test_clause(row: pd.Series, baseline: str, alpha: float) -> str:
    """The song-level test (Wilcoxon, Holm) and its verdict."""
    percent = f"{alpha * 100:g} %"
    n_songs = int(row["n_songs"])
    p, p_holm = float(row["p_wilcoxon"]), float(row["p_holm"])
    text = f"; Wilcoxon p = {_format_p(p)} (Holm {_format_p(p_holm)}): "
    verdict = str(row.get("verdict", "")) if "verdict" in row.index else None
    if verdict not in (None, "", "higher", "lower", "descriptive") and np.isfinite(p_holm) \
            and p_holm < alpha:  # the songs say "different", the trained networks do not
        text += (f"significant over songs at {percent} after Holm correction, but not at the level "
                 "of trained networks (the interval over songs and seeds, or the test over seeds, "
                 "allows no difference)")
    elif np.isfinite(p_holm) and p_holm < alpha:
        direction = "higher" if row["median_diff"] > 0 else "lower"
        than = "the baseline" if baseline == BASELINE else method_label(baseline)
        text += f"{direction} than {than}, significant at {percent} after Holm correction"
    elif np.isfinite(p) and p < alpha:
        text += f"not significant at {percent} after Holm correction (p < {percent} before it)"
    else:
        text += f"no significant difference at {percent}"
    if 2.0 ** (1 - n_songs) >= alpha:
        text += (f"; with {n_songs} song{'s' if n_songs != 1 else ''} the test cannot reach "
                 f"p < {percent} and a bootstrap interval is unreliable")
    return text


def _seed_clause(row: pd.Series) -> str:
    """The level of trained networks: the seed-level test, or one network's caveat."""
    n_seeds = int(row["n_seeds"])
    if "p_seed" not in row.index:
        return ""
    if n_seeds < 2:
        return "; one trained network per model: a demonstration, not evidence"
    if np.isfinite(float(row["p_seed"])):
        test = "t-test" if row["pairing"] == "seed" else "Welch t-test of the seed medians"
        return f"; over the {n_seeds} seeds ({test}) p = {_format_p(float(row['p_seed']))}"
    return ""


def _equivalence_clause(row: pd.Series, percent: str) -> str:
    """The equivalence verdict of tables that have one (``eq_low``, ``eq_high``, ``delta``)."""
    if not ({"eq_low", "eq_high", "delta"} <= set(row.index) and np.isfinite(float(row["eq_low"]))):
        return ""
    low, high, delta = float(row["eq_low"]), float(row["eq_high"]), float(row["delta"])
    verdict = str(row.get("verdict", ""))
    interval = f"90 % CI [{low:+.2f}, {high:+.2f}]"
    if verdict == "equivalent":
        return f"; {interval} inside +-{delta:g} dB: equivalent (two one-sided tests at {percent})"
    if verdict == "inconclusive":
        inside = -delta < low and high < delta
        return (f"; {interval} {'inside' if inside else 'not inside'} +-{delta:g} dB: inconclusive "
                + (f"(equivalence needs {MIN_SEEDS_EQUIVALENCE} seeds or more)" if inside else
                   "(neither a difference nor equivalence shown)"))
    return ""


def paired_differences_markdown(paired: pd.DataFrame) -> str:
    """:func:`paired_differences` as a Markdown table: labels, ``[low, high]`` intervals."""

    def interval(lows, highs):
        return [f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) and np.isfinite(hi) else "n/a"
                for lo, hi in zip(lows, highs)]

    shown = pd.DataFrame({
        "model": [method_label(m) for m in paired["model"]],
        "against": [method_label(m) for m in paired["baseline"]],
        "target": paired["target"], "metric": paired["metric"],
        "songs x seeds": [f"{int(n)} x {int(k)}" + (" (means)" if pairing == "mean" else "")
                          for n, k, pairing in zip(paired["n_songs"], paired["n_seeds"], paired["pairing"])],
        "median diff (dB)": [f"{v:+.2f}" if np.isfinite(v) else "n/a" for v in paired["median_diff"]],
        "CI (dB)": interval(paired["ci_low"], paired["ci_high"]),
        "90 % CI (dB)": interval(paired["eq_low"], paired["eq_high"]),
        "mean diff (dB)": [f"{v:+.2f}" if np.isfinite(v) else "n/a" for v in paired["mean_diff"]],
        "p songs": [_format_p(p) for p in paired["p_wilcoxon"]],
        "p Holm": [_format_p(p) for p in paired["p_holm"]],
        "p seeds": [_format_p(p) for p in paired["p_seed"]],
        "verdict": paired["verdict"].fillna(""),
    })
    if paired["n_songs_excluded"].any():
        shown.insert(4, "songs left out", paired["n_songs_excluded"].to_numpy())
    return markdown_table(shown, index=False)


# --------------------------------------------------------------------------- files


def _write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> Path:
    return write_text(path, table.to_csv(index=index, float_format="%.5f"))


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


def _write_paired_tables(df: pd.DataFrame, tables_dir: Path, baseline: str, bootstrap: int,
                         seed: int) -> dict[str, Path]:
    """``paired_differences.csv`` and ``.md`` when the baseline and another model are scored."""
    bases = set(_seed_groups(df["method"].unique()))
    if baseline not in bases or not any(b != baseline and not is_reference(b) for b in bases):
        return {}
    paired = paired_differences(df, baseline=baseline, n_boot=bootstrap, seed=seed)
    return {
        "paired_differences": _write_csv(paired, tables_dir / "paired_differences.csv"),
        "paired_differences_md": write_text(
            tables_dir / "paired_differences.md", paired_differences_markdown(paired)
            + f"\nModel - {method_label(baseline)}: median over songs of the per-song "
            "differences of per-track medians (seeds paired by seed number, then averaged), "
            f"crossed bootstrap interval ({bootstrap} resamples: songs, and one draw of seeds "
            "for every song), two-sided Wilcoxon signed-rank p over songs, Holm-corrected over "
            "the fully trained comparisons of each target and metric (half-training rows are "
            "descriptive); seed-level p: t-test over seeds of the per-seed medians; verdict: "
            f"'equivalent' when the 90 % interval lies inside +-{EQUIVALENCE_DB:g} dB (two "
            "one-sided tests), 'inconclusive' when neither a difference nor equivalence is "
            "shown.\n"),
    }


def write_tables(
    df: pd.DataFrame,
    tables_dir: str | os.PathLike,
    methods: Sequence[str] | None = None,
    compare: Sequence[tuple[str, str]] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    baseline: str = BASELINE,
    params=None,
    tracks: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the study's score tables as CSV and Markdown, atomically.

    Files in ``tables_dir``:

    - ``main.csv``, ``main.md``: :func:`main_table` (one row per model: mean ± sd over
      seeds of the medians; parameter counts when ``params`` is given);
    - ``paired_differences.csv``, ``paired_differences.md``: :func:`paired_differences`
      of every model against ``baseline`` (when the baseline and another model are
      scored), ``bootstrap`` resamples;
    - ``model_medians.csv``: :func:`model_medians` (half against full training);
    - ``poster.csv``, ``poster.md``: :func:`poster_table` per method and seed (CSV with two
      header rows, ``pandas.read_csv(path, header=[0, 1], index_col=0)``), the Markdown
      with the number of tracks per method;
    - ``per_track.csv``: :func:`track_table` (museval's long format);
    - ``bootstrap_ci.csv``: :func:`bootstrap_ci` (not written when ``bootstrap`` is 0);
    - ``seeds.csv``, ``seeds.md``: :func:`aggregate_seeds`, when a method is named
      ``<model>-seed<seed>``;
    - ``wilcoxon.csv``, ``wilcoxon.md``: :func:`paired_wilcoxon` on vocals and
      accompaniment for every pair in ``compare``.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame scores from :func:`load_scores`.
    tables_dir : path
        Output folder (``results/<profile>/tables``).
    methods : sequence of str, optional
        Methods and row order of the tables (default: all, models then oracles).
    compare : sequence of (str, str)
        Pairs ``(method_a, method_b)`` to test, e.g. ``[("melunmix", "openunmix")]``.
    bootstrap : int
        Bootstrap resamples (0: no intervals).
    seed : int
        Seed of the bootstraps.
    baseline : str
        Base name of the model the others are compared with.
    params : mapping, Series or DataFrame, optional
        Parameter count per model, for the main table (see :func:`main_table`).
    tracks : sequence of str, optional
        Every track the tables must describe: nothing is written while a method lacks
        one (:func:`require_tracks`).

    Returns
    -------
    dict of str to Path
        ``"main"``, ``"main_md"``, ``"paired_differences"``, ``"poster"``, ... -> the file
        written.

    Raises
    ------
    ValueError
        With ``tracks``: a method lacks the scores of one of them (the message names it).
    """
    tables_dir = Path(tables_dir)
    if methods is not None:
        df = df[df["method"].isin(list(methods))]
    if tracks is not None:
        require_tracks(df, tracks, methods)
    written = {}
    main = main_table(df, params=params, methods=methods)
    written["main"] = _write_csv(main, tables_dir / "main.csv", index=True)
    written["main_md"] = write_text(
        tables_dir / "main.md", main_table_markdown(main)
        + "\nMedian over frames, then over tracks (dB); mean ± sd over training seeds.\n")
    written.update(_write_paired_tables(df, tables_dir, baseline, bootstrap, seed))
    written["model_medians"] = _write_csv(model_medians(df, n_boot=bootstrap, seed=seed),
                                          tables_dir / "model_medians.csv")
    poster = poster_table(df, methods)
    counts = track_counts(df)
    written["poster"] = _write_csv(poster, tables_dir / "poster.csv", index=True)
    note = "\nMedian over frames, then over tracks (dB). Tracks scored: " + ", ".join(
        f"{method} {int(row.max())}" for method, row in counts.iterrows()) + ".\n"
    written["poster_md"] = write_text(tables_dir / "poster.md", markdown_table(poster, ".3f") + note)
    written["per_track"] = _write_csv(track_table(df, methods), tables_dir / "per_track.csv")
    if bootstrap:
        written["bootstrap_ci"] = _write_csv(bootstrap_ci(df, n=bootstrap, seed=seed),
                                             tables_dir / "bootstrap_ci.csv")
    if any(split_seed(m)[1] is not None for m in poster.index):
        seeds = aggregate_seeds(poster)
        written["seeds"] = _write_csv(seeds, tables_dir / "seeds.csv")
        written["seeds_md"] = write_text(tables_dir / "seeds.md", markdown_table(seeds, ".3f"))
    if compare:
        tests = pd.concat(
            [paired_wilcoxon(df, a, b, target=target) for a, b in compare for target in SCORED_TARGETS],
            ignore_index=True,
        )
        written["wilcoxon"] = _write_csv(tests, tables_dir / "wilcoxon.csv")
        written["wilcoxon_md"] = write_text(tables_dir / "wilcoxon.md", markdown_table(tests, ".4g"))
    return written
