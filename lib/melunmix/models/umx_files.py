"""Open-Unmix's own model files, read as melunmix baselines.

Open-Unmix (``umx``) and melunmix's baseline have the same layers under the same names
(``fc1``, ``bn1``, ``lstm``, ``fc2``, ``bn2``, ``fc3``, ``bn3``, ``input_mean``,
``input_scale``, ``output_scale``, ``output_mean``), so a model Open-Unmix trained or
published is a :class:`melunmix.models.networks.OpenUnmix` with its weights. Two forms are read:

- **a model folder** as Open-Unmix's ``train.py`` writes it: ``<target>.json`` (its
  ``args``: ``nfft``, ``nhop``, ``hidden_size``, ``nb_channels``...), ``<target>.pth`` (the
  state dict; ``<target>-<hash>.pth`` as on Zenodo is taken too) and, when there,
  ``separator.json`` (``sample_rate``, ``nfft``, ``nhop``, ``nb_channels``), as
  ``openunmix.utils.load_target_models`` reads them;
- **a bare weights file** (a state dict only), e.g. ``vocals-b62c91ce.pth`` of umxhq from
  Zenodo: the architecture is read from the tensors' shapes (hidden size, layers,
  channels, bins, bandwidth crop, uni- or bidirectional); the STFT hop and the sample rate
  are not in the tensors and are taken from a ``separator.json`` or ``<target>.json``
  beside the file, else from Open-Unmix's published configurations (4096-point STFT:
  44.1 kHz, hop 1024, as umx, umxhq and umxl; 1024-point: 16 kHz, hop 512, as umxse).

Every file is read with ``torch.load(weights_only=True)``: tensors only, no code runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .networks import OpenUnmix, UnreadableModelFile, read_torch_file

__all__ = ["load_openunmix", "is_openunmix_state", "published_configuration"]

logger = logging.getLogger(__name__)

#: The tensors every Open-Unmix state dict holds.
REQUIRED_KEYS = ("fc1.weight", "fc3.weight", "input_mean", "output_mean", "lstm.weight_ih_l0")
#: Names older Open-Unmix files carry that are not weights (their STFT window, rate).
IGNORED_PREFIXES = ("stft.", "transform.", "sample_rate")

#: Open-Unmix's published configurations by STFT size: sample rate and hop.
PUBLISHED = {4096: {"sample_rate": 44100.0, "n_hop": 1024}, 1024: {"sample_rate": 16000.0, "n_hop": 512}}


def published_configuration(n_fft: int) -> Optional[dict]:
    """Sample rate and hop of Open-Unmix's published models with an ``n_fft``-point STFT."""
    return dict(PUBLISHED[n_fft]) if n_fft in PUBLISHED else None


def is_openunmix_state(state: Any) -> bool:
    """Whether ``state`` is an Open-Unmix state dict (the tensors of its layers)."""
    return isinstance(state, Mapping) and all(key in state for key in REQUIRED_KEYS) \
        and all(isinstance(state[key], torch.Tensor) for key in REQUIRED_KEYS)


def _read_state(path: Path, payload: Any = None) -> dict:
    """The Open-Unmix state dict of ``path`` (``payload``: the file, already loaded)."""

    if payload is None:
        try:
            payload = read_torch_file(path)
        except UnreadableModelFile as err:
            raise ValueError(f"cannot read {path} as Open-Unmix weights: {err.reason}") from None
    state = payload
    if isinstance(state, Mapping) and "state_dict" in state and is_openunmix_state(state["state_dict"]):
        state = state["state_dict"]  # Open-Unmix's <target>.chkpnt
    if not is_openunmix_state(state):
        raise ValueError(f"{path} is not an Open-Unmix model: it lacks {list(REQUIRED_KEYS)}; pass a melunmix "
                         "model file, an Open-Unmix model folder or an Open-Unmix weights file")
    return {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}


def architecture(state: Mapping[str, torch.Tensor]) -> dict:
    """The constructor arguments of :class:`melunmix.models.networks.OpenUnmix` that ``state`` was
    trained with, read from its tensors' shapes (all but the sample rate and hop)."""
    hidden, fc1_in = state["fc1.weight"].shape
    nb_bins = int(state["output_mean"].shape[0])
    max_bin = int(state["input_mean"].shape[0])
    nb_channels = int(state["fc3.weight"].shape[0]) // nb_bins
    if nb_channels * nb_bins != state["fc3.weight"].shape[0] or fc1_in != max_bin * nb_channels:
        raise ValueError("the weights' shapes do not fit one Open-Unmix model (fc1, fc3, input_mean and "
                         "output_mean disagree on bins and channels)")
    layers = sorted(int(m.group(1)) for key in state if (m := re.fullmatch(r"lstm\.weight_ih_l(\d+)", key)))
    return dict(nb_bins=nb_bins, nb_channels=nb_channels, hidden_size=int(hidden), nb_layers=len(layers),
                unidirectional="lstm.weight_ih_l0_reverse" not in state, max_bin=max_bin,
                n_fft=2 * (nb_bins - 1))


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path} ({err}); it should be the JSON Open-Unmix's train.py writes") from err
    if not isinstance(content, dict):
        raise ValueError(f"{path} should hold a JSON object, as Open-Unmix's train.py writes it")
    return content


def _stft_and_rate(folder: Path, target: str, n_fft: int, source: Path) -> dict:
    """Sample rate and hop: separator.json, else <target>.json's args, else the published ones."""
    found: dict[str, Any] = {}
    separator = folder / "separator.json"
    if separator.is_file():
        conf = _read_json(separator)
        found = {"sample_rate": conf.get("sample_rate"), "n_hop": conf.get("nhop"), "n_fft": conf.get("nfft")}
    described = folder / f"{target}.json"
    if described.is_file():
        args = _read_json(described).get("args") or {}
        for name, key in (("n_hop", "nhop"), ("n_fft", "nfft"), ("sample_rate", "sample_rate")):
            if found.get(name) is None:
                found[name] = args.get(key)
    if found.get("n_fft") is not None and int(found["n_fft"]) != n_fft:
        raise ValueError(f"{source}: its weights are for a {n_fft}-point STFT but the JSON beside them says "
                         f"nfft {found['n_fft']}; the files do not belong together")
    published = published_configuration(n_fft)
    missing = [name for name in ("sample_rate", "n_hop") if found.get(name) is None]
    if missing:
        if published is None:
            raise ValueError(f"{source}: no separator.json or {target}.json beside it says the {missing}, and "
                             f"a {n_fft}-point STFT is none of Open-Unmix's published models'; add the "
                             "separator.json Open-Unmix's train.py writes")
        logger.info("%s: %s not recorded beside the weights; taking Open-Unmix's published %d-point "
                    "configuration (%s)", source, " and ".join(missing), n_fft, published)
        for name in missing:
            found[name] = published[name]
    return {"sample_rate": float(found["sample_rate"]), "n_hop": int(found["n_hop"])}


def _build(state: dict, folder: Path, target: str, source: Path):

    arch = architecture(state)
    model = OpenUnmix(**arch, **_stft_and_rate(folder, target, arch["n_fft"], source))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{source}: the weights do not fit Open-Unmix's layers (missing {sorted(missing)}, "
                         f"unexpected {sorted(unexpected)})")
    return model.eval()


def weights_file(folder: Path, target: str) -> Optional[Path]:
    """A folder's weights of ``target``: ``<target>.pth``, else the first ``<target>-<hash>.pth``."""
    exact = folder / f"{target}.pth"
    if exact.is_file():
        return exact
    hashed = sorted(folder.glob(f"{target}-*.pth"))
    return hashed[0] if hashed else None


def _target_of(path: Path) -> str:
    """``vocals.pth`` and ``vocals-b62c91ce.pth`` are the vocals model."""
    return re.sub(r"-[0-9a-f]{6,}$", "", path.stem)


def load_openunmix(path: str | os.PathLike, targets: Optional[list[str]] = None, payload: Any = None) -> dict:
    """Open-Unmix models as :class:`melunmix.models.networks.OpenUnmix`, by target.

    Parameters
    ----------
    path : path
        An Open-Unmix model folder (``<target>.json`` + ``<target>*.pth`` per target, as its
        ``train.py`` writes) or one weights file (``<target>*.pth``; the target is the file
        name before its hash).
    targets : list of str, optional
        The targets to load from a folder; default every target it holds.
    payload : optional
        The weights file, already loaded (``torch.load(weights_only=True)``), so that it is
        not read twice (:mod:`melunmix.models.model_files`).

    Returns
    -------
    dict of str to OpenUnmix
        In eval mode, on the CPU.

    Raises
    ------
    FileNotFoundError
        No such path, or a folder without Open-Unmix's files (or without a chosen target).
    ValueError
        Files that are not Open-Unmix's, or that contradict each other (named in the message).
    """
    path = Path(path)
    if path.is_file():
        target = _target_of(path)
        if targets is not None and target not in targets:
            raise ValueError(f"{path} is the {target!r} model, not one of {targets}")
        return {target: _build(_read_state(path, payload), path.parent, target, path)}
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    found = sorted({p.stem for p in path.glob("*.json") if p.name != "separator.json"
                    and weights_file(path, p.stem) is not None})
    if not found:
        found = sorted({_target_of(p) for p in path.glob("*.pth")})
    if targets is not None:
        absent = [t for t in targets if t not in found]
        if absent:
            raise FileNotFoundError(f"{path} holds no model for {absent} (it has {found or 'none'})")
        found = list(targets)
    if not found:
        raise FileNotFoundError(f"{path} holds no Open-Unmix model (<target>.json and <target>.pth, as "
                                "Open-Unmix's train.py writes them) and no melunmix model file")
    models = {}
    for target in found:
        weights = weights_file(path, target)
        if weights is None:
            raise FileNotFoundError(f"{path}: {target}.json has no {target}.pth (or {target}-<hash>.pth) beside it")
        models[target] = _build(_read_state(weights), path, target, weights)
    return models
