"""melunmix.analysis.tuning_figures: the search space, the trials' curves, the transfer check."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from melunmix.analysis import tuning_figures
from melunmix.base import names

from figures_support import assert_png


def test_search_space_plot_of_an_optuna_study(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        gamma = trial.suggest_float("lr_decay_gamma", 0.1, 0.9)
        if trial.number == 3:
            raise optuna.TrialPruned()
        return (np.log10(lr) + 3) ** 2 + (gamma - 0.3) ** 2

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=8)
    trials = study.trials_dataframe()
    path = tmp_path / "search.png"
    fig = tuning_figures.search_space_figure(trials, path=path)
    assert_png(path)
    assert len(fig.axes) == 2  # scatter + colour bar
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    points, star = ax.collections
    assert len(points.get_offsets()) == 7  # the pruned trial is left out
    np.testing.assert_allclose(star.get_offsets()[0],
                               [study.best_params["lr"], study.best_params["lr_decay_gamma"]])
    fig = tuning_figures.search_space_figure(trials, y=None)  # loss against lr alone
    assert len(fig.axes) == 1
    assert fig.axes[0].collections[1].get_offsets()[0][1] == pytest.approx(study.best_value)
    # melunmix.training.tune's trials.csv: plain parameter names, best_valid_loss, failed trials
    table = pd.DataFrame({"trial": [0, 1, 2], "state": ["COMPLETE", "FAIL", "COMPLETE"],
                          "lr": [1e-3, 1e-2, 3e-4], "lr_decay_gamma": [0.3, 0.5, 0.7],
                          "best_valid_loss": [0.8, np.nan, 0.5]})
    table.to_csv(tmp_path / "trials.csv", index=False)
    fig = tuning_figures.search_space_figure(tmp_path / "trials.csv")
    points, star = fig.axes[0].collections
    np.testing.assert_allclose(points.get_array(), [0.8, 0.5])
    np.testing.assert_allclose(star.get_offsets()[0], [3e-4, 0.7])
    with pytest.raises(ValueError, match="'momentum'"):
        tuning_figures.search_space_figure(trials, y="momentum")
    with pytest.raises(ValueError, match="loss"):
        tuning_figures.search_space_figure(trials, value="loss")


def test_tuning_curves_of_many_models_are_columns(tmp_path):
    rows = []
    models = ["openunmix", "melunmix", "mfccunmix", "linunmix", "wideunmix"]
    for model in models:
        for trial, lr in enumerate([0.01, 0.003]):
            for epoch in (1, 2, 3):
                rows.append(dict(model=model, trial=trial, epoch=epoch, lr=lr * 0.9 ** (epoch - 1),
                                 valid_loss=1.0 / epoch + trial))
    path = tmp_path / "curves.png"
    fig = tuning_figures.tuning_curves_figure(pd.DataFrame(rows), path=path, dpi=40)
    panels = fig.axes[:-1]  # the last is the trial colour bar
    assert len(panels) == 10
    titles = [ax.get_title() for ax in panels]
    # Row 0: each model's learning rate; row 1: its validation loss, the same column.
    for model in models:
        lr_ax = panels[titles.index(f"{names.method_label(model)}: learning rate")]
        loss_ax = panels[titles.index(f"{names.method_label(model)}: validation loss")]
        assert lr_ax.get_position().x0 == pytest.approx(loss_ax.get_position().x0)
        assert lr_ax.get_position().y0 > loss_ax.get_position().y0
        assert lr_ax.get_yscale() == "log"
        np.testing.assert_allclose(sorted(loss_ax.lines[0].get_ydata()), [1 / 3, 1 / 2, 1.0])
    width, height = Image.open(path).size
    assert width / height > 1.5, (width, height)
    # Two models keep one row each: learning rate left, loss right.
    two = tuning_figures.tuning_curves_figure(pd.DataFrame([r for r in rows if r["model"] in models[:2]]))
    first, second = two.axes[0].get_position(), two.axes[1].get_position()
    assert first.y0 == pytest.approx(second.y0) and first.x0 < second.x0
