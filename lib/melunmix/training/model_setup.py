"""A run's network: its constructor arguments from the settings and the data, built, and started from trained weights when asked."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..models import networks as models
from ..base.config import Settings
from ..dsp.features import bandwidth_to_max_bin
from ..models.model_files import models_at
from ..base.names import canonical_model_name
from .training_data import TrainingData

logger = logging.getLogger(__name__)


def model_config(model_name: str, settings: Settings, data: TrainingData) -> dict[str, Any]:
    """Constructor arguments of the model to train, without the data statistics.

    The same dictionary identifies a run: a checkpoint made with other values is refused.

    Returns
    -------
    dict
        ``nb_bins``, ``nb_channels``, ``hidden_size``, ``nb_layers``, ``unidirectional``,
        ``max_bin``, ``sample_rate``, ``n_fft``, ``n_hop`` and, for the two-branch models,
        ``n_mels``, ``feature`` (fixed by the model name), ``n_mfcc``.
    """

    m = settings.model
    config = dict(
        nb_bins=data.nb_stft_bins,
        nb_channels=data.nb_channels,
        hidden_size=int(m.hidden_size),
        nb_layers=int(m.nb_layers),
        unidirectional=bool(m.unidirectional),
        max_bin=bandwidth_to_max_bin(data.sample_rate, data.n_fft, settings.stft.bandwidth),
        sample_rate=float(data.sample_rate),
        n_fft=int(data.n_fft),
        n_hop=int(data.n_hop),
    )
    feature = _branch_feature(model_name)
    if feature is not None:
        config.update(n_mels=int(m.n_mels), feature=feature, n_mfcc=int(m.n_mfcc))
    elif _width_reference(model_name) is not None:  # counts the reference's branch too
        config.update(n_mels=int(m.n_mels), n_mfcc=int(m.n_mfcc))
    return config


def _width_reference(model_name: str) -> str | None:
    """The model whose parameter count a width-matched control matches, else None."""

    return models.ARCHITECTURES[canonical_model_name(model_name)][1].get("width_of")


def _branch_feature(model_name: str) -> str | None:
    """The second branch's feature of a two-branch model (``"mel"``, ...), None for the baseline."""

    return models.ARCHITECTURES[canonical_model_name(model_name)][1].get("feature")


def build_training_model(model_name: str, settings: Settings, data: TrainingData,
                         target: str | None = None) -> torch.nn.Module:
    """Build the model with its input (and mel-branch) statistics from ``data``.

    The proposed model's branch statistics are computed with the model's own
    ``branch_features`` transform, so they are exactly what the branch normalises. With
    ``settings.train.init_weights`` the model starts from those weights
    (:func:`copy_initial_weights`; ``target``, default the first of
    ``settings.data.targets``, picks the model of an Open-Unmix folder).
    """

    config = model_config(model_name, settings, data)
    stats = dict(input_mean=data.input_mean, input_scale=data.input_std)
    if "feature" in config:
        # A probe model gives the branch transform; forking the generator keeps the real
        # model's initial weights independent of whether the statistics were cached.
        with torch.random.fork_rng(devices=[]):
            probe = models.build_model(model_name, **config)
        params = {k: config[k] for k in ("feature", "n_mels", "n_mfcc")}
        stats["mel_mean"], stats["mel_scale"] = data.branch_stats(probe.branch_features, **params)
    model = models.build_model(model_name, **config, **stats)
    if settings.train.init_weights:
        copy_initial_weights(model, settings.train.init_weights, target=target or settings.data.targets[0])
    return model


def copy_initial_weights(model: torch.nn.Module, source: str | os.PathLike, target: str = "vocals") -> list[str]:
    """Start ``model`` from trained weights (``train.init_weights``): every tensor of the
    source whose name and shape match ``model``'s is copied (the input and output scaling
    included, so a fine-tuned model keeps its source's normalisation).

    Parameters
    ----------
    model : nn.Module
        A freshly built model (:func:`build_training_model`).
    source : path
        A melunmix model file, or an Open-Unmix model folder or weights file
        (:func:`melunmix.models.umx_files.load_openunmix`; its ``target`` model).
    target : str
        Which model of an Open-Unmix folder.

    Returns
    -------
    list of str
        The names copied.

    Raises
    ------
    FileNotFoundError
        No such source.
    ValueError
        Not a model; a model of another target; another STFT or sample rate; a layer of
        the same name with another size (hidden size, channels, bandwidth); nothing shared.
    """

    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"train.init_weights {path}: no such file or folder")
    try:
        (theirs, trained), *_ = models_at(path, targets=None if path.is_file() else [target])
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"train.init_weights {err}") from None
    if theirs and theirs != target:
        raise ValueError(f"train.init_weights {path} is a {theirs!r} model, this run trains {target!r}; "
                         f"give the {target} model")
    for name in ("sample_rate", "n_fft", "n_hop"):
        ours, theirs = getattr(model, name, None), getattr(trained, name, None)
        if ours is not None and theirs is not None and float(ours) != float(theirs):
            raise ValueError(f"train.init_weights {path}: its {name} is {theirs:g}, this run's model has {ours:g}; "
                             "train at the weights' rate and STFT (data.sample_rate, stft.n_fft, stft.n_hop)")
    state, wanted = trained.state_dict(), model.state_dict()
    misfits = [f"{name} {tuple(value.shape)} (here {tuple(wanted[name].shape)})" for name, value in state.items()
               if name in wanted and wanted[name].shape != value.shape]
    if misfits:  # half a model copied would pass for a fine-tuned one
        raise ValueError(f"train.init_weights {path}: its layers have other sizes than this run's model: "
                         f"{', '.join(misfits[:3])}{' ...' if len(misfits) > 3 else ''}; set model.hidden_size, "
                         "the channels and stft.bandwidth as the weights were trained")
    copied = [name for name in state if name in wanted]
    if not copied:
        raise ValueError(f"train.init_weights {path}: none of its tensors is a layer of {type(model).__name__}")
    with torch.no_grad():
        for name in copied:
            wanted[name].copy_(state[name])
    logger.info("started from %s: %d of %d tensors copied", path, len(copied), len(wanted))
    return copied
