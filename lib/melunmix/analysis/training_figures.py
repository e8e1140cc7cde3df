"""Figures of training: loss curves and learning curves of every model and seed."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..base.names import method_label, order_methods, split_seed
from .figure_style import DEFAULT_DPI, finish, method_color, new_figure, read_table, require_columns


def loss_curves(histories: Mapping[str, pd.DataFrame], path=None, log_y: bool = False,
                title: str = "Training and validation loss", dpi: int = DEFAULT_DPI):
    """Train (solid) and validation (dashed) MSE per epoch of several models, one figure.

    Parameters
    ----------
    histories : dict of str -> DataFrame or path
        Model name -> its training history (``models/<name>/history.csv`` or the
        DataFrame), with columns ``epoch``, ``train_loss``, ``valid_loss`` (others are
        ignored). Each model gets its method colour; its best validation epoch is marked.
    path : path-like, optional
        Where to save the PNG.
    log_y : bool
        Logarithmic loss axis (useful when the first epochs dwarf the rest).
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes with ``2 * len(histories)`` lines; a second axes beside it with the
        validation vocals SDR (dB) per epoch when a history has a ``valid_sdr`` column
        (``train.valid_sdr_every``).
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict of model name -> history DataFrame")
    frames = {}
    for name, history in histories.items():
        df = read_table(history, f"history of {name!r}")
        require_columns(df, ["epoch", "train_loss", "valid_loss"], f"history of {name!r}",
                         "melunmix.training.train writes these to models/<name>/history.csv")
        if df.empty:
            raise ValueError(f"history of {name!r} has no epochs")
        frames[name] = df.sort_values("epoch")

    with_sdr = {name: df for name, df in frames.items()
                if "valid_sdr" in df.columns and df["valid_sdr"].notna().any()}
    fig, axes = new_figure(ncols=2 if with_sdr else 1, figsize=(13.0 if with_sdr else 7.5, 4.5))
    if with_sdr:
        sdr_ax = axes[0, 1]
        for name in order_methods(with_sdr):
            df = with_sdr[name].dropna(subset=["valid_sdr"])
            sdr_ax.plot(df["epoch"].to_numpy(dtype=float), df["valid_sdr"].to_numpy(dtype=float),
                        color=method_color(name), marker="o", markersize=4, label=method_label(name))
        sdr_ax.set_xlabel("Epoch")
        sdr_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        sdr_ax.set_ylabel("median vocals SDR (dB), validation songs")
        sdr_ax.set_title("Validation SDR (BSS Eval v4)")
        sdr_ax.grid(True, alpha=0.3)
        sdr_ax.legend(fontsize="small")
    ax = axes[0, 0]
    for name in order_methods(frames):
        df, color, label = frames[name], method_color(name), method_label(name)
        epoch = df["epoch"].to_numpy(dtype=float)
        valid = df["valid_loss"].to_numpy(dtype=float)
        ax.plot(epoch, df["train_loss"].to_numpy(dtype=float), color=color, linestyle="-",
                marker="o", markersize=3, label=f"{label}, train")
        ax.plot(epoch, valid, color=color, linestyle="--", marker="s", markersize=3,
                label=f"{label}, validation")
        if np.isfinite(valid).any():
            best = int(np.nanargmin(valid))
            ax.scatter([epoch[best]], [valid[best]], s=90, facecolors="none", edgecolors=color,
                       linewidths=1.5, zorder=3)
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("MSE loss (magnitude spectrogram)")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title + ("\n(circles: best validation epoch)" if frames else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return finish(fig, path, dpi)


def learning_curves(histories: Mapping[str, pd.DataFrame], path=None, half_step: float | None = None,
                    dpi: int = DEFAULT_DPI):
    """Validation loss and validation vocals SDR against optimiser steps, one colour per
    model: each seed a thin line, the median over a model's seeds a thick one.

    Parameters
    ----------
    histories : dict of str -> DataFrame or path
        Method (``openunmix-seed1``, ...; seeds of a model share its colour) -> history
        with ``epoch`` and ``valid_loss``, and optionally ``step`` (optimiser steps at
        the epoch's end; :func:`melunmix.study.training_steps.load_histories` adds it; else epochs are
        shown) and ``valid_sdr``.
    path : path-like, optional
        Where to save the PNG.
    half_step : float, optional
        Where the half-training comparison is taken (a dotted vertical line).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Axes 0: validation loss (log scale); axes 1 (when a history has ``valid_sdr``):
        validation SDR. A circle marks each run's best validation loss; the median line
        runs as long as every seed of the model still trains.
    """

    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict of method name -> history DataFrame")
    by_model: dict[str, dict[str, pd.DataFrame]] = {}
    for name, history in histories.items():
        df = read_table(history, f"history of {name!r}")
        require_columns(df, ["epoch", "valid_loss"], f"history of {name!r}",
                         "melunmix.training.train writes these to models/<name>/history.csv")
        by_model.setdefault(split_seed(name)[0], {})[name] = df.sort_values("epoch")
    x_name = "step" if all("step" in df.columns for runs in by_model.values() for df in runs.values()) else "epoch"
    with_sdr = any("valid_sdr" in df.columns and df["valid_sdr"].notna().any()
                   for runs in by_model.values() for df in runs.values())
    columns = [("valid_loss", "validation loss (MSE, log scale)")]
    if with_sdr:
        columns.append(("valid_sdr", "median vocals SDR (dB), validation songs"))
    fig, axes = new_figure(ncols=len(columns), figsize=(6.0 * len(columns), 4.6))
    for (column, ylabel), ax in zip(columns, axes[0]):
        for model in order_methods(by_model):
            runs, color = by_model[model], method_color(model)
            curves = []
            for df in runs.values():
                rows = df.dropna(subset=[column]) if column in df.columns else df.iloc[:0]
                if rows.empty:
                    continue
                x, y = rows[x_name].to_numpy(dtype=float), rows[column].to_numpy(dtype=float)
                ax.plot(x, y, color=color, linewidth=0.8, alpha=0.35)
                if column == "valid_loss" and np.isfinite(y).any():
                    best = int(np.nanargmin(y))
                    ax.scatter([x[best]], [y[best]], s=22, facecolors="none", edgecolors=color, linewidths=1.0,
                               alpha=0.8, zorder=3)
                curves.append(pd.Series(y, index=x))
            if not curves:
                continue
            joined = pd.concat(curves, axis=1).sort_index().dropna()  # steps every seed reached
            label = f"{method_label(model)} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
            ax.plot(joined.index.to_numpy(dtype=float), joined.median(axis=1).to_numpy(dtype=float), color=color,
                    linewidth=2.2, label=label)
        if half_step is not None:
            ax.axvline(half_step, color="0.4", linestyle=":", linewidth=1.0)
        if column == "valid_loss":
            ax.set_yscale("log")
        ax.set_xlabel("optimiser steps" if x_name == "step" else "epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_title("Validation loss (circles: each run's best)")
    if with_sdr:
        axes[0, 1].set_title("Validation vocals SDR (BSS Eval v4)")
    axes[0, -1].legend(fontsize="small", loc="lower right" if with_sdr else "upper right")
    fig.suptitle("Thin: one seed; thick: median over seeds"
                 + ("; dotted: the half-training comparison" if half_step is not None else ""), fontsize="medium")
    return finish(fig, path, dpi)
