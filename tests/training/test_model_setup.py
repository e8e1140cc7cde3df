"""melunmix.training.model_setup: a start from trained weights (melunmix or Open-Unmix files)."""

from __future__ import annotations

import json

import pytest
import torch

from melunmix.models import networks as models
from melunmix.training.model_setup import build_training_model
from melunmix.training.train import train

from train_support import N_FFT, N_HOP, SAMPLE_RATE, make_settings

# One torch thread: bit-exact comparisons between runs and with child processes.
pytestmark = pytest.mark.usefixtures("one_thread")


def test_init_weights_fine_tunes_the_baseline_and_starts_a_two_branch_models_shared_layers(
        data, reference_run, tmp_path):
    """train.init_weights: a melunmix file or Open-Unmix's own files (a train.py folder)."""
    trained = models.load_model(reference_run.out_dir / "vocals.pth")
    state = trained.state_dict()
    # Open-Unmix's train.py folder holding the same weights (its layer names are ours)
    umx = tmp_path / "umx"
    umx.mkdir()
    torch.save(state, umx / "vocals.pth")
    (umx / "vocals.json").write_text(json.dumps({"args": {"nfft": N_FFT, "nhop": N_HOP, "hidden_size": 16,
                                                          "nb_channels": 2}}))
    (umx / "separator.json").write_text(json.dumps({"sample_rate": SAMPLE_RATE, "nfft": N_FFT, "nhop": N_HOP,
                                                    "nb_channels": 2}))
    # a model file, the run's folder (its vocals.pth, not the checkpoint or the half-training weights), Open-Unmix's
    for source in (reference_run.out_dir / "vocals.pth", reference_run.out_dir, umx):
        settings = make_settings(train={"init_weights": str(source)})
        baseline = build_training_model("openunmix", settings, data)
        for name, value in baseline.state_dict().items():
            assert torch.equal(value, state[name]), name  # everything, the normalisation included
        torch.manual_seed(3)
        proposed = build_training_model("melunmix", settings, data).state_dict()
        torch.manual_seed(3)
        fresh = build_training_model("melunmix", make_settings(), data).state_dict()
        assert torch.equal(proposed["lstm.weight_ih_l0"], state["lstm.weight_ih_l0"])
        assert torch.equal(proposed["fc3.weight"], state["fc3.weight"])
        assert torch.equal(proposed["lstm_mel.weight_ih_l0"], fresh["lstm_mel.weight_ih_l0"])  # branch from scratch
    # fine-tuning runs, and starts from the source: after one epoch it is below the source's own first epoch
    tuned = train("openunmix", make_settings(train={"init_weights": str(umx), "epochs": 1}), data, tmp_path / "ft")
    assert tuned.history["valid_loss"][0] < reference_run.history["valid_loss"][0]
    # refused in one line: another target's model, layers of other sizes, a file that is no model
    drums = umx / "drums-1a2b3c4d.pth"  # beside separator.json, as on Zenodo with a JSON
    torch.save(state, drums)
    with pytest.raises(ValueError, match="is a 'drums' model, this run trains 'vocals'"):
        build_training_model("openunmix", make_settings(train={"init_weights": str(drums)}), data)
    with pytest.raises(ValueError, match=r"other sizes than this run's model: fc1.weight \(16, "):
        build_training_model("openunmix", make_settings(model={"hidden_size": 24, "nb_layers": 2, "n_mels": 16},
                                                        train={"init_weights": str(umx)}), data)
    junk = tmp_path / "junk.pth"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="junk.pth: not a model file"):
        build_training_model("openunmix", make_settings(train={"init_weights": str(junk)}), data)
    (umx / "separator.json").write_text(json.dumps({"sample_rate": 44100, "nfft": N_FFT, "nhop": N_HOP}))
    with pytest.raises(ValueError, match="its sample_rate is 44100, this run's model has 16000"):
        build_training_model("openunmix", make_settings(train={"init_weights": str(umx)}), data)
