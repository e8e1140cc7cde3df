"""One reader for every kind of model path (``separate --model``, ``train.init_weights``)."""

from __future__ import annotations

import pytest
import torch

from melunmix.models import model_files
from melunmix.models.model_files import models_at
from melunmix.models.networks import build_model, save_model

TINY = dict(nb_bins=65, nb_channels=1, hidden_size=8, nb_layers=1, sample_rate=8000.0, n_fft=128, n_hop=64)


def _model(seed):
    torch.manual_seed(seed)
    return build_model("openunmix", **TINY)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_run_folder_gives_each_target_its_own_file_over_the_half_training_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    vocals, half, drums = _model(1), _model(2), _model(3)
    save_model(half, run / "vocals-half.pth", target="vocals")  # sorts before vocals.pth: the name decides
    save_model(vocals, run / "vocals.pth", target="vocals")
    torch.save({"not": "a model"}, run / "checkpoint.pt")  # a run's checkpoint is never read as a model
    save_model(drums, run / "drums.pth", target="drums")
    (run / "notes.pth").write_text("not a model")  # a stray file in a folder is passed over
    found = dict(models_at(run))
    assert sorted(found) == ["drums", "vocals"]
    assert _same(found["vocals"], vocals) and not _same(found["vocals"], half) and _same(found["drums"], drums)
    assert [t for t, _ in models_at(run, targets=["drums"])] == ["drums"]
    with pytest.raises(FileNotFoundError, match=r"holds no model for \['bass'\] \(it has \['drums', 'vocals'\]\)"):
        models_at(run, targets=["bass"])


def test_each_file_is_read_once(tmp_path, monkeypatch):
    path = save_model(_model(1), tmp_path / "vocals.pth", target="vocals")
    loads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    (target, model), = models_at(path)
    assert target == "vocals" and loads == [path]
    assert not model.training


def test_a_file_that_is_no_model_is_one_line_naming_the_kinds(tmp_path):
    text = tmp_path / "README.md"
    text.write_text("# a song list\n")
    with pytest.raises(ValueError) as err:
        models_at(text)
    message = str(err.value)
    assert message.startswith(f"{text}: not a model file: it is corrupt, not a torch file")
    assert message.endswith(f"a model is {model_files.MODEL_KINDS}")
    assert "weights_only" not in message and "\n" not in message
    with pytest.raises(FileNotFoundError, match="nowhere.pth: no such model file or folder"):
        models_at(tmp_path / "nowhere.pth")
    other = save_model(_model(1), tmp_path / "drums.pth", target="drums")
    with pytest.raises(ValueError, match=r"is a 'drums' model, not one of \['vocals'\]"):
        models_at(other, targets=["vocals"])


def test_the_cli_says_the_same_for_separate(tmp_path, capsys):
    from melunmix.commands.cli import main

    song = tmp_path / "song.wav"
    import numpy as np
    import soundfile as sf

    sf.write(song, np.zeros((800, 1), dtype=np.float32), 8000)
    text = tmp_path / "README.md"
    text.write_text("# not a model\n")
    assert main(["separate", str(song), "--model", str(text), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "README.md: not a model file" in lines[0] and "weights_only" not in lines[0]


def test_a_folder_refuses_a_broken_target_file_and_a_file_without_target(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_model(_model(2), run / "vocals-half.pth", target="vocals")
    (run / "vocals.pth").write_bytes(b"cut short")
    with pytest.raises(ValueError, match=r"vocals.pth cannot be read .* not taken in its place"):
        models_at(run)
    (run / "vocals.pth").unlink()
    save_model(_model(3), run / "anonymous.pth")
    with pytest.raises(ValueError, match=r"anonymous.pth does not name its target"):
        models_at(run)


def test_the_fingerprint_is_the_weights_used_not_the_rest_of_the_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_model(_model(1), run / "vocals.pth", target="vocals")
    before = model_files.model_fingerprint(run)
    save_model(_model(2), run / "drums.pth", target="drums")
    (run / "history.json").write_text("{}")
    assert model_files.model_fingerprint(run) == before  # other targets, a resumed run's files: the same
    save_model(_model(3), run / "vocals.pth", target="vocals")
    assert model_files.model_fingerprint(run) != before  # other vocals weights: another fingerprint
