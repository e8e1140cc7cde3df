"""Open-Unmix's own model files separate through melunmix as through Open-Unmix.

The files are made here, offline, with the reference package (openunmix 1.3.0, installed
by the set-up without its dependencies; ``bench/reference.py``): a model folder as its
``train.py`` writes it, and a bare weights file as its models are published on Zenodo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.dsp import features
from melunmix.models import networks as models
from melunmix.models.umx_files import architecture, load_openunmix

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import reference  # noqa: E402  (bench/reference.py)

RATE = 44100


@pytest.fixture(scope="module")
def oum():
    namespace = reference.import_openunmix()
    from openunmix import utils  # imports torchaudio: the placeholder registered above

    namespace.utils = utils
    return namespace


def _reference(oum, seed=0, hidden=32, nb_layers=3, unidirectional=False, nb_channels=2):
    """Open-Unmix's own model with random weights and non-trivial statistics."""
    torch.manual_seed(seed)
    max_bin = features.bandwidth_to_max_bin(RATE, 4096, 16000.0)
    ref = oum.model.OpenUnmix(nb_bins=2049, nb_channels=nb_channels, hidden_size=hidden, nb_layers=nb_layers,
                              unidirectional=unidirectional, max_bin=max_bin,
                              input_mean=np.random.default_rng(seed).random(max_bin).astype(np.float32),
                              input_scale=(0.5 + np.random.default_rng(seed + 1).random(max_bin)).astype(np.float32))
    with torch.no_grad():
        for name, tensor in ref.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith("running_mean") or name in ("output_scale", "output_mean"):
                tensor.normal_(mean=1.0, std=0.2)
    return ref.eval()


def _train_py_folder(folder: Path, ref, target="vocals", hidden=32) -> Path:
    """What Open-Unmix's train.py leaves: <target>.json, <target>.pth, separator.json."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ref.state_dict(), folder / f"{target}.pth")
    args = {"nfft": 4096, "nhop": 1024, "hidden_size": hidden, "nb_channels": 2, "bandwidth": 16000,
            "target": target, "seq_dur": 6.0}
    (folder / f"{target}.json").write_text(json.dumps({"args": args, "best_epoch": 1, "epochs_trained": 2}))
    (folder / "separator.json").write_text(json.dumps({"targets": [target], "sample_rate": RATE, "nfft": 4096,
                                                       "nhop": 1024, "nb_channels": 2}))
    return folder


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    gen = np.random.default_rng(3)
    t = np.arange(3 * RATE) / RATE
    audio = 0.1 * gen.standard_normal((3 * RATE, 2)) + 0.2 * np.sin(2 * np.pi * 220 * t)[:, None]
    path = tmp_path_factory.mktemp("songs") / "song.wav"
    sf.write(path, audio.astype(np.float32), RATE, subtype="FLOAT")
    return path


def _their_estimates(oum, folder: Path, song: Path, targets) -> dict:
    separator = oum.utils.load_separator(str(folder), targets=list(targets), niter=1, residual=True,
                                         wiener_win_len=300, filterbank="torch").eval()
    audio, _ = sf.read(song, dtype="float32", always_2d=True)
    with torch.inference_mode():
        out = separator(torch.from_numpy(audio.T.copy())[None]).double().numpy()[0]
    names = list(targets) + ["accompaniment"]  # Open-Unmix names the residual "residual"
    return dict(zip(names, out))


def _error_db(ours: np.ndarray, theirs: np.ndarray) -> float:
    return 10 * np.log10(np.sum((ours - theirs) ** 2) / np.sum(theirs ** 2))


def test_a_train_py_folder_separates_as_open_unmix_does(oum, song, tmp_path):
    folder = _train_py_folder(tmp_path / "umx", _reference(oum))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "melunmix", "separate", str(song), "--model", str(folder),
                           "--out", str(out), "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    theirs = _their_estimates(oum, folder, song, ["vocals"])
    for target in ("vocals", "accompaniment"):
        ours, rate = sf.read(out / "song" / f"{target}.wav", dtype="float64", always_2d=True)
        assert rate == RATE and ours.T.shape == theirs[target].shape
        # float64 Wiener step here vs float32 there: far below any audible or BSS Eval level
        assert _error_db(ours.T, theirs[target]) < -80, target


def test_a_bare_published_weights_file_is_read_from_its_shapes(oum, tmp_path):
    ref = _reference(oum, seed=5, hidden=48)
    path = tmp_path / "zenodo" / "vocals-b62c91ce.pth"  # as umxhq's weights are named on Zenodo
    path.parent.mkdir()
    state = ref.state_dict()
    state["sample_rate"] = torch.tensor(44100.0)  # older Open-Unmix files carry their rate and window
    state["stft.window"] = torch.hann_window(4096)
    torch.save(state, path)
    (model,) = load_openunmix(path).items()
    target, ours = model
    assert target == "vocals" and isinstance(ours, models.OpenUnmix)
    # the published 4096-point configuration: 44.1 kHz, hop 1024
    assert (ours.sample_rate, ours.n_fft, ours.n_hop, ours.hidden_size, ours.nb_bins) == (44100.0, 4096, 1024, 48,
                                                                                           ref.nb_bins)
    X = torch.rand(1, 2, 2049, 20) * 3
    with torch.no_grad():
        assert torch.allclose(ours(X), ref(X), rtol=1e-5, atol=1e-6 * float(ref(X).abs().max()))


@pytest.mark.parametrize("nb_layers, unidirectional, nb_channels", [(2, True, 1), (4, False, 2)])
def test_architecture_is_read_from_the_tensors(oum, nb_layers, unidirectional, nb_channels):
    ref = _reference(oum, hidden=24, nb_layers=nb_layers, unidirectional=unidirectional, nb_channels=nb_channels)
    arch = architecture(ref.state_dict())
    assert arch == dict(nb_bins=2049, nb_channels=nb_channels, hidden_size=24, nb_layers=nb_layers,
                        unidirectional=unidirectional, max_bin=ref.nb_bins, n_fft=4096)


def test_a_folder_with_several_targets_loads_each_or_the_chosen(oum, tmp_path):
    folder = tmp_path / "umx4"
    for seed, target in enumerate(("vocals", "drums")):
        _train_py_folder(folder, _reference(oum, seed=seed), target=target)
    assert sorted(load_openunmix(folder)) == ["drums", "vocals"]
    assert list(load_openunmix(folder, targets=["drums"])) == ["drums"]
    with pytest.raises(FileNotFoundError, match=r"no model for \['bass'\]"):
        load_openunmix(folder, targets=["bass"])


def test_foreign_and_contradicting_files_are_named(oum, tmp_path):
    stray = tmp_path / "vocals.pth"
    torch.save({"weight": torch.zeros(3)}, stray)
    with pytest.raises(ValueError, match="vocals.pth is not an Open-Unmix model"):
        load_openunmix(stray)
    folder = _train_py_folder(tmp_path / "umx", _reference(oum))
    (folder / "separator.json").write_text(json.dumps({"sample_rate": RATE, "nfft": 2048, "nhop": 512}))
    with pytest.raises(ValueError, match="do not belong together"):
        load_openunmix(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no Open-Unmix model"):
        load_openunmix(empty)
