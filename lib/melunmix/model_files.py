"""Which models a path holds: the one reader behind ``separate --model`` and ``train.init_weights``.

A path is any of

- a melunmix model file (:func:`melunmix.models.save_model`, what training writes);
- a folder of them (a training run's folder: ``<target>.pth`` is preferred over other files
  of the same target, e.g. the half-training ``<target>_half.pth``);
- an Open-Unmix model folder or weights file (:func:`melunmix.umx_files.load_openunmix`).

Every file is read once, with ``torch.load(weights_only=True)``: tensors only, no code runs.

Example
-------
>>> from melunmix.model_files import models_at
>>> models_at("results/demo/models/openunmix")  # doctest: +SKIP
[('vocals', OpenUnmix(...))]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from torch import nn

__all__ = ["MODEL_KINDS", "models_at", "model_fingerprint"]

#: What a model path may be, for error messages.
MODEL_KINDS = ("a melunmix model file (from training), a folder of them, an Open-Unmix model folder "
               "(<target>.json + <target>.pth) or an Open-Unmix weights file (e.g. vocals-b62c91ce.pth)")


def _target_in(payload: dict) -> Optional[str]:
    return (payload.get("extra") or {}).get("target") or None


def _read_or_none(path: Path) -> Any:
    from .models import UnreadableModelFile, read_torch_file

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
        saved without one (:func:`melunmix.models.save_model` without ``target``).

    Raises
    ------
    FileNotFoundError
        No such path; a folder without models (or without a chosen target).
    ValueError
        A file that is no model (one line: never torch's advice to load unsafely), or
        Open-Unmix files that contradict each other.
    """
    from .models import UnreadableModelFile, is_model_payload, model_from_payload, read_torch_file
    from .umx_files import load_openunmix

    path = Path(path).expanduser()
    if path.is_dir():
        ours: dict[Optional[str], tuple[Path, dict]] = {}
        for file in sorted([*path.glob("*.pth"), *path.glob("*.pt")]):
            payload = _read_or_none(file)
            if not is_model_payload(payload):
                continue
            target = _target_in(payload)
            if target not in ours or file.stem == target:
                ours[target] = (file, payload)
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


def model_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of what a model path holds: the file's bytes, or of a folder every model and
    JSON file's name and bytes (what :func:`models_at` may read), so scores made with other
    weights are told apart."""
    import hashlib

    from .files import sha256_file

    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".json") and p.is_file()):
        digest.update(f"{file.name}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()
