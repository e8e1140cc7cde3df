"""melunmix.analysis.score_figures: the metric table, boxplots, paired differences, half against full training (the run report's tests: tests/study/test_report.py)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from melunmix.analysis import figure_style, score_figures
from melunmix.base import names

from figures_support import assert_png, cell_texts, paired_table


def test_metric_boxplots_show_museval_per_track_medians(tmp_path, museval_scores):
    metrics = ("SDR", "SIR", "ISR", "SAR")
    path = tmp_path / "boxplots.png"
    fig = score_figures.metric_boxplots(museval_scores.df, target="vocals", metrics=metrics, path=path)
    assert_png(path)
    assert len(fig.axes) == len(metrics)
    assert sum(len(ax.patches) for ax in fig.axes) == 3 * len(metrics)
    per_track = museval_scores.agg_frames_scores().reset_index()  # museval's own aggregation
    methods = ["openunmix", "melunmix", "MIX"]
    for ax, metric in zip(fig.axes, metrics):
        assert ax.get_title() == metric
        # median lines of the boxes (drawn in method order) = median over tracks
        medians = {line.get_gid(): line.get_ydata()[0] for line in ax.lines
                   if str(line.get_gid()).startswith("median")}
        shown = [medians[f"median {m}"] for m in methods]
        assert [p.get_gid() for p in ax.patches] == [f"box {m}" for m in methods]
        vocals = per_track[(per_track["target"] == "vocals") & (per_track["metric"] == metric)]
        expected = [vocals.loc[vocals["method"] == m, "score"].median() for m in methods]
        np.testing.assert_allclose(shown, expected, atol=1e-9)
        # one dot per track per method
        assert sum(len(c.get_offsets()) for c in ax.collections) == 3 * 3


def test_metric_boxplots_reject_bad_input(museval_scores):
    with pytest.raises(ValueError, match="track"):
        score_figures.metric_boxplots(museval_scores.df.drop(columns="track"))
    with pytest.raises(ValueError, match="available targets"):
        score_figures.metric_boxplots(museval_scores.df, target="drums")
    with pytest.raises(ValueError, match="PES"):
        score_figures.metric_boxplots(museval_scores.df, metrics=("SDR", "PES"))
    with pytest.raises(ValueError, match="IRM1"):
        score_figures.metric_boxplots(museval_scores.df, methods=["IRM1"])


def test_metric_table_figure_shows_the_table_in_db(tmp_path, museval_scores):
    long = museval_scores.agg_frames_tracks_scores().reset_index()  # method, target, metric, score
    long.loc[0, "score"] = np.nan
    path = tmp_path / "table.png"
    fig = score_figures.metric_table_figure(long, path=path)
    assert_png(path)
    ax = fig.axes[0]
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows == [names.method_label(m) for m in ["openunmix", "melunmix", "MIX"]]
    columns = [label.get_text() for label in ax.get_xticklabels()]
    assert columns == ["SDR", "SIR", "ISR", "SAR"] * 2
    cells = cell_texts(fig)
    assert len(cells) == 3 * 8
    for (method, target, metric), score in long.set_index(["method", "target", "metric"])["score"].items():
        i = ["openunmix", "melunmix", "MIX"].index(method)
        j = ["vocals", "accompaniment"].index(target) * 4 + ["SDR", "SIR", "ISR", "SAR"].index(metric)
        assert cells[(i, j)] == ("n/a" if np.isnan(score) else f"{score:.2f}")
    groups = [t.get_text() for t in ax.texts if hasattr(t, "xyann")]
    assert groups == ["vocals", "accompaniment"]
    # the wide table, and its CSV, give the same figure
    wide = long.pivot(index="method", columns=["target", "metric"], values="score")
    wide.to_csv(tmp_path / "poster.csv")
    assert cell_texts(score_figures.metric_table_figure(wide)) == cells
    assert cell_texts(score_figures.metric_table_figure(tmp_path / "poster.csv")) == cells


def test_metric_table_figure_rejects_unaggregated_or_incomplete_tables(museval_scores):
    with pytest.raises(ValueError, match="several scores"):
        score_figures.metric_table_figure(museval_scores.df)
    long = museval_scores.agg_frames_tracks_scores().reset_index()
    with pytest.raises(ValueError, match="score"):
        score_figures.metric_table_figure(long.drop(columns="score"))


def test_paired_differences_figure_draws_each_models_median_and_interval(tmp_path):
    table = paired_table()
    table.to_csv(tmp_path / "paired_differences.csv", index=False)
    path = tmp_path / "figures" / "paired_differences.png"
    fig = score_figures.paired_differences_figure(tmp_path / "paired_differences.csv", path=path)
    assert_png(path)
    assert [ax.get_title() for ax in fig.axes] == ["SDR", "SIR", "ISR", "SAR"]
    assert "16 songs x 3 seeds" in fig._suptitle.get_text()
    assert "Open-Unmix (baseline)" in fig._suptitle.get_text()
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == [names.method_label(m) for m in ("melunmix", "mfccunmix", "linunmix-half")]
    vocals = table[table["target"] == "vocals"].set_index(["metric", "model"])
    for ax in fig.axes:
        by_gid = {artist.get_gid(): artist for artist in ax.lines + ax.collections}
        zero = by_gid["zero"]
        assert list(zero.get_xdata()) == [0.0, 0.0]
        for y, model in enumerate(("melunmix", "mfccunmix", "linunmix-half")):
            row = vocals.loc[(ax.get_title(), model)]
            point = by_gid[f"point {model}"]
            assert point.get_xdata()[0] == pytest.approx(row["median_diff"]) and point.get_ydata()[0] == y
            (segment,) = by_gid[f"ci {model}"].get_segments()
            np.testing.assert_allclose(segment, [[row["ci_low"], y], [row["ci_high"], y]])
            # filled: significant after Holm; open: not
            filled = point.get_markerfacecolor() != "white"
            assert filled == (row["p_holm"] < 0.05)
            assert matplotlib.colors.same_color(point.get_color(), figure_style.method_color(model))
        assert by_gid["point linunmix-half"].get_marker() == "s"
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]  # first model on top
    # rows with other counts: the counts move into the labels
    mixed = pd.concat([paired_table(("melunmix",)), paired_table(("mfccunmix",), songs=12)])
    fig = score_figures.paired_differences_figure(mixed)
    width, height = fig.get_size_inches()
    assert width / height <= 4.2  # two lines: still readable at page width
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][1].endswith("(12x3)")
    # the proposed model against a control: a line of its own below the models, "A - B"
    control = paired_table(("melunmix",)).assign(baseline="linunmix", median_diff=0.3)
    fig = score_figures.paired_differences_figure(pd.concat([table, control]))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == f"{names.method_label('melunmix')} - {names.method_label('linunmix')}"
    by_gid = {artist.get_gid(): artist for artist in fig.axes[0].lines}
    assert by_gid["point melunmix vs linunmix"].get_xdata()[0] == 0.3
    assert by_gid["point melunmix vs linunmix"].get_ydata()[0] == 3
    assert by_gid["point melunmix"].get_xdata()[0] == pytest.approx(-1.0)
    assert "Open-Unmix (baseline)" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="drums"):
        score_figures.paired_differences_figure(table, target="drums")
    with pytest.raises(ValueError, match="PES"):
        score_figures.paired_differences_figure(table, metrics=["SDR", "PES"])
    with pytest.raises(ValueError, match="ci_low"):
        score_figures.paired_differences_figure(table.drop(columns="ci_low"))


def test_training_length_figure_joins_half_and_full_training(tmp_path):
    rows = []
    for model, half, full in (("openunmix", 3.0, 4.0), ("melunmix", 3.5, 4.5), ("mfccunmix", None, 4.2)):
        for name, value in ((f"{model}-half", half), (model, full)):
            if value is not None:
                rows.append(dict(model=name, target="vocals", metric="SDR", n_songs=4, n_seeds=2,
                                 median=value, mean=value, ci_low=value - 1, ci_high=value + 0.5,
                                 level=0.95))
    path = tmp_path / "training_length.png"
    fig = score_figures.training_length_figure(pd.DataFrame(rows), path=path)
    assert_png(path)
    (ax,) = fig.axes
    lines = {line.get_gid(): line for line in ax.lines}
    assert set(lines) == {"model openunmix", "model melunmix"}  # mfccunmix has no half checkpoint
    np.testing.assert_allclose(lines["model melunmix"].get_ydata(), [3.5, 4.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["half training", "full training"]
    segments = np.concatenate([c.get_segments() for c in ax.collections])
    assert sorted(round(s[0][1], 6) for s in segments) == [2.0, 2.5, 3.0, 3.5]  # interval lows
    with pytest.raises(ValueError, match="half-training"):
        score_figures.training_length_figure(pd.DataFrame(rows[-1:]))


def test_boxplots_mark_residue_as_inf_and_keep_it_off_the_axis():
    """MIX's SAR (~147 dB of float residue, as written by museval or an older table) is not
    drawn on the dB axis, whose range stays the models'; an "inf" mark stands in its place."""
    rows = []
    for track, (model, mix) in {"a": (6.0, 147.1), "b": (8.0, 146.9), "c": (7.0, 147.3)}.items():
        rows += [dict(method="openunmix", track=track, target="vocals", metric="SAR", score=model),
                 dict(method="MIX", track=track, target="vocals", metric="SAR", score=mix)]
    fig = score_figures.metric_boxplots(pd.DataFrame(rows), target="vocals", metrics=["SAR"])
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 20  # not stretched to 147 dB
    marks = [t for t in ax.texts if t.get_gid() == "residue"]
    assert [m.get_text() for m in marks] == ["inf"] and marks[0].xy[0] == 2  # MIX's position
    dots = np.concatenate([np.asarray(c.get_offsets(), dtype=float).reshape(-1, 2) for c in ax.collections])
    assert len(dots) == 3 and np.isfinite(dots).all()  # the model's three songs, no MIX dot


def test_boxplots_are_a_grid_and_pool_a_models_seeds_per_track():
    rows = []
    values = {"openunmix-seed1": [1.0, 2.0, 9.0], "openunmix-seed2": [3.0, 4.0, 5.0], "MIX": [0.5, 0.4, 0.3]}
    for method, scores in values.items():
        for track, score in zip("abc", scores):
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                for frame in range(3):  # the median over frames is the score
                    rows.append(dict(method=method, track=track, target="vocals", metric=metric,
                                     score=score + (frame - 1) * 0.1))
    fig = score_figures.metric_boxplots(pd.DataFrame(rows), target="vocals")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    assert sorted({round(ax.get_position().x0, 2) for ax in visible}).__len__() == 2  # two columns
    assert sorted({round(ax.get_position().y0, 2) for ax in visible}).__len__() == 2  # two rows
    width, height = fig.get_size_inches()
    assert width < 8 and height < 10  # two boxes per panel: a page's width, not one long row
    for ax in visible:
        assert [p.get_gid() for p in ax.patches] == ["box openunmix", "box MIX"]
        median = next(line for line in ax.lines if line.get_gid() == "median openunmix")
        # per track the mean of the seeds (2, 3, 7), then the median over tracks
        assert median.get_ydata()[0] == pytest.approx(3.0)
    assert "mean over its 2 seeds" in fig._suptitle.get_text()
