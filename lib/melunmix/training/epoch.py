"""One epoch's passes: the training pass, the validation loss, the validation SDR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..dsp.bsseval import score_track
from ..base.config import Settings
from .distributed import all_reduce_sum, current
from ..dsp.features import magnitude
from ..separation.separate import separate
from ..scoring.track_audio import load_track


def _spectrograms(stft, mixture: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:

    return magnitude(stft(mixture)), magnitude(stft(target))


def train_epoch(model, loader, stft, optimizer, device, bar_desc: str, progress: bool,
                 batch_sizes: list[int] | None = None) -> tuple[float, str | None]:
    """One pass over ``loader``; returns the mean loss and, if it diverged, why.

    With several ranks (``batch_sizes``: the global batch sizes, in order) ``loader``
    yields this rank's share of each global batch; its loss is weighted by the share so
    that DDP's averaged gradient is the global batch's, and the value recorded is the
    global batch's mean loss, the same on every rank.
    """

    world_size = current().world_size if batch_sizes is not None else 1
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=bar_desc, leave=False, disable=not progress, unit="batch")
    for index, (mixture, target) in enumerate(bar, 1):
        mixture = mixture.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        X, Y = _spectrograms(stft, mixture, target)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(X), Y)
        nb_items = mixture.shape[0]
        if world_size > 1:
            share = nb_items / batch_sizes[index - 1]
            value = all_reduce_sum(loss.detach() * share).item()  # every rank stops together
            loss = loss * (share * world_size)  # DDP divides the summed gradients by world_size
            nb_items = batch_sizes[index - 1]
        else:
            value = loss.item()
        if not math.isfinite(value):
            bar.close()
            return value, f"the training loss is {value} at batch {index}"
        loss.backward()
        optimizer.step()
        total += value * nb_items
        count += nb_items
        bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
    bar.close()
    if count == 0:
        raise ValueError("the training dataset yielded no items; check settings.data.samples_per_track")
    return total / count, None


@torch.no_grad()
def validate(model, dataset, stft, device) -> float:
    """Mean over validation items (batch 1) of the MSE of magnitude spectrograms."""
    model.eval()
    losses = []
    for index in range(len(dataset)):
        mixture, target = dataset[index]
        X, Y = _spectrograms(stft, mixture.unsqueeze(0).to(device), target.unsqueeze(0).to(device))
        losses.append(F.mse_loss(model(X), Y).item())
    if not losses:
        raise ValueError("the validation dataset is empty; the musdb validation split has no tracks")
    return float(np.mean(losses))


def validation_sdr(model: torch.nn.Module, tracks, target: str, settings: Settings,
                   device: torch.device) -> float:
    """Median over ``tracks`` of the median vocals SDR (dB) of ``model``'s separation.

    The full songs are separated as the evaluation does (Wiener settings of
    ``settings.evaluate``) and scored with BSS Eval v4 (:mod:`melunmix.dsp.bsseval`, museval's
    numbers), vocals and accompaniment as a pair; the poster's "more epochs" question then
    reads in dB. The model is left in eval mode; no random state is used.
    """

    ev = settings.evaluate
    medians = []
    for track in tracks:
        audio = load_track(track)
        out = separate(np.ascontiguousarray(audio.mixture.T, dtype=np.float32), audio.rate, {target: model},
                       niter=ev.niter, softmask=ev.softmask, residual=True, wiener_win_len=ev.wiener_win_len,
                       device=device)
        estimates = {name: np.asarray(out[name], dtype=np.float64).T for name in ("vocals", "accompaniment")}
        scores = score_track(audio.references, estimates, audio.rate, ev.win, ev.hop)
        medians.append(np.nanmedian(scores["vocals"]["SDR"]))
    return float(np.nanmedian(medians)) if medians else math.nan


@dataclass
class EpochOutcome:
    """One epoch as :meth:`Trainer.run_epoch` saw it.

    Attributes
    ----------
    epoch : int
        1-based.
    train_loss, valid_loss : float
        Mean training loss; validation loss (NaN when the epoch diverged in training).
    lr : float
        Learning rate the epoch trained with.
    seconds : float
        Wall time of the epoch.
    sdr : float
        Median validation vocals SDR in dB (NaN when not computed this epoch).
    diverged : str or None
        Why the epoch diverged (a NaN/inf loss), or None.
    improved : bool
        The validation loss is the best so far (the weights file is this epoch's).
    message : str or None
        The warning of a diverged run (set by :meth:`Trainer.decide_stop`).
    """

    epoch: int
    train_loss: float
    valid_loss: float
    lr: float
    seconds: float
    sdr: float = math.nan
    diverged: str | None = None
    improved: bool = False
    message: str | None = None
