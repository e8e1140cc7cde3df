"""Statistics of the study's comparisons: tests, intervals and the equivalence verdict.

- :func:`paired_differences`: every model against the baseline and the proposed model
  against each control, song by song (seeds paired), with a crossed bootstrap interval
  (songs and seeds resampled [4]_), song-level Wilcoxon [3]_ and Holm-corrected [2]_
  p-values, a seed-level test and an equivalence verdict (two one-sided tests [5]_ at
  :data:`EQUIVALENCE_DB`).
- :func:`model_medians`: median over songs of each model's seed-averaged scores, with the
  same bootstrap (half against full training).
- :func:`paired_wilcoxon`: Wilcoxon signed-rank test of two methods on paired per-track
  medians, per metric; :func:`bootstrap_ci`: percentile bootstrap intervals of each
  median over tracks.

References
----------
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

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..base.names import BASELINE, HALF_SUFFIX, METRICS, PROPOSED, SCORED_TARGETS, is_reference, is_study_model, order_methods, split_seed
from .score_frames import method_order, per_track_wide, target_order


#: The equivalence margin (dB): "no difference" is said only when the 90 % interval of the
#: effect lies inside +-EQUIVALENCE_DB (two one-sided tests at 5 %). 0.2 dB is about the
#: poster's effect (+0.22 dB vocals SDR).
EQUIVALENCE_DB = 0.2


#: Fewest trained networks per model for an equivalence verdict: the bootstrap over k
#: seeds sees (k - 1) / k of their variance, and REFERENCE.md plans for >= 5 seeds to
#: detect 0.2 dB.
MIN_SEEDS_EQUIVALENCE = 5


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

    per_track = per_track_wide(df)
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
    per_track = per_track_wide(df)
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for method in method_order(per_track.index.get_level_values("method"), None):
        for target in target_order(per_track.loc[method].index.get_level_values("target")):
            group = per_track.loc[(method, target)].sort_index()
            for metric in group.columns:
                values = group[metric].dropna().to_numpy(dtype=float)
                row = dict(method=method, target=target, metric=metric,
                           median=np.nan, low=np.nan, high=np.nan, nb_tracks=len(values))
                if len(values):
                    index = np.random.default_rng(seed).integers(0, len(values), size=(int(n), len(values)))
                    low, high = percentile_interval(np.median(values[index], axis=1), quantiles)
                    row.update(median=float(np.median(values)), low=float(low), high=float(high))
                rows.append(row)
    return pd.DataFrame(rows)


def percentile_interval(draws: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Quantiles of bootstrap draws: numpy's linear interpolation, or, when some draws are
    ``inf`` (residue, :func:`mark_residue`), the draws themselves (no interpolation
    between ``inf`` and a number)."""
    if np.isfinite(draws).all():
        return np.quantile(draws, quantiles)
    return np.quantile(draws, quantiles, method="inverted_cdf")


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


def crossed_bootstrap(a: np.ndarray, b: np.ndarray | None, paired: bool, n_boot: int,
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


def seed_level_p(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
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


def seed_groups(methods: Iterable[str]) -> dict[str, dict[int | None, str]]:
    """Base model -> {seed (None when unseeded): method name}."""
    groups: dict[str, dict[int | None, str]] = {}
    for method in methods:
        base, seed = split_seed(method)
        groups.setdefault(base, {})[seed] = method
    return groups


def seed_key(seed: int | None) -> int:
    return -1 if seed is None else seed


def check_bootstrap(n_boot, level) -> None:
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
    5. interval: crossed percentile bootstrap [4]_ of that median (:func:`crossed_bootstrap`):
       per replicate the songs are resampled with replacement and one resample of the
       seeds serves every song (independently for the model and the baseline when not
       paired); ``ci_low, ci_high`` are the ``(1 -+ level) / 2`` quantiles of ``n_boot``
       draws, ``eq_low, eq_high`` their 5 % and 95 % quantiles (the 90 % interval of the
       equivalence test). A fresh ``numpy.random.default_rng(seed)`` per row, so a row
       does not depend on which other comparisons are in the table;
    6. tests: two-sided Wilcoxon signed-rank test [3]_ of ``dbar`` over songs
       (``scipy.stats.wilcoxon``, its defaults: exact null distribution for small
       samples, zero differences dropped; p = 1 when every difference is 0); ``p_seed``,
       the test at the level of trained networks (:func:`seed_level_p`: per seed the
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
    check_bootstrap(n_boot, level)
    per_track = per_track_wide(df)
    groups = seed_groups(per_track.index.get_level_values("method").unique())
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
    common = sorted(set(model) & set(base), key=seed_key)
    paired = bool(common)
    seeds_a = common if paired else sorted(model, key=seed_key)
    seeds_b = common if paired else sorted(base, key=seed_key)
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
               p_wilcoxon=_wilcoxon_p(dbar), p_seed=seed_level_p(a, b, paired))
    if n_boot:
        low, high, eq_low, eq_high = np.quantile(
            crossed_bootstrap(a, b, paired, int(n_boot), seed), quantiles)
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
    check_bootstrap(n_boot, level)
    per_track = per_track_wide(df)
    groups = seed_groups(per_track.index.get_level_values("method").unique())
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    rows = []
    for model in order_methods(groups):
        methods = [groups[model][s] for s in sorted(groups[model], key=seed_key)]
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
                        low, high = percentile_interval(
                            crossed_bootstrap(a, None, False, int(n_boot), seed), quantiles)
                        row.update(ci_low=float(low), ci_high=float(high))
                rows.append(row)
    return pd.DataFrame(rows)
