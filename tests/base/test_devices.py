"""The default device: one rule for training, separation and scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melunmix.training import distributed
from melunmix.scoring import evaluate
from melunmix.base.devices import resolve_device
from melunmix.models.networks import build_model, save_model
from melunmix.separation.separate import separate

HAS_CUDA = torch.cuda.is_available()


def test_nothing_or_auto_is_cuda_when_present_else_cpu():
    expected = "cuda" if HAS_CUDA else "cpu"
    assert resolve_device(None).type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    assert distributed.backend_for("auto") == ("nccl" if HAS_CUDA else "gloo")
    assert distributed.backend_for("cpu") == "gloo"


def test_a_name_torch_does_not_know_is_one_line():
    with pytest.raises(ValueError, match=r"^device 'gpu' is not a torch device; use 'auto', 'cpu' or 'cuda\[:N\]'$"):
        resolve_device("gpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_refused_in_one_line_by_every_entry_point():
    message = r"^device 'cuda(:1)?' was asked for but CUDA is not available here; use device 'auto' or 'cpu'$"
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=message):
            resolve_device(name)
    with pytest.raises(ValueError, match=message):
        distributed.backend_for("cuda")
    model = build_model("openunmix", nb_bins=65, nb_channels=1, hidden_size=8, nb_layers=1, sample_rate=8000.0,
                        n_fft=128, n_hop=64)
    with pytest.raises(ValueError, match=message):
        separate(np.zeros((1, 800), dtype=np.float32), 8000, {"vocals": model}, device="cuda")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_is_taken_when_asked_for():
    assert resolve_device("cuda").type == "cuda"


def test_scoring_loads_models_where_separation_runs(tmp_path):
    """The scoring workers' models land on the device separate() picks by default."""
    model = build_model("openunmix", nb_bins=65, nb_channels=1, hidden_size=8, nb_layers=1, sample_rate=8000.0,
                        n_fft=128, n_hop=64)
    path = save_model(model, tmp_path / "vocals.pth", target="vocals")
    loaded = evaluate._loaded_models(evaluate.ModelSeparation((("vocals", str(path)),)))
    assert next(loaded["vocals"].parameters()).device.type == resolve_device(None).type


def test_the_device_asked_for_comes_from_the_flag_else_the_environment(monkeypatch):
    from melunmix.base.devices import DEVICE_ENV, device_overrides, requested_device

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert requested_device(None) is None and device_overrides(None) is None  # the profile's stands
    assert device_overrides("cpu") == {"train": {"device": "cpu"}}
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert requested_device(None) == "cpu"
    assert requested_device("auto") == "auto"  # the flag wins over the environment
    with pytest.raises(ValueError, match=r"^--device: device 'gpu' is not a torch device"):
        requested_device("gpu")
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match=r"^\$MELUNMIX_DEVICE: device 'tpu' is not a torch device"):
        requested_device(None)


def test_open_run_and_the_commands_take_the_device(tmp_path, monkeypatch, capsys):
    from melunmix.commands import cli
    from melunmix.study import run_setup
    from melunmix.base.devices import DEVICE_ENV

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert run_setup.open_run("smoke", results_dir=tmp_path).settings.train.device == "auto"
    assert run_setup.open_run("smoke", results_dir=tmp_path, device="cpu").settings.train.device == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "cpu")  # what `reproduce --device cpu` gives the notebooks' kernels
    assert run_setup.open_run("smoke", results_dir=tmp_path).settings.train.device == "cpu"
    monkeypatch.delenv(DEVICE_ENV)
    for command in ("train", "tune"):
        assert cli.main([command, "--profile", "smoke", "--results-dir", str(tmp_path), "--device", "gpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.splitlines() == [f"melunmix {command}: error: --device: device 'gpu' is not a torch device; "
                                    "use 'auto', 'cpu' or 'cuda[:N]'"]


def test_only_cpu_and_cuda_are_devices_here():
    with pytest.raises(ValueError, match=r"^device 'meta': melunmix runs on 'cpu' or 'cuda\[:N\]'"):
        resolve_device("meta")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_a_cuda_index_beyond_the_machines_is_refused():
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"this machine has {count} CUDA device"):
        resolve_device(f"cuda:{count}")
