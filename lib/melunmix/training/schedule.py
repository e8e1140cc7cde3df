"""When the learning rate falls and training stops: learning-rate schedules and early stopping."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..base.config import TrainSettings


class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` epochs.

    An epoch improves when its loss is strictly below the best so far (Open-Unmix's rule
    with ``min_delta = 0``).
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f"early-stopping patience must be at least 1 epoch, got {patience}")
        self.patience = int(patience)
        self.best = math.inf
        self.best_epoch: int | None = None
        self.nb_bad_epochs = 0

    def step(self, loss: float, epoch: int) -> bool:
        """Record an epoch's validation loss; True when it is the best so far."""
        if loss < self.best:
            self.best, self.best_epoch, self.nb_bad_epochs = float(loss), int(epoch), 0
            return True
        self.nb_bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.nb_bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "nb_bad_epochs": self.nb_bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.nb_bad_epochs = int(state["nb_bad_epochs"])


def make_scheduler(optimizer: torch.optim.Optimizer, hp: TrainSettings):
    """The learning-rate schedule ``hp.lr_schedule`` on ``optimizer``.

    ``"plateau"``: Open-Unmix's ``ReduceLROnPlateau`` (factor ``lr_decay_gamma``, patience
    ``lr_decay_patience``, cooldown ``lr_decay_cooldown``) on the validation loss.
    ``"exponential"``: ``ExponentialLR(gamma=lr_decay_gamma)``, the rate multiplied by
    ``lr_decay_gamma`` after every epoch. Step it once per epoch with :func:`step_scheduler`;
    both keep their whole state in ``state_dict()`` (saved in the checkpoint).
    """
    if hp.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=hp.lr_decay_gamma, patience=hp.lr_decay_patience,
            cooldown=hp.lr_decay_cooldown,
        )
    if hp.lr_schedule == "exponential":
        if not hp.lr_decay_gamma > 0:
            raise ValueError(f"train.lr_decay_gamma must be a positive factor per epoch, got {hp.lr_decay_gamma}")
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=hp.lr_decay_gamma)
    raise ValueError(f"train.lr_schedule must be 'plateau' or 'exponential', got {hp.lr_schedule!r}")


def step_scheduler(scheduler, valid_loss: float) -> None:
    """End-of-epoch step: the plateau schedule looks at the validation loss, the exponential one does not."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(valid_loss)
    else:
        scheduler.step()
