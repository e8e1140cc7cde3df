"""Figures of the lower-rate search: the search space, the trials' curves, the full-rate transfer check."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..base.names import HISTORY_CSV_NAME, method_label
from .figure_style import DEFAULT_DPI, finish, method_color, new_figure, read_table, require_columns, save_figure


def _trial_column(df: pd.DataFrame, name: str) -> str:
    """``name`` or Optuna's ``params_<name>`` column."""
    for candidate in (name, f"params_{name}"):
        if candidate in df.columns:
            return candidate
    raise ValueError(f"trials table has no column {name!r} (nor 'params_{name}'); "
                     f"columns: {list(map(str, df.columns))}")


def search_space_figure(trials, x: str = "lr", y: str | None = "lr_decay_gamma",
                      value: str | None = None, path=None, log_x: bool | None = None,
                      title: str = "Hyper-parameter search: validation loss per trial",
                      dpi: int = DEFAULT_DPI):
    """Validation loss over the tuning search space; the best trial is starred.

    Parameters
    ----------
    trials : DataFrame or path
        One row per trial with the parameter columns (``lr`` or Optuna's
        ``params_lr``, ...) and the validation loss. When a ``state`` column
        exists (Optuna), only ``COMPLETE`` trials are shown; trials with a missing loss
        are dropped.
    x, y : str
        Parameters on the axes; ``y=None`` plots the loss against ``x`` alone.
    value : str, optional
        Column with the validation loss (lower is better). Default: ``value`` (Optuna's
        ``trials_dataframe``) or else ``best_valid_loss`` (``tuning/trials.csv`` of
        :mod:`melunmix.training.tune`).
    path : path-like, optional
        Where to save the PNG.
    log_x : bool, optional
        Logarithmic x axis; default: when ``x`` is ``"lr"``.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        With ``y``: the scatter axes and its colour bar (2 axes); without: 1 axes.
    """
    df = read_table(trials, "trials")
    x_col = _trial_column(df, x)
    y_col = _trial_column(df, y) if y is not None else None
    if value is None:
        value = next((c for c in ("value", "best_valid_loss") if c in df.columns), "value")
    require_columns(df, [value], "trials", "the validation loss of each trial")
    if "state" in df.columns:
        df = df[df["state"].astype(str).str.upper().str.endswith("COMPLETE")]
    df = df[np.isfinite(pd.to_numeric(df[value], errors="coerce"))]
    if df.empty:
        raise ValueError("trials table has no finished trial with a finite loss to plot")
    xs = df[x_col].to_numpy(dtype=float)
    losses = df[value].to_numpy(dtype=float)
    best = int(np.argmin(losses))
    log_x = (x == "lr") if log_x is None else log_x

    fig, axes = new_figure(figsize=(7.0, 4.8))
    ax = axes[0, 0]
    if y_col is None:
        ax.scatter(xs, losses, s=40, color=method_color("openunmix"), edgecolors="black",
                   linewidths=0.5, label="trial")
        ax.scatter([xs[best]], [losses[best]], marker="*", s=300, color="gold",
                   edgecolors="black", zorder=3, label=f"best ({losses[best]:.3g})")
        ax.set_ylabel("Validation loss (MSE)")
    else:
        ys = df[y_col].to_numpy(dtype=float)
        points = ax.scatter(xs, ys, c=losses, cmap="viridis_r", s=60, edgecolors="black",
                            linewidths=0.5)
        ax.scatter([xs[best]], [ys[best]], marker="*", s=350, color="gold", edgecolors="black",
                   zorder=3, label=f"best: {x}={xs[best]:.3g}, {y}={ys[best]:.3g}")
        fig.colorbar(points, ax=ax, label="Validation loss (MSE, lower is better)")
        ax.set_ylabel(y)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x + (" (log scale)" if log_x else ""))
    ax.set_title(f"{title}\n({len(df)} trials)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return finish(fig, path, dpi)


def tuning_curves_figure(histories, path: str | os.PathLike | None = None, dpi: int | None = None):
    """Learning rate and validation loss per epoch of every trial, one colour per trial.

    Shows that each searched setting changed training: with the exponential schedule the
    learning rate of every trial falls by its own factor per epoch.

    Parameters
    ----------
    histories : DataFrame or path
        ``trial_histories.csv`` (columns ``trial, epoch, valid_loss, lr``), or
        :func:`melunmix.training.tune.load_trial_histories` (with a ``model`` column: one row of panels per model).
    path : path-like, optional
        Where to save the PNG (e.g. ``figures/tuning_lr_curves.png``).
    dpi : int, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per model: learning rate (log scale) and validation loss, per epoch; side
        by side in one row per model for up to two models, else one above the other in one
        column per model.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    df = read_table(histories, "trial histories")
    require_columns(df, ["trial", "epoch", "valid_loss", "lr"], "trial histories")
    if df.empty:
        raise ValueError("trial histories are empty: run the search first")
    if "model" not in df.columns:
        df = df.assign(model="")
    models = list(dict.fromkeys(df["model"]))
    # One row per model (learning rate, loss) for one or two models; with more, one column
    # per model (learning rate above loss), so five models make a wide figure, not a tower.
    by_column = len(models) > 2
    if by_column:
        fig, grid = plt.subplots(2, len(models), figsize=(3.4 * len(models) + 1.0, 6.4), squeeze=False,
                                 layout="constrained")
        axes = grid.T
    else:
        fig, axes = plt.subplots(len(models), 2, figsize=(10.0, 3.6 * len(models)), squeeze=False,
                                 layout="constrained")
    trials = sorted(pd.unique(df["trial"]))
    norm = Normalize(vmin=min(trials), vmax=max(max(trials), min(trials) + 1))
    cmap = plt.get_cmap("viridis")
    for row, model in enumerate(models):
        part = df[df["model"] == model]
        for trial, group in part.groupby("trial", sort=True):
            group = group.sort_values("epoch")
            colour = cmap(norm(trial))
            for ax, column in zip(axes[row], ("lr", "valid_loss")):
                values = pd.to_numeric(group[column], errors="coerce")
                ax.plot(group["epoch"], values, marker="o", color=colour, lw=1.5, ms=4)
        label = f"{method_label(model)}: " if model else ""
        axes[row, 0].set_yscale("log")
        axes[row, 0].set_ylabel("learning rate (log scale)")
        axes[row, 0].set_title(f"{label}learning rate")
        axes[row, 1].set_ylabel("validation loss (MSE)")
        axes[row, 1].set_title(f"{label}validation loss")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.set_xticks(sorted(pd.unique(part["epoch"])))
            ax.grid(True, alpha=0.3)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=(axes[-1] if by_column else axes[:, -1]).tolist(),
                       label="trial")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Tuning trials per epoch ({len(trials)} trials, one colour each)")
    if path is not None:
        save_figure(fig, path, **({} if dpi is None else {"dpi": dpi}))
    return fig


def transfer_figure(table, tuning_dir: str | os.PathLike, path: str | os.PathLike | None = None,
                  dpi: int | None = None):
    """Training and validation loss per epoch of the transfer runs, tuned (solid) and default
    (dashed), one colour per model.

    Parameters
    ----------
    table : DataFrame or path
        From :func:`melunmix.training.tune.transfer_check` (or its ``transfer.csv``); its ``run_dir`` column gives
        the runs' folders relative to ``tuning_dir``.
    tuning_dir : path
        The tuning folder the transfer check ran in.
    path : path-like, optional
        Where to save the PNG (e.g. ``figures/tuning_transfer.png``).
    dpi : int, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: training loss and validation loss per epoch.
    """
    import matplotlib.pyplot as plt


    df = read_table(table, "transfer table")
    require_columns(df, ["model", "variant", "run_dir"], "transfer table")
    if df.empty:
        raise ValueError("the transfer table is empty (tune.transfer_epochs is 0?)")
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8), squeeze=False, layout="constrained")
    epochs = [0]
    for _, row in df.iterrows():
        history = pd.read_csv(Path(tuning_dir) / row["run_dir"] / HISTORY_CSV_NAME)
        epochs.append(int(history["epoch"].max()))
        tuned = row["variant"] == "tuned"
        colour = method_color(row["model"])
        label = f"{method_label(row['model'])}, {row['variant']} values"
        for ax, column in zip(axes[0], ("train_loss", "valid_loss")):
            ax.plot(history["epoch"], history[column], "-" if tuned else "--", marker="o" if tuned else "s",
                    ms=7, color=colour, markerfacecolor=colour if tuned else "white", label=label)
    for ax, title in zip(axes[0], ("training loss", "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{title} (MSE)")
        ax.set_title(f"{title.capitalize()} at the full rate")
        ax.set_xticks(range(1, max(epochs) + 1))
        ax.set_xlim(0.5, max(epochs) + 0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Transfer check: tuned vs default values, same seed and data")
    if path is not None:
        save_figure(fig, path, **({} if dpi is None else {"dpi": dpi}))
    return fig
