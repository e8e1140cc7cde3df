"""Which models a path holds: the one reader behind ``separate --model`` and ``train.init_weights``.

A path is any of

- a melunmix model file (:func:`melunmix.models.networks.save_model`, what training writes);
- a folder of them (a training run's folder: ``<target>.pth`` is preferred over other files
  of the same target, e.g. the half-training ``<target>_half.pth``);
- an Open-Unmix model folder or weights file (:func:`melunmix.models.umx_files.load_openunmix`).

Every file is read with ``torch.load(weights_only=True)``: tensors only, no code runs. A
model file is read once; in a folder of Open-Unmix's files each weights file is read twice
(once to find it is not melunmix's), and a run's checkpoint never.

Example
-------
>>> from melunmix.models.model_files import models_at
>>> models_at("results/demo/models/openunmix")  # doctest: +SKIP
[('vocals', OpenUnmix(...))]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from torch import nn

from ..base.files import sha256_file
from .networks import UnreadableModelFile, is_model_payload, model_from_payload, read_torch_file
from ..base.names import CHECKPOINT_NAME
from .umx_files import load_openunmix, weights_file

__all__ = ["MODEL_KINDS", "models_at", "model_fingerprint"]

#: What a model path may be, for error messages.
MODEL_KINDS = ("a melunmix model file (from training), a folder of them, an Open-Unmix model folder "
               "(<target>.json + <target>.pth) or an Open-Unmix weights file (e.g. vocals-b62c91ce.pth)")


def _candidate_files(folder: Path) -> list[Path]:
    """A folder's possible model files: ``*.pth`` and ``*.pt`` but a training run's
    checkpoint (:data:`melunmix.base.names.CHECKPOINT_NAME`, large and never a model)."""

    return sorted(p for p in [*folder.glob("*.pth"), *folder.glob("*.pt")] if p.name != CHECKPOINT_NAME)


def _target_in(payload: dict) -> Optional[str]:
    return (payload.get("extra") or {}).get("target") or None


def _read_or_none(path: Path) -> Any:

    try:
        return read_torch_file(path)
    except UnreadableModelFile:
        return None  # not ours: an Open-Unmix file, or junk the Open-Unmix reader names


def models_at(path: str | os.PathLike, targets: Optional[list[str]] = None,
              map_location: Any = "cpu") -> list[tuple[Optional[str], nn.Module]]:
    """Every model ``path`` holds, with its target.

    Parameters
    ----------
    path : path
        A melunmix model file, a folder of them, an Open-Unmix model folder or weights file.
    targets : list of str, optional
        From a folder, only these targets (refused when one is missing); a file's model must
        be one of them. Default: every model.
    map_location : str or torch.device
        Where the weights go.

    Returns
    -------
    list of (str or None, nn.Module)
        ``(target, model)`` in eval mode; the target is None only for a melunmix model file
        saved without one (:func:`melunmix.models.networks.save_model` without ``target``).

    Raises
    ------
    FileNotFoundError
        No such path; a folder without models (or without a chosen target).
    ValueError
        A file that is no model (one line: never torch's advice to load unsafely), or
        Open-Unmix files that contradict each other.
    """

    path = Path(path).expanduser()
    if path.is_dir():
        ours: dict[Optional[str], tuple[Path, dict]] = {}
        unreadable = []
        for file in _candidate_files(path):
            payload = _read_or_none(file)
            if payload is None:
                unreadable.append(file)
            if not is_model_payload(payload):
                continue
            target = _target_in(payload)
            if target is None:
                raise ValueError(f"model file {file} does not name its target, so a folder cannot say which "
                                 "model it is; save it with melunmix.models.networks.save_model(model, path, target='vocals')")
            if target not in ours or file.stem == target:
                ours[target] = (file, payload)
        # <target>.pth that cannot be read is an error, never replaced by e.g. <target>_half.pth
        broken = [file for file in unreadable if file.stem in ours and ours[file.stem][0] != file]
        if broken:
            raise ValueError(f"{broken[0]} cannot be read (corrupt, or not a torch file); the folder's other "
                             f"{broken[0].stem} model is not taken in its place: restore or remove the file")
        if not ours:
            found = load_openunmix(path, targets)
            return [(target, model.to(map_location)) for target, model in found.items()]
        if targets is not None:
            absent = [t for t in targets if t not in ours]
            if absent:
                raise FileNotFoundError(f"{path} holds no model for {absent} (it has "
                                        f"{sorted(str(t) for t in ours)})")
            ours = {t: ours[t] for t in targets}
        return [(target, model_from_payload(payload, file, map_location)) for target, (file, payload) in ours.items()]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    try:
        payload = read_torch_file(path)
    except UnreadableModelFile as err:
        raise ValueError(f"{err}; a model is {MODEL_KINDS}") from None
    if is_model_payload(payload):
        target = _target_in(payload)
        if targets is not None and target is not None and target not in targets:
            raise ValueError(f"{path} is a {target!r} model, not one of {targets}")
        return [(target, model_from_payload(payload, path, map_location))]
    try:
        found = load_openunmix(path, targets, payload=payload)
    except ValueError as err:
        raise ValueError(f"{err}. A model is {MODEL_KINDS}") from None
    return [(target, model.to(map_location)) for target, model in found.items()]


def model_fingerprint(path: str | os.PathLike, target: str = "vocals") -> str:
    """SHA-256 of the files :func:`models_at` reads for ``target``: the model file, or in a
    folder the ``target`` model's file (and Open-Unmix's ``<target>.json`` and
    ``separator.json`` beside it), so scores made with other weights are told apart and
    nothing else in the folder (a checkpoint, other targets) matters."""
    import hashlib


    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    files = []
    for file in _candidate_files(path):
        payload = _read_or_none(file)
        if is_model_payload(payload) and _target_in(payload) == target:
            files = [file] if file.stem == target or not files else files
    if not files:  # an Open-Unmix folder
        weights = weights_file(path, target)
        files = [p for p in (weights, path / f"{target}.json", path / "separator.json") if p is not None and p.is_file()]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()
