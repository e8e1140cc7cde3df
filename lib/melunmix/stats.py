"""Aggregate museval scores into the study's tables, and compare methods statistically.

Scores are read from the museval JSON files that :mod:`melunmix.evaluate` writes to
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
  named ``<model>-seed<seed>``.
- :func:`write_tables`: all of the above as CSV and Markdown files.

References
----------
.. [1] F.-R. Stöter, A. Liutkus, N. Ito, "The 2018 Signal Separation Evaluation Campaign",
   LVA/ICA 2018.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .files import write_text
from .oracles import ORACLES, SOURCES
from .report import markdown_table

#: museval's metrics, in the order the poster reports them.
METRICS = ("SDR", "SIR", "ISR", "SAR")
#: The two sources scored as a pair (SiSEC's vocals/accompaniment scenario).
TARGETS = SOURCES

_SEED_NAME = re.compile(r"^(?P<base>.+)-seed(?P<seed>\d+)$")


def seed_method_name(model_name: str, seed: int) -> str:
    """Method name of one training seed of a model, e.g. ``openunmix-seed42``."""
    return f"{model_name}-seed{int(seed)}"


def split_seed(method: str) -> tuple[str, int | None]:
    """``"openunmix-seed42"`` -> ``("openunmix", 42)``; a name without a seed -> ``(name, None)``."""
    match = _SEED_NAME.match(method)
    if match is None:
        return method, None
    return match["base"], int(match["seed"])


# --------------------------------------------------------------------------- loading


def method_dirs(eval_dir: str | os.PathLike) -> list[Path]:
    """The method folders of ``eval_dir`` that hold at least one scored track, sorted by name."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        return []
    return sorted(
        p for p in eval_dir.iterdir() if p.is_dir() and any(_track_jsons(p))
    )


def _track_jsons(method_dir: Path) -> list[Path]:
    # Hidden files are temporaries of an interrupted atomic write, never results.
    return sorted(
        p for p in (method_dir / "test").glob("*.json") if not p.name.startswith(".")
    )


def load_scores(
    eval_dir: str | os.PathLike, methods: Sequence[str] | None = None
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
    found = {p.name: p for p in method_dirs(eval_dir)}
    if methods is None:
        names = list(found)
    else:
        names = list(methods)
        missing = [m for m in names if m not in found]
        if missing:
            raise FileNotFoundError(
                f"no scored tracks for method(s) {missing} under {eval_dir} "
                f"(found: {sorted(found)}); run melunmix.evaluate.evaluate_model or "
                "evaluate_oracle for them first"
            )
    if not names:
        raise FileNotFoundError(
            f"no museval JSON files under {eval_dir}/<method>/test/; run "
            "melunmix.evaluate.evaluate_model or evaluate_oracle first"
        )
    store = museval.MethodStore()
    for name in names:
        method = museval.EvalStore()
        for path in _track_jsons(found[name]):
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
    return df.astype({"score": float, "time": float}).reset_index(drop=True)


# --------------------------------------------------------------------------- tables


def _method_order(methods: Iterable[str], order: Sequence[str] | None) -> list[str]:
    methods = list(dict.fromkeys(methods))
    if order is not None:
        unknown = [m for m in order if m not in methods]
        if unknown:
            raise ValueError(f"methods {unknown} have no scores; scored methods: {sorted(methods)}")
        return list(order)
    models = sorted(m for m in methods if m not in ORACLES)
    return models + [m for m in ORACLES if m in methods]


def _target_order(targets: Iterable[str]) -> list[str]:
    targets = set(targets)
    return [t for t in TARGETS if t in targets] + sorted(targets - set(TARGETS))


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
    store.df = df
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
        Methods and their order (default: models sorted by name, then the oracles).

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
        Methods and their row order (default: models sorted by name, then the oracles).

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
        pair = pd.concat([a[metric].rename("a"), b[metric].rename("b")], axis=1, join="inner").dropna()
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
                    low, high = np.quantile(np.median(values[index], axis=1), quantiles)
                    row.update(median=float(np.median(values)), low=float(low), high=float(high))
                rows.append(row)
    return pd.DataFrame(rows)


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
                std=float(np.std(values, ddof=1)) if len(values) > 1 else np.nan,
                min=float(np.min(values)), max=float(np.max(values)),
            ))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- files


def _write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> Path:
    return write_text(path, table.to_csv(index=index, float_format="%.5f"))


def write_tables(
    df: pd.DataFrame,
    tables_dir: str | os.PathLike,
    methods: Sequence[str] | None = None,
    compare: Sequence[tuple[str, str]] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the study's score tables as CSV and Markdown, atomically.

    Files in ``tables_dir``:

    - ``poster.csv``, ``poster.md``: :func:`poster_table` (CSV with two header rows,
      ``pandas.read_csv(path, header=[0, 1], index_col=0)``), the Markdown with the
      number of tracks per method;
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
        Seed of the bootstrap.

    Returns
    -------
    dict of str to Path
        ``"poster"``, ``"poster_md"``, ``"per_track"``, ... -> the file written.
    """
    tables_dir = Path(tables_dir)
    if methods is not None:
        df = df[df["method"].isin(list(methods))]
    written = {}
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
            [paired_wilcoxon(df, a, b, target=target) for a, b in compare for target in TARGETS],
            ignore_index=True,
        )
        written["wilcoxon"] = _write_csv(tests, tables_dir / "wilcoxon.csv")
        written["wilcoxon_md"] = write_text(tables_dir / "wilcoxon.md", markdown_table(tests, ".4g"))
    return written
