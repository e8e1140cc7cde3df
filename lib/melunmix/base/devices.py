"""Which torch device to run on: one rule for training, separation and scoring.

A profile's ``train.device``, ``separate(..., device=)``, ``evaluate_model(device=)`` and
the scoring workers all ask :func:`resolve_device`: nothing given (or ``"auto"``) means
CUDA when present, else the CPU; a CUDA device asked for on a machine without CUDA is
refused in one line instead of failing later inside torch.

Example
-------
>>> from melunmix.base.devices import resolve_device
>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import torch

#: What a profile writes for "CUDA when present, else CPU" (``train.device``).
AUTO = "auto"
#: Environment variable that overrides every profile's ``train.device`` (what
#: ``--device`` of ``train``, ``tune`` and ``reproduce`` sets for the notebooks' kernels).
DEVICE_ENV = "MELUNMIX_DEVICE"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device ``device`` names.

    Parameters
    ----------
    device : str, torch.device or None
        ``None`` or ``"auto"``: CUDA when present, else CPU. Anything else as torch reads
        it (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        A name torch does not know, or a CUDA device asked for without CUDA.
    """
    if device is None or str(device) == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(device)!r}: melunmix runs on 'cpu' or 'cuda[:N]' (or 'auto')")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use device 'auto' or 'cpu'"
        )
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return resolved


def requested_device(device: str | None = None) -> str | None:
    """The device asked for on the command line (``device``) or in ``$MELUNMIX_DEVICE``.

    Returns
    -------
    str or None
        ``device`` when given, else the environment variable's value, else None (the
        profile's ``train.device`` stands). A name :func:`resolve_device` refuses is
        refused here, in one line.
    """
    import os

    wanted = device if device else os.environ.get(DEVICE_ENV) or None
    if wanted is not None:
        try:
            resolve_device(wanted)
        except ValueError as err:
            origin = "--device" if device else f"${DEVICE_ENV}"
            raise ValueError(f"{origin}: {err}") from None
    return wanted


def device_overrides(device: str | None = None) -> dict | None:
    """Profile overrides for :func:`requested_device` (``{"train": {"device": ...}}``), or None."""
    wanted = requested_device(device)
    return None if wanted is None else {"train": {"device": str(wanted)}}
