"""The study's tables, and the tables folder they are written to.

- :func:`poster_table`: median SDR, SIR, ISR, SAR (dB) per method and target, the table of
  the poster and of SiSEC 2018; :func:`track_table`: the per-track medians behind it
  (museval's long format); :func:`track_counts`: how many tracks each method has scores for.
- :func:`aggregate_seeds`: mean and spread of the medians over training seeds, for methods
  named ``<model>-seed<seed>``; :func:`main_table`: the same as one row per model (mean ±
  sd over seeds), with parameter counts when given.
- :func:`paired_differences_markdown`: the comparisons of :mod:`.inference` as Markdown.
- :func:`write_tables`: all of them as CSV and Markdown files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..base.files import write_text
from ..base.markdown import markdown_table
from ..base.names import (BASELINE, HALF_SUFFIX, METRICS, RESIDUE_NOTE, SCORED_TARGETS, is_reference, method_label,
                          order_methods, split_seed, table_file)
from .inference import (EQUIVALENCE_DB, bootstrap_ci, model_medians, paired_differences, paired_wilcoxon,
                        seed_groups)
from .score_frames import method_order, method_store, require_tracks, target_order
from .sentences import format_p


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
    table = method_store(df).agg_frames_scores().reset_index()
    order = {m: i for i, m in enumerate(method_order(table["method"], methods))}
    targets = {t: i for i, t in enumerate(target_order(table["target"]))}
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
    medians = method_store(df).agg_frames_tracks_scores().unstack(["target", "metric"])
    targets = target_order(medians.columns.get_level_values("target"))
    columns = [(t, m) for t in targets for m in METRICS if (t, m) in medians.columns]
    table = medians.reindex(index=method_order(medians.index, methods), columns=pd.MultiIndex.from_tuples(
        columns, names=["target", "metric"]))
    table.index.name = "method"
    return table.astype(float)


def track_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Number of scored tracks per method (index) and target (columns)."""
    method_store(df)
    counts = df.groupby(["method", "target"])["track"].nunique().unstack("target")
    counts = counts.reindex(index=method_order(counts.index, None), columns=target_order(counts.columns))
    counts.columns.name = None
    return counts.fillna(0).astype(int)


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
        "p songs": [format_p(p) for p in paired["p_wilcoxon"]],
        "p Holm": [format_p(p) for p in paired["p_holm"]],
        "p seeds": [format_p(p) for p in paired["p_seed"]],
        "verdict": paired["verdict"].fillna(""),
    })
    if paired["n_songs_excluded"].any():
        shown.insert(4, "songs left out", paired["n_songs_excluded"].to_numpy())
    return markdown_table(shown, index=False)


def write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> Path:
    return write_text(path, table.to_csv(index=index, float_format="%.5f"))


def _write_paired_tables(df: pd.DataFrame, tables_dir: Path, baseline: str, bootstrap: int,
                         seed: int) -> dict[str, Path]:
    """``paired_differences.csv`` and ``.md`` when the baseline and another model are scored."""
    bases = set(seed_groups(df["method"].unique()))
    if baseline not in bases or not any(b != baseline and not is_reference(b) for b in bases):
        return {}
    paired = paired_differences(df, baseline=baseline, n_boot=bootstrap, seed=seed)
    return {
        "paired_differences": write_csv(paired, tables_dir / table_file("paired_differences")),
        "paired_differences_md": write_text(
            tables_dir / table_file("paired_differences", ".md"), paired_differences_markdown(paired)
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
    written["main"] = write_csv(main, tables_dir / table_file("main"), index=True)
    written["main_md"] = write_text(
        tables_dir / table_file("main", ".md"), main_table_markdown(main)
        + "\nMedian over frames, then over tracks (dB); mean ± sd over training seeds.\n")
    written.update(_write_paired_tables(df, tables_dir, baseline, bootstrap, seed))
    written["model_medians"] = write_csv(model_medians(df, n_boot=bootstrap, seed=seed),
                                          tables_dir / table_file("model_medians"))
    poster = poster_table(df, methods)
    counts = track_counts(df)
    written["poster"] = write_csv(poster, tables_dir / table_file("poster"), index=True)
    note = "\nMedian over frames, then over tracks (dB). Tracks scored: " + ", ".join(
        f"{method} {int(row.max())}" for method, row in counts.iterrows()) + ".\n"
    written["poster_md"] = write_text(tables_dir / table_file("poster", ".md"), markdown_table(poster, ".3f")
                                      + note)
    written["per_track"] = write_csv(track_table(df, methods), tables_dir / table_file("per_track"))
    if bootstrap:
        written["bootstrap_ci"] = write_csv(bootstrap_ci(df, n=bootstrap, seed=seed),
                                             tables_dir / table_file("bootstrap_ci"))
    if any(split_seed(m)[1] is not None for m in poster.index):
        seeds = aggregate_seeds(poster)
        written["seeds"] = write_csv(seeds, tables_dir / table_file("seeds"))
        written["seeds_md"] = write_text(tables_dir / table_file("seeds", ".md"),
                                         markdown_table(seeds, ".3f"))
    if compare:
        tests = pd.concat(
            [paired_wilcoxon(df, a, b, target=target) for a, b in compare for target in SCORED_TARGETS],
            ignore_index=True,
        )
        written["wilcoxon"] = write_csv(tests, tables_dir / table_file("wilcoxon"))
        written["wilcoxon_md"] = write_text(tables_dir / table_file("wilcoxon", ".md"),
                                            markdown_table(tests, ".4g"))
    return written
