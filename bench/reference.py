"""The reference implementation, Open-Unmix 1.3.0, as the benchmarks use it.

openunmix is a benchmark-only dependency, installed without its dependencies::

    .venv/bin/pip install --no-deps openunmix==1.3.0

Its package imports ``torchaudio`` at import time (``openunmix/utils.py``), but the three
modules used here, ``openunmix.model``, ``openunmix.filtering`` and
``openunmix.transforms`` with the ``torch`` STFT method, never call it. When torchaudio
is not installed an empty placeholder module is registered under that name for the
import only, and :func:`import_openunmix` says so on stdout.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from types import SimpleNamespace

import torch
from torch import nn

INSTALL_HINT = (
    "the reference implementation is missing: install it into the project venv with\n"
    "    .venv/bin/pip install --no-deps openunmix==1.3.0\n"
    "(--no-deps: it declares torchaudio, which the benchmarks do not need)"
)

_PLACEHOLDER_NOTE = (
    "note: torchaudio is not installed; registered an empty placeholder module 'torchaudio' "
    "for openunmix's import-time 'import torchaudio' only. Used from openunmix: model "
    "(OpenUnmix, Separator), filtering (wiener) and transforms (torch STFT/ISTFT, "
    "ComplexNorm), none of which calls torchaudio."
)


def import_openunmix() -> SimpleNamespace:
    """Import ``openunmix.model``, ``openunmix.filtering`` and ``openunmix.transforms``.

    Returns
    -------
    SimpleNamespace
        ``model``, ``filtering``, ``transforms`` modules and ``version``.

    Raises
    ------
    SystemExit
        With the install command when openunmix is not installed.
    """
    if importlib.util.find_spec("openunmix") is None:
        raise SystemExit(f"error: {INSTALL_HINT}")
    if "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        print(_PLACEHOLDER_NOTE, flush=True)
    from importlib import metadata

    from openunmix import filtering, model, transforms

    return SimpleNamespace(model=model, filtering=filtering, transforms=transforms,
                           version=metadata.version("openunmix"))


def copy_weights(ours: nn.Module, reference: nn.Module) -> None:
    """Give the reference model exactly our model's weights and batch-norm statistics.

    Our :class:`melunmix.models.networks.OpenUnmix` names its layers as Open-Unmix does (``fc1``,
    ``bn1``, ``lstm``, ``fc2``, ``bn2``, ``fc3``, ``bn3``, ``input_mean``, ``input_scale``,
    ``output_scale``, ``output_mean``), so the state dicts map one to one; a missing or
    extra name or a shape mismatch raises instead of silently benchmarking different models.
    """
    ours_state = ours.state_dict()
    ref_state = reference.state_dict()
    missing = sorted(set(ref_state) - set(ours_state))
    extra = sorted(set(ours_state) - set(ref_state))
    if missing or extra:
        raise ValueError(f"state dicts differ: reference-only {missing}, ours-only {extra}")
    for name, value in ours_state.items():
        if value.shape != ref_state[name].shape:
            raise ValueError(f"{name}: our shape {tuple(value.shape)} vs reference "
                             f"{tuple(ref_state[name].shape)}")
    reference.load_state_dict(ours_state)


def reference_model(oum, ours: nn.Module) -> nn.Module:
    """The reference ``OpenUnmix`` with our model's sizes and weights."""
    ref = oum.model.OpenUnmix(
        nb_bins=ours.nb_output_bins, nb_channels=ours.nb_channels, hidden_size=ours.hidden_size,
        nb_layers=ours.lstm.num_layers, unidirectional=not ours.lstm.bidirectional,
        max_bin=ours.nb_bins,
    )
    copy_weights(ours, ref)
    return ref


@torch.no_grad()
def check_same_outputs(ours: nn.Module, ref: nn.Module, X: torch.Tensor) -> float:
    """Largest relative difference of the two models' outputs on ``X`` in eval mode.

    Evidence that the benchmark compares the same computation; restores training mode.
    """
    modes = ours.training, ref.training
    ours.eval()
    ref.eval()
    a, b = ours(X), ref(X)
    ours.train(modes[0])
    ref.train(modes[1])
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
