"""melunmix.training.schedule: early stopping and the plateau schedule."""

from __future__ import annotations

import pytest
import torch

from melunmix.training.schedule import EarlyStopping

# One torch thread: bit-exact comparisons between runs and with child processes.
pytestmark = pytest.mark.usefixtures("one_thread")


def test_early_stopping_counts_epochs_without_strict_improvement():
    stopper = EarlyStopping(patience=2)
    improved = [stopper.step(loss, epoch) for epoch, loss in enumerate([3.0, 2.0, 2.0, 2.5], 1)]
    assert improved == [True, True, False, False] and stopper.should_stop
    assert (stopper.best, stopper.best_epoch, stopper.nb_bad_epochs) == (2.0, 2, 2)
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(stopper.state_dict())
    assert restored.step(1.0, 5) and not restored.should_stop
    with pytest.raises(ValueError, match="patience must be at least 1"):
        EarlyStopping(0)


def test_plateau_schedule_decays_after_its_patience_and_restores():
    from melunmix.base.config import TrainSettings
    from melunmix.training.schedule import make_scheduler, step_scheduler

    def fresh(hp):
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=hp.lr)
        return optimizer, make_scheduler(optimizer, hp)

    hp = TrainSettings(lr=1.0, lr_decay_gamma=0.5, lr_decay_patience=1, lr_decay_cooldown=0)
    optimizer, scheduler = fresh(hp)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    lrs = []
    for loss in (1.0, 1.0, 1.0, 0.5, 0.5, 0.5):  # two epochs without improvement -> decay
        optimizer.step()
        step_scheduler(scheduler, loss)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    restored_optimizer, restored = fresh(hp)
    restored_optimizer.load_state_dict(optimizer.state_dict())
    restored.load_state_dict(scheduler.state_dict())
    for opt, sched in ((restored_optimizer, restored), (optimizer, scheduler)):
        opt.step()
        step_scheduler(sched, 0.5)
    assert restored_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]

    # The exponential schedule ignores the loss.
    optimizer, scheduler = fresh(TrainSettings(lr=1.0, lr_schedule="exponential", lr_decay_gamma=0.5))
    for loss in (3.0, 1.0):
        optimizer.step()
        step_scheduler(scheduler, loss)
    assert optimizer.param_groups[0]["lr"] == 0.25
