"""Figures of scores: the metric table, per-song boxplots, paired differences, half against full training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd

from ..base.names import HALF_SUFFIX, METRICS, method_label, order_methods, split_seed
from .score_frames import mark_residue
from .figure_style import DEFAULT_DPI, finish, method_color, new_figure, read_table, require_columns


_LONG_TABLE = ["method", "target", "metric", "score"]


def _wide_metric_table(table) -> pd.DataFrame:
    """Poster table as index = method, columns = MultiIndex (target, metric)."""
    if isinstance(table, (str, os.PathLike)):
        path = Path(table)
        if not path.exists():
            raise FileNotFoundError(f"metric table {path} does not exist; run the evaluation first")
        head = pd.read_csv(path, nrows=0)
        if set(_LONG_TABLE) <= set(head.columns):
            table = pd.read_csv(path)
        else:
            table = pd.read_csv(path, header=[0, 1], index_col=0)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table: expected a DataFrame or CSV path, got {type(table).__name__}")
    if isinstance(table.columns, pd.MultiIndex):
        if table.columns.nlevels != 2:
            raise ValueError("table: wide format needs 2 column levels (target, metric), got "
                             f"{table.columns.nlevels}")
        wide = table
    else:
        require_columns(table, _LONG_TABLE, "metric table",
                         "pass index = method with (target, metric) columns, or the long format "
                         "with columns method, target, metric, score")
        dup = table.duplicated(["method", "target", "metric"])
        if dup.any():
            row = table.loc[dup, ["method", "target", "metric"]].iloc[0].tolist()
            raise ValueError(
                f"metric table has several scores for (method, target, metric) = {tuple(row)}; "
                "pass the aggregated table (one median per method, target and metric), not "
                "per-track or per-frame scores (see metric_boxplots for those)")
        wide = table.pivot(index="method", columns=["target", "metric"], values="score")
    wide = wide.astype(float)
    metric_rank = {m: i for i, m in enumerate(METRICS)}
    columns = sorted(wide.columns, key=lambda c: (str(c[0]) != "vocals", str(c[0]),
                                                  metric_rank.get(c[1], 9), str(c[1])))
    return wide.loc[order_methods(wide.index), columns]


def metric_table_figure(table, path=None, title: str = "Median scores over test tracks (dB)",
                        dpi: int = DEFAULT_DPI):
    """The poster table drawn as a figure: rows methods, columns (target, metric), values in dB.

    Cell colours rank the methods within each column (darker green = higher, which is
    better for every BSS Eval metric); the best value of each column is bold.

    Parameters
    ----------
    table : DataFrame or path
        Either the wide table (index = method, MultiIndex columns ``(target, metric)``,
        as written to ``tables/`` by the evaluation), or the long format with columns
        ``method``, ``target``, ``metric``, ``score`` (one row per combination; pivoted
        here), or the path of a CSV of either.
    path : path-like, optional
        Where to save the PNG.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes holding one text per cell (values with 2 decimals, "n/a" for missing).
    """
    wide = _wide_metric_table(table)
    if wide.empty:
        raise ValueError("metric table is empty")
    values = wide.to_numpy(dtype=float)
    nb_rows, nb_cols = values.shape
    # per-column 0..1 scaling: SDR and SAR live on different ranges
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.inf)
    lo = np.where(finite.any(axis=0), masked.min(axis=0), 0.0)
    hi = np.where(finite.any(axis=0), np.where(finite, values, -np.inf).max(axis=0), 1.0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    shade = np.where(finite, (values - lo) / span, np.nan)

    fig, axes = new_figure(figsize=(0.9 * nb_cols + 2.8, 0.45 * nb_rows + 1.8))
    ax = axes[0, 0]
    cmap = mpl.colormaps["Greens"].with_extremes(bad="#eeeeee")
    ax.imshow(np.ma.masked_invalid(0.15 + 0.6 * shade), cmap=cmap, vmin=0.0, vmax=1.0,
              aspect="auto")
    for i in range(nb_rows):
        for j in range(nb_cols):
            value = values[i, j]
            best = np.isfinite(value) and value == hi[j]
            text = f"{value:.2f}" if np.isfinite(value) else "inf" if value == np.inf else "n/a"
            ax.text(j, i, text, ha="center",
                    va="center", fontsize="small", fontweight="bold" if best else "normal")
    ax.set_xticks(range(nb_cols))
    ax.set_xticklabels([str(metric) for _, metric in wide.columns])
    ax.xaxis.tick_top()
    # one target label centred over its group of metric columns, groups split by a line
    targets = [str(target) for target, _ in wide.columns]
    start = 0
    for j in range(1, nb_cols + 1):
        if j == nb_cols or targets[j] != targets[start]:
            ax.annotate(targets[start], xy=((start + j - 1) / 2, -0.5), xytext=(0, 18),
                        textcoords="offset points", ha="center", va="bottom",
                        fontweight="bold", annotation_clip=False)
            if j < nb_cols:
                ax.axvline(j - 0.5, color="black", linewidth=1.5)
            start = j
    ax.set_yticks(range(nb_rows))
    ax.set_yticklabels([method_label(m) for m in wide.index])
    for label, method in zip(ax.get_yticklabels(), wide.index):
        label.set_color(method_color(method))
    ax.set_xticks(np.arange(nb_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(nb_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="both", length=0)
    # a figure title: an axes title would sit on top of the target labels
    fig.suptitle(title)
    return finish(fig, path, dpi)


_SCORES = ["method", "track", "target", "metric", "score"]


def _track_medians(scores) -> pd.DataFrame:
    """Per-track medians over frames (NaN frames skipped), as museval aggregates; residue
    (``score_frames.mark_residue``: MIX's SAR) as inf, whatever wrote the scores."""
    df = read_table(scores, "scores")
    require_columns(df, _SCORES, "scores",
                     "expected museval's long format (one row per method, track, target, "
                     "metric and frame)")
    df = mark_residue(df.assign(score=pd.to_numeric(df["score"], errors="coerce")))
    return df.groupby(["method", "track", "target", "metric"], as_index=False)["score"].median()


def metric_boxplots(scores, target: str = "vocals", metrics=METRICS,
                    path=None, methods: Sequence[str] | None = None,
                    title: str | None = None, dpi: int = DEFAULT_DPI):
    """SiSEC-style boxplots: one panel per metric (a grid of two columns), one box per
    method, of per-track medians.

    Frames are first aggregated per track by their median (NaN frames skipped), exactly
    as museval does before it takes the median over tracks; each box then shows the
    distribution of those per-track values, with the tracks as dots. A model trained with
    several seeds is one box: per track, the mean over its seeds of those values (the
    tables give each seed).

    Parameters
    ----------
    scores : DataFrame or path
        museval's long format: columns ``method``, ``track``, ``target``, ``metric``,
        ``score`` (one row per frame; ``time`` and other columns ignored).
    target : str
        Which target to show, e.g. ``"vocals"``.
    metrics : sequence of str
        Panels, left to right.
    path : path-like, optional
        Where to save the PNG.
    methods : sequence of str, optional
        Which methods and in which order (default: all, baseline and proposed first).
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics)`` axes, each with one box (patch) per method.
    """
    medians = _seeds_pooled(_track_medians(scores))
    targets = sorted(medians["target"].unique())
    if target not in targets:
        raise ValueError(f"target {target!r} is not in the scores; available targets: {targets}")
    medians = medians[medians["target"] == target]
    available = sorted(medians["metric"].unique())
    metrics = list(metrics)
    missing = [m for m in metrics if m not in available]
    if not metrics or missing:
        raise ValueError(f"metric(s) {missing or metrics} not in the scores of {target!r}; "
                         f"available metrics: {available}")
    present = order_methods(medians["method"].unique())
    if methods is None:
        methods = present
    else:
        unknown = [m for m in methods if m not in present]
        if unknown:
            raise ValueError(f"method(s) {unknown} not in the scores; available: {present}")
        methods = list(methods)

    ncols = min(2, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(ncols * (1.4 + 0.45 * len(methods)), 1.2 + 3.8 * nrows))
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    rng = np.random.default_rng(0)  # fixed jitter: the same data give the same picture
    for ax, metric in zip(axes.flat, metrics):
        _boxplot_panel(ax, medians[medians["metric"] == metric], methods, metric, rng)
    nb_tracks = medians["track"].nunique()
    pooled = sorted(set(medians.attrs.get("seeds", {}).values()))
    seeds = f"; a model's box: mean over its {pooled[0]} seeds per track" if len(pooled) == 1 and pooled[0] > 1 else ""
    fig.suptitle(title or f"{target}: per-track median scores ({nb_tracks} tracks{seeds})")
    return finish(fig, path, dpi)


def _boxplot_panel(ax, rows: pd.DataFrame, methods: Sequence[str], metric: str, rng) -> None:
    """One metric's panel: a box and the tracks' dots per method; residue marked ``inf``."""
    data, residue = [], []
    for method in methods:
        values = rows.loc[rows["method"] == method, "score"].to_numpy(dtype=float)
        data.append(values[np.isfinite(values)])
        residue.append(bool(np.any(values == np.inf)))
    boxes = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False,
                       tick_labels=[method_label(m) for m in methods],
                       medianprops={"color": "black", "linewidth": 1.5})
    for box, median, method in zip(boxes["boxes"], boxes["medians"], methods):
        box.set_facecolor(method_color(method))
        box.set_alpha(0.55)
        box.set_gid(f"box {method}")
        median.set_gid(f"median {method}")  # findable by id in the figure or an SVG
    for position, (method, values) in enumerate(zip(methods, data), 1):
        jitter = rng.uniform(-0.15, 0.15, size=len(values))
        ax.scatter(position + jitter, values, s=10, color=method_color(method),
                   edgecolors="black", linewidths=0.3, zorder=3)
    # residue (score_frames.mark_residue: MIX's SAR) has no place on a dB axis: a mark says so
    for position, is_residue in enumerate(residue, 1):
        if is_residue:
            ax.annotate("inf", xy=(position, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize="small", fontweight="bold", gid="residue")
    ax.set_title(metric)
    ax.set_ylabel(f"{metric} (dB)")
    for label in ax.get_xticklabels():
        label.set(rotation=45, ha="right", rotation_mode="anchor")
    ax.grid(True, axis="y", alpha=0.3)


def _seeds_pooled(medians: pd.DataFrame) -> pd.DataFrame:
    """Per-track medians with each model's seeds averaged per track (method ``x-seedN`` ->
    ``x``); ``attrs["seeds"]``: method -> number of seeds pooled."""

    base = medians["method"].map(lambda name: split_seed(name)[0])
    if base.equals(medians["method"]):
        return medians
    counts = medians.assign(base=base).groupby("base")["method"].nunique().to_dict()
    pooled = (medians.assign(method=base)
              .groupby(["method", "track", "target", "metric"], as_index=False, sort=False)["score"].mean())
    pooled.attrs["seeds"] = {name: int(n) for name, n in counts.items() if n > 1}
    return pooled


_PAIRED_COLUMNS = ["model", "baseline", "target", "metric", "n_songs", "n_seeds", "median_diff",
                   "ci_low", "ci_high", "p_holm"]


def _songs_by_seeds(rows: pd.DataFrame) -> str | None:
    """``"16 songs x 3 seeds"`` when every row has the same counts, else None."""
    counts = set(zip(rows["n_songs"].astype(int), rows["n_seeds"].astype(int)))
    if len(counts) != 1:
        return None
    songs, seeds = counts.pop()
    return f"{songs} song{'s' if songs != 1 else ''} x {seeds} seed{'s' if seeds != 1 else ''}"


def paired_differences_figure(paired, path=None, target: str = "vocals",
                              metrics: Sequence[str] = METRICS, alpha: float = 0.05,
                              title: str | None = None, dpi: int = DEFAULT_DPI):
    """Forest plot of every model against the baseline: one panel per metric.

    Each row is a model (``names.order_methods``; half-training checkpoints in a lighter
    shade, square markers), then each further comparison of the table (the proposed model
    against a control: label ``"A - B"``, gids ``"point A vs B"``): the point is the median over songs of its paired difference
    to the baseline (dB, positive: the model scores higher), the bar its bootstrap
    interval, the dashed line zero. A filled marker is significant at ``alpha`` after
    Holm correction, an open one is not.

    Parameters
    ----------
    paired : DataFrame or path
        ``inference.paired_differences`` or ``tables/paired_differences.csv``.
    path : path-like, optional
        Where to save the PNG.
    target : str
        Which target's rows to draw.
    metrics : sequence of str
        Panels, left to right.
    alpha : float
        Significance level of the filled markers (on ``p_holm``).
    title : str, optional
        Default: target, baseline, interval level and songs x seeds.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics)`` axes; in each, per model a marker line with gid ``"point
        <model>"`` (x = median difference) and its interval with gid ``"ci <model>"``,
        and the zero line with gid ``"zero"``.
    """
    rows, metrics = _paired_rows(paired, target, metrics)
    # one line per comparison: each model against the main baseline (the most frequent
    # reference), then the proposed model against each control ("A - B" labels)
    main_baseline = rows["baseline"].value_counts().index[0]
    models = order_methods(rows.loc[rows["baseline"] == main_baseline, "model"].unique())
    comparisons = [(m, main_baseline) for m in models] + list(dict.fromkeys(
        (m, b) for m, b in zip(rows["model"], rows["baseline"]) if b != main_baseline))
    counts = _songs_by_seeds(rows)

    def label(model, reference):
        text = method_label(model) if reference == main_baseline else \
            f"{method_label(model)} - {method_label(reference)}"
        if counts:
            return text
        first = rows[(rows["model"] == model) & (rows["baseline"] == reference)].iloc[0]
        return f"{text} ({int(first.n_songs)}x{int(first.n_seeds)})"

    fig, axes = new_figure(1, len(metrics), figsize=(2.6 * len(metrics) + 2.6 + 1.2 * (
        len(comparisons) > len(models)), max(0.42 * len(comparisons) + 1.9, 3.4)), sharey=True)  # never flatter than ~4:1
    positions = np.arange(len(comparisons))
    for ax, metric in zip(axes[0], metrics):
        by_pair = rows[rows["metric"] == metric].set_index(["model", "baseline"])
        for y, (model, reference) in zip(positions, comparisons):
            if (model, reference) in by_pair.index:
                gid = model if reference == main_baseline else f"{model} vs {reference}"
                _draw_paired_row(ax, y, by_pair.loc[(model, reference)], model, gid, alpha)
        _paired_axis(ax, rows, metric)
    axes[0, 0].set_yticks(positions)
    axes[0, 0].set_yticklabels([label(m, b) for m, b in comparisons])
    for text, (model, _) in zip(axes[0, 0].get_yticklabels(), comparisons):
        # the full model's colour: the lighter shade of a half checkpoint is hard to read as text
        text.set_color(method_color(str(model).removesuffix(HALF_SUFFIX)))
    axes[0, 0].set_ylim(len(comparisons) - 0.5, -0.5)  # first comparison on top
    fig.suptitle(title if title is not None else _paired_title(rows, target, main_baseline, counts, alpha))
    return finish(fig, path, dpi)


def _paired_rows(paired, target: str, metrics: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The paired-differences table's rows of ``target``, checked to hold every metric."""
    df = read_table(paired, "paired differences")
    require_columns(df, _PAIRED_COLUMNS, "paired differences table",
                     "inference.paired_differences writes it (tables/paired_differences.csv)")
    rows = df[df["target"] == target]
    if rows.empty:
        raise ValueError(f"paired differences: no rows for target {target!r}; targets: "
                         f"{sorted(df['target'].unique())}")
    metrics = list(metrics)
    missing = [m for m in metrics if m not in set(rows["metric"])]
    if not metrics or missing:
        raise ValueError(f"paired differences: metric(s) {missing or metrics} not in the "
                         f"{target!r} rows; available: {sorted(rows['metric'].unique())}")
    return rows, metrics


def _draw_paired_row(ax, y: float, row: pd.Series, model: str, gid: str, alpha: float) -> None:
    """One comparison's point (filled when the verdict claims a difference) and interval."""
    color = method_color(model)
    value, low, high = (float(row[c]) for c in ("median_diff", "ci_low", "ci_high"))
    if "verdict" in row.index and isinstance(row["verdict"], str) and row["verdict"]:
        # the table's verdict: Holm p below alpha and the crossed interval off zero
        significant = row["verdict"] in ("higher", "lower")
    else:
        significant = np.isfinite(row["p_holm"]) and float(row["p_holm"]) < alpha
    if np.isfinite(low) and np.isfinite(high):
        bar = ax.hlines(y, low, high, color=color, linewidth=2.0)
        bar.set_gid(f"ci {gid}")
    (point,) = ax.plot([value], [y], linestyle="none",
                       marker="s" if str(model).endswith(HALF_SUFFIX) else "o",
                       markersize=7, color=color, markeredgecolor=color,
                       markerfacecolor=color if significant else "white",
                       markeredgewidth=1.5, zorder=3)
    point.set_gid(f"point {gid}")


def _paired_axis(ax, rows: pd.DataFrame, metric: str) -> None:
    """A panel's zero line, equivalence margin (when the table has one), title and grid."""
    zero = ax.axvline(0.0, color="black", linestyle="--", linewidth=1.0, zorder=1)
    zero.set_gid("zero")
    if "delta" in rows.columns and np.isfinite(rows["delta"].astype(float)).any():
        delta = float(rows["delta"].astype(float).max())  # the equivalence margin
        for sign in (-1, 1):
            ax.axvline(sign * delta, color="grey", linestyle=":", linewidth=1.0, zorder=1,
                       gid="equivalence margin")
    ax.set_title(metric)
    ax.set_xlabel(f"{metric} difference (dB)")
    ax.grid(True, axis="x", alpha=0.3)


def _paired_title(rows: pd.DataFrame, target: str, main_baseline: str, counts: str | None, alpha: float) -> str:
    baseline = method_label(main_baseline)
    level = rows["level"].iloc[0] * 100 if "level" in rows.columns else 95
    return (f"{target}: model - {baseline}, median over songs of paired differences, "
            f"{level:g} % bootstrap CI\n{counts or 'songs x seeds per model in brackets'}; "
            + (f"filled: a difference the verdict claims (Holm p < {alpha * 100:g} %, interval "
               "off zero, seeds agree); dotted: the equivalence margin"
               if "verdict" in rows.columns else
               f"filled: significant at {alpha * 100:g} % after Holm correction"))


def training_length_figure(medians, path=None, target: str = "vocals", metric: str = "SDR",
                           title: str | None = None, dpi: int = DEFAULT_DPI):
    """Median score of each model at half and at full training, with bootstrap intervals.

    Parameters
    ----------
    medians : DataFrame or path
        ``inference.model_medians`` or ``tables/model_medians.csv`` (columns ``model, target,
        metric, median, ci_low, ci_high``), holding ``<model>-half`` rows.
    path : path-like, optional
        Where to save the PNG.
    target, metric : str
        The score shown.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes; per model with a half-training checkpoint a line with gid
        ``"model <model>"`` through (0, half) and (1, full), and its intervals.
    """
    df = read_table(medians, "model medians")
    require_columns(df, ["model", "target", "metric", "median", "ci_low", "ci_high"],
                     "model medians table", "inference.model_medians writes it (tables/model_medians.csv)")
    rows = df[(df["target"] == target) & (df["metric"] == metric)].set_index("model")
    models = [m for m in order_methods(rows.index) if not str(m).endswith(HALF_SUFFIX)
              and f"{m}{HALF_SUFFIX}" in rows.index]
    if not models:
        raise ValueError(f"model medians: no model has both a half-training ('<model>{HALF_SUFFIX}') "
                         f"and a full-training row for {target} {metric}; models: {sorted(rows.index)}")
    fig, axes = new_figure(figsize=(8.4, 4.6))
    ax = axes[0, 0]
    offsets = (np.arange(len(models)) - (len(models) - 1) / 2) * 0.06
    for model, offset in zip(models, offsets):
        both = rows.loc[[f"{model}{HALF_SUFFIX}", model]]
        x = np.array([0.0, 1.0]) + offset
        y = both["median"].to_numpy(dtype=float)
        low, high = both["ci_low"].to_numpy(dtype=float), both["ci_high"].to_numpy(dtype=float)
        color = method_color(model)
        (line,) = ax.plot(x, y, color=color, marker="o", label=method_label(model))
        line.set_gid(f"model {model}")
        finite = np.isfinite(low) & np.isfinite(high)
        ax.vlines(x[finite], low[finite], high[finite], color=color, linewidth=1.5)
    ax.set_xticks([0.0, 1.0])
    ax.set_xticklabels(["half training", "full training"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel(f"{target} {metric} (dB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or f"{target} {metric}: median over songs (seed means), bootstrap CI")
    return finish(fig, path, dpi)
