"""melunmix.training.run_files: what a checkpoint holds."""

from __future__ import annotations

import pytest
import torch

from melunmix.training.run_files import CHECKPOINT_KEYS

from train_support import make_settings

# One torch thread: bit-exact comparisons between runs and with child processes.
pytestmark = pytest.mark.usefixtures("one_thread")


def test_checkpoint_holds_the_whole_training_state(reference_run):
    state = torch.load(reference_run.checkpoint, weights_only=True)  # plain types and tensors only
    settings = make_settings()
    assert state["epoch"] == 3 and set(state) == set(CHECKPOINT_KEYS)  # every entry is read on resume
    assert state["scheduler"]["factor"] == settings.train.lr_decay_gamma
    assert state["scheduler"]["patience"] == settings.train.lr_decay_patience
    assert state["scheduler"]["cooldown"] == settings.train.lr_decay_cooldown
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == settings.train.weight_decay
    assert state["early_stopping"] == {"best": min(reference_run.history["valid_loss"]),
                                       "best_epoch": reference_run.best_epoch, "nb_bad_epochs": 0}
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert state["history"]["train_loss"] == reference_run.history["train_loss"]
