"""melunmix.analysis.training_figures: loss and learning curves from histories."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from melunmix.analysis import figure_style, training_figures

from figures_support import assert_png, history


def test_loss_curves_read_history_csv_and_reject_missing_columns(tmp_path):
    csv = tmp_path / "history.csv"
    history([1.0, 0.5], [1.2, 0.9]).to_csv(csv, index=False)
    fig = training_figures.loss_curves({"openunmix": csv})
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [1.2, 0.9])
    bad = history([1.0], [1.0]).drop(columns="valid_loss")
    with pytest.raises(ValueError, match="valid_loss"):
        training_figures.loss_curves({"openunmix": bad})
    with pytest.raises(ValueError, match="non-empty"):
        training_figures.loss_curves({})
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        training_figures.loss_curves({"openunmix": tmp_path / "missing.csv"})


def test_learning_curves_show_each_seed_and_the_median_over_steps_every_seed_reached(tmp_path):
    def run(valid, sdr, steps_per_epoch=10):
        epochs = np.arange(1, len(valid) + 1)
        return pd.DataFrame({"epoch": epochs, "step": epochs * steps_per_epoch, "valid_loss": valid,
                             "valid_sdr": sdr})

    histories = {"openunmix-seed1": run([3.0, 2.0, 1.5, 1.4], [np.nan, 1.0, np.nan, 2.0]),
                 "openunmix-seed2": run([3.2, 2.2, 1.8], [np.nan, 0.5, 1.5]),  # stopped a epoch earlier
                 "openunmix-seed3": run([2.8, 2.4, 1.6, 1.7], [np.nan, 0.8, np.nan, 1.9]),
                 "melunmix-seed1": run([2.5, 1.5], [np.nan, 3.0])}
    path = tmp_path / "learning_curves.png"
    fig = training_figures.learning_curves(histories, path=path, half_step=20)
    assert_png(path)
    loss_ax, sdr_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and loss_ax.get_xlabel() == "optimiser steps"
    thick = {line.get_label(): line for line in loss_ax.lines if line.get_linewidth() > 2}
    assert set(thick) == {"Open-Unmix (baseline) (3 seeds)", "MelUnmix (mel, proposed) (1 seed)"}
    median = thick["Open-Unmix (baseline) (3 seeds)"]
    # Steps 10-30: every seed reached them; the median of (3.0, 3.2, 2.8), (2.0, 2.2, 2.4), (1.5, 1.8, 1.6).
    np.testing.assert_array_equal(median.get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(median.get_ydata(), [3.0, 2.2, 1.6])
    thin = [line for line in loss_ax.lines if 0 < line.get_linewidth() < 1]
    assert len(thin) == 4
    for line in thin[:3]:
        assert matplotlib.colors.same_color(line.get_color(), figure_style.method_color("openunmix"))
    # Each run's best validation loss is circled; the SDR panel's median uses the epochs with a score.
    marks = sorted(tuple(c.get_offsets()[0].tolist()) for c in loss_ax.collections)
    assert marks == [(20.0, 1.5), (30.0, 1.6), (30.0, 1.8), (40.0, 1.4)]
    sdr_median = next(line for line in sdr_ax.lines if line.get_label().startswith("Open-Unmix"))
    np.testing.assert_array_equal(sdr_median.get_xdata(), [20])
    np.testing.assert_allclose(sdr_median.get_ydata(), [0.8])
    assert any(list(line.get_xdata()) == [20, 20] for line in loss_ax.lines)  # the half-training mark
    assert "dotted: the half-training comparison" in fig._suptitle.get_text()
    # Without half-training weights scored, no dotted line and no word of it.
    plain = training_figures.learning_curves(histories)
    assert not any(line.get_linestyle() == ":" for ax in plain.axes for line in ax.lines)
    assert plain._suptitle.get_text() == "Thin: one seed; thick: median over seeds"
    with pytest.raises(ValueError, match="valid_loss"):
        training_figures.learning_curves({"openunmix": histories["openunmix-seed1"].drop(columns="valid_loss")})


def test_loss_curves_draw_train_solid_and_valid_dashed_per_model(tmp_path):
    histories = {"melunmix": history([3.0, 2.5, 2.3], [3.1, 2.4, 2.6]),
                 "openunmix": history([2.0, 1.0, 0.6], [2.2, 1.6, 1.4])}
    path = tmp_path / "figures" / "loss_curves.png"
    fig = training_figures.loss_curves(histories, path=path, log_y=True)
    assert_png(path)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * len(histories)
    assert ax.get_yscale() == "log"
    by_label = {line.get_label(): line for line in ax.lines}
    train = by_label["Open-Unmix (baseline), train"]
    valid = by_label["Open-Unmix (baseline), validation"]
    assert train.get_linestyle() == "-" and valid.get_linestyle() == "--"
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [2.0, 1.0, 0.6])
    np.testing.assert_array_equal(valid.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(valid.get_ydata(), [2.2, 1.6, 1.4])
    assert matplotlib.colors.same_color(train.get_color(), figure_style.method_color("openunmix"))
    assert matplotlib.colors.same_color(by_label["MelUnmix (mel, proposed), train"].get_color(),
                                        figure_style.method_color("melunmix"))
    # best validation epoch of the proposed model (epoch 2, 2.4) is marked
    marks = [c.get_offsets()[0].tolist() for c in ax.collections]
    assert [2.0, 2.4] in marks and [3.0, 1.4] in marks
