"""Which torch device to run on: one rule for training, separation and scoring.

A profile's ``train.device``, ``separate(..., device=)``, ``evaluate_model(device=)`` and
the scoring workers all ask :func:`resolve_device`: nothing given (or ``"auto"``) means
CUDA when present, else the CPU; a CUDA device asked for on a machine without CUDA is
refused in one line instead of failing later inside torch.

Example
-------
>>> from melunmix.devices import resolve_device
>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import torch

#: What a profile writes for "CUDA when present, else CPU" (``train.device``).
AUTO = "auto"


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
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use device 'auto' or 'cpu'"
        )
    return resolved
