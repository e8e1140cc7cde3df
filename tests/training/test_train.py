"""melunmix.training.train: the recipe against Open-Unmix's, resumed to the bit after a kill, schedules and early stopping in the run, validation SDR."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.base.names import CHECKPOINT_NAME, HISTORY_CSV_NAME, HISTORY_JSON_NAME, SETTINGS_JSON_NAME
from melunmix.models import networks as models
from melunmix.training.model_setup import build_training_model
from melunmix.training.train import train
from melunmix.training.training_data import prepare_data

from train_support import (EXPONENTIAL, N_FFT, N_HOP, SAMPLE_RATE, compare_runs, make_settings,
                           reference_valid_loss)

# One torch thread: bit-exact comparisons between runs and with child processes.
pytestmark = pytest.mark.usefixtures("one_thread")


def test_training_lowers_loss_and_writes_loadable_artifacts(reference_run, data):
    result = reference_run
    history = result.history
    assert result.finished and not result.already_finished and result.stop_reason == "epochs"
    assert history["epoch"] == [1, 2, 3]
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    assert all(t > 0 for t in history["epoch_time"])
    assert history["lr"] == [0.01, 0.01, 0.01]
    assert result.best_epoch == int(np.argmin(history["valid_loss"])) + 1

    for path in (result.weights, result.checkpoint, result.history_json, result.history_csv,
                 result.settings_json):
        assert path.is_file(), path
    assert result.weights.name == "vocals.pth"
    assert sorted(p.name for p in result.out_dir.iterdir()) == sorted(
        ["vocals.pth", "vocals_half.pth", CHECKPOINT_NAME, HISTORY_JSON_NAME, HISTORY_CSV_NAME,
         SETTINGS_JSON_NAME]
    )  # no temporary files left behind
    # Half training (3 // 2 = epoch 1): the best weights up to then, i.e. epoch 1's.
    half = models.load_model_info(result.half_weights)
    assert result.half_weights.name == "vocals_half.pth" and half["extra"]["epoch"] == 1

    on_disk = json.loads(result.history_json.read_text())
    for column in ("train_loss", "valid_loss", "lr", "epoch_time"):
        assert on_disk[column] == history[column]
    with open(result.history_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["valid_loss"]) for r in rows] == history["valid_loss"]
    assert [int(r["best_epoch"]) for r in rows][-1] == result.best_epoch

    # The weights file is the best epoch's model, rebuilt from the file alone: its
    # validation loss recomputed with librosa's STFT is the recorded one.
    model = models.load_model(result.weights)
    info = models.load_model_info(result.weights)
    assert type(model).__name__ == "OpenUnmix"
    assert info["extra"]["target"] == "vocals" and info["extra"]["epoch"] == result.best_epoch
    assert model.nb_bins == 97 and model.nb_output_bins == 129  # bins up to 6 kHz: 6000 / 62.5 + 1
    assert model.hidden_size == 16 and model.n_fft == N_FFT and model.sample_rate == SAMPLE_RATE
    (valid_track,) = data.valid_tracks
    assert reference_valid_loss(model, valid_track) == pytest.approx(
        history["valid_loss"][result.best_epoch - 1], rel=1e-4)

    saved = json.loads(result.settings_json.read_text())
    assert saved["model"] == "openunmix" and saved["seed"] == 7 and saved["train"]["lr"] == 0.01
    assert saved["valid_tracks"] == [valid_track.name]
    assert "git_commit" in saved and saved["settings"]["stft"]["n_fft"] == N_FFT


def test_stopped_and_resumed_run_equals_uninterrupted(reference_run, data, tmp_path):
    settings = make_settings()
    first = train("openunmix", settings, data, tmp_path, stop_after=2)
    assert not first.finished and first.last_epoch == 2
    assert json.loads((tmp_path / HISTORY_JSON_NAME).read_text())["finished"] is False
    resumed = train("openunmix", settings, data, tmp_path)
    assert resumed.finished and not resumed.already_finished and resumed.last_epoch == 3
    compare_runs(reference_run, resumed)


def test_run_killed_mid_epoch_resumes_exactly(reference_run, data, dataset_root, tmp_path):
    """A hard kill (no clean-up) during epoch 2 loses that epoch only."""
    out_dir = tmp_path / "run"
    settings_json = json.dumps(make_settings().to_dict())
    script = textwrap.dedent(f"""
        import json, os, torch
        torch.set_num_threads(1)
        import melunmix.training.train as T
        from melunmix.base.config import settings_from_dict
        settings = settings_from_dict(json.loads({settings_json!r}))
        calls = []
        validate = T.validate  # the trainer's validation pass, as the trainer looks it up
        def killing_validate(*args):
            calls.append(1)
            if len(calls) == 2:  # epoch 2: its batches are done, its checkpoint is not
                os._exit(9)
            return validate(*args)
        T.validate = killing_validate
        from melunmix.training.training_data import prepare_data
        data = prepare_data(settings, data_root={str(dataset_root)!r}, stats_dir={str(data.stats_dir)!r},
                            progress=False)
        T.train("openunmix", settings, data, {str(out_dir)!r})
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr
    assert json.loads((out_dir / HISTORY_JSON_NAME).read_text())["epoch"] == [1]
    resumed = train("openunmix", make_settings(), data, out_dir)
    assert resumed.history["epoch"] == [1, 2, 3]
    compare_runs(reference_run, resumed)


def test_finished_run_is_not_retrained_and_more_epochs_continue(reference_run, data, tmp_path):
    import shutil

    out_dir = tmp_path / "copy"
    shutil.copytree(reference_run.out_dir, out_dir)
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    again = train("openunmix", make_settings(), data, out_dir)
    assert again.already_finished and again.finished and again.last_epoch == 3
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before
    assert again.history["valid_loss"] == reference_run.history["valid_loss"]

    longer = train("openunmix", make_settings(train={"epochs": 4}), data, out_dir)
    assert not longer.already_finished and longer.history["epoch"] == [1, 2, 3, 4]
    assert longer.history["train_loss"][:3] == reference_run.history["train_loss"]


def test_mismatched_checkpoint_is_refused_with_the_file_named(reference_run, data, dataset_root, tmp_path):
    out_dir = reference_run.out_dir
    with pytest.raises(ValueError, match="model: 'openunmix' there, 'melunmix' here") as err:
        train("melunmix", make_settings(), data, out_dir)
    message = str(err.value)
    assert str(out_dir / CHECKPOINT_NAME) in message and f"Delete the folder {out_dir}" in message

    with pytest.raises(ValueError, match=r"config.hidden_size: 16 there, 32 here"):
        train("openunmix", make_settings(model={"hidden_size": 32}), data, out_dir)

    other_stft = make_settings(stft={"n_hop": 64})
    other_data = prepare_data(other_stft, data_root=dataset_root, stats_dir=tmp_path / "features",
                              progress=False)
    with pytest.raises(ValueError, match=r"config.n_hop: 128 there, 64 here.*another output folder \(--results-dir\)"):
        train("openunmix", other_stft, other_data, out_dir)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable training checkpoint") as err:
        train("openunmix", make_settings(), data, broken)
    assert str(broken / CHECKPOINT_NAME) in str(err.value)


def test_nan_loss_stops_training_with_a_message(data, tmp_path):
    # An infinite learning rate turns every weight into inf/NaN after the first step,
    # so the second batch of epoch 1 has a NaN loss.
    settings = make_settings(train={"lr": float("inf")})
    with pytest.warns(RuntimeWarning, match=r"training stopped at epoch 1: the training loss is nan at batch 2"):
        result = train("openunmix", settings, data, tmp_path)
    assert result.finished and result.stop_reason == "nan" and result.best_epoch is None
    assert "no weights were saved" in result.history["stop_message"]
    assert str(tmp_path) in result.history["stop_message"]
    on_disk = json.loads((tmp_path / HISTORY_JSON_NAME).read_text())
    assert on_disk["train_loss"] == [None] and on_disk["stop_reason"] == "nan"
    assert not (tmp_path / "vocals.pth").exists()
    assert train("openunmix", settings, data, tmp_path).already_finished


def test_proposed_model_trains_through_the_same_path(data, tmp_path):
    result = train("proposed", make_settings(train={"epochs": 2}), data, tmp_path)
    assert result.model_name == "melunmix" and result.finished
    assert result.history["train_loss"][1] < result.history["train_loss"][0]
    model = models.load_model(result.weights)
    assert type(model).__name__ == "MelUnmix" and model.nb_features == 16

    # The branch statistics are those of the model's log-mel, computed independently
    # with librosa on the mono (channel-averaged) magnitudes of the training mixtures.
    mel_mean, mel_std = data.branch_stats(model.branch_features, feature="mel", n_mels=16, n_mfcc=20)
    frames = []
    for track in data.train_tracks:
        audio, _ = sf.read(track.wav("mixture"), dtype="float32", always_2d=True)
        # Uncentred frames, as Open-Unmix computes its statistics (its training encoder).
        mag = np.abs(librosa.stft(audio.T, n_fft=N_FFT, hop_length=N_HOP, center=False)).mean(axis=0)
        mel = librosa.feature.melspectrogram(S=mag.astype(np.float64) ** 2, sr=SAMPLE_RATE, n_fft=N_FFT,
                                             n_mels=16)
        frames.append(librosa.power_to_db(mel, amin=1e-10, top_db=None))
    frames = np.concatenate(frames, axis=1)
    np.testing.assert_allclose(mel_mean, frames.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(mel_std, frames.std(axis=1), rtol=1e-3)
    # ... and they are what the branch normalisation starts from.
    start = build_training_model("proposed", make_settings(), data)
    np.testing.assert_allclose(-start.mel_mean.detach().numpy(), mel_mean, rtol=1e-6)
    np.testing.assert_allclose(1 / start.mel_scale.detach().numpy(), mel_std, rtol=1e-5)


def test_bad_arguments_are_named(data, tmp_path):
    with pytest.raises(ValueError, match="unknown model name 'lstm'"):
        train("lstm", make_settings(), data, tmp_path)
    with pytest.raises(ValueError, match="pass target="):
        train("openunmix", make_settings(data={"targets": ["vocals", "drums"]}), data, tmp_path)
    with pytest.raises(ValueError, match="data was prepared for n_fft=256"):
        train("openunmix", make_settings(stft={"n_fft": 512}), data, tmp_path)
    with pytest.raises(ValueError, match="stop_after"):
        train("openunmix", make_settings(), data, tmp_path, stop_after=0)


def test_loader_workers_do_not_change_the_result(reference_run, data, tmp_path):
    result = train("openunmix", make_settings(train={"epochs": 1}, data={"nb_workers": 2}), data, tmp_path)
    assert result.history["train_loss"] == reference_run.history["train_loss"][:1]
    assert result.history["valid_loss"] == reference_run.history["valid_loss"][:1]


def test_exponential_schedule_decays_the_lr_after_every_epoch(exponential_run):
    history = exponential_run.history
    lr0, gamma = 0.01, EXPONENTIAL["lr_decay_gamma"]
    assert history["lr"] == pytest.approx([lr0 * gamma ** (epoch - 1) for epoch in history["epoch"]], rel=1e-12)
    assert history["lr"][0] == lr0 and len(set(history["lr"])) == 3
    state = torch.load(exponential_run.checkpoint, weights_only=True)
    assert state["scheduler"]["gamma"] == gamma and state["scheduler"]["last_epoch"] == 3
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr0 * gamma ** 3, rel=1e-12)
    saved = json.loads(exponential_run.settings_json.read_text())
    assert saved["train"]["lr_schedule"] == "exponential"


def test_exponential_schedule_resumes_exactly(exponential_run, data, tmp_path):
    settings = make_settings(train=EXPONENTIAL)
    first = train("openunmix", settings, data, tmp_path, stop_after=1)
    assert first.history["lr"] == [0.01] and not first.finished
    resumed = train("openunmix", settings, data, tmp_path)
    assert resumed.history["epoch"] == [1, 2, 3]
    compare_runs(exponential_run, resumed)


def test_the_schedule_is_part_of_the_run_signature(exponential_run, data):
    with pytest.raises(ValueError, match=r"train\.lr_schedule: 'exponential' there, 'plateau' here"):
        train("openunmix", make_settings(train={"lr_decay_gamma": 0.6}), data, exponential_run.out_dir)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match=r"lr_schedule must be one of \['plateau', 'exponential'\], got 'cosine'"):
        make_settings(train={"lr_schedule": "cosine"})


def test_validation_sdr_every_n_epochs_is_museval_and_leaves_training_unchanged(reference_run, data, tmp_path):
    import museval

    from melunmix.analysis import training_figures
    from melunmix.scoring.museval_scores import as_musdb_track
    from melunmix.separation.separate import separate
    from melunmix.scoring.track_audio import load_track

    result = train("openunmix", make_settings(train={"valid_sdr_every": 2}), data, tmp_path / "sdr")
    history = result.history
    assert history["valid_sdr"][0] is None and all(v is not None for v in history["valid_sdr"][1:])
    # Scoring the validation songs does not change what is trained.
    for column in ("train_loss", "valid_loss", "lr"):
        assert history[column] == reference_run.history[column]
    # Epoch 3's value is museval's median vocals SDR of the last epoch's model.
    checkpoint = torch.load(result.checkpoint, weights_only=False)
    model = build_training_model("openunmix", make_settings(), data)
    model.load_state_dict(checkpoint["model"])
    (track,) = data.valid_tracks
    audio = load_track(track)
    out = separate(audio.mixture.T.astype(np.float32), audio.rate, {"vocals": model})
    estimates = {k: np.asarray(out[k], dtype=np.float64).T for k in ("vocals", "accompaniment")}
    store = museval.eval_mus_track(as_musdb_track(audio), estimates, mode="v4")
    frames = [f["metrics"]["SDR"] for t in store.scores["targets"] if t["name"] == "vocals" for f in t["frames"]]
    assert history["valid_sdr"][2] == pytest.approx(np.nanmedian(np.array(frames, dtype=float)), abs=1e-3)
    # history.csv carries the column and the loss figure gets its SDR panel.
    assert "valid_sdr" in result.history_csv.read_text().splitlines()[0]
    fig = training_figures.loss_curves({"openunmix": result.history_csv}, path=tmp_path / "loss.png")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel().startswith("median vocals SDR")
    with pytest.raises(ValueError, match="valid_sdr_every"):
        train("openunmix", make_settings(train={"valid_sdr_every": -1}), data, tmp_path / "bad")


def test_checkpoint_of_the_earlier_layout_resumes_exactly(reference_run, data, tmp_path):
    """A checkpoint written before ``dataset_epoch`` was dropped (a copy of ``epoch``) still resumes."""
    settings = make_settings()
    train("openunmix", settings, data, tmp_path, stop_after=2)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    torch.save({**state, "dataset_epoch": state["epoch"]}, tmp_path / CHECKPOINT_NAME)
    resumed = train("openunmix", settings, data, tmp_path)
    assert resumed.history["epoch"] == [1, 2, 3]
    compare_runs(reference_run, resumed)
    assert "dataset_epoch" not in torch.load(resumed.checkpoint, weights_only=True)


def test_incomplete_or_inconsistent_checkpoint_is_refused_in_one_line(reference_run, data, tmp_path):
    state = torch.load(reference_run.checkpoint, weights_only=True)
    for name, broken, message in [
        ("no_rng", {k: v for k, v in state.items() if k != "rng"},
         r"is an incomplete training checkpoint \(no rng\)"),
        ("epoch", {**state, "epoch": 2}, r"says epoch 2 but its history has 3 epochs"),
    ]:
        out_dir = tmp_path / name
        out_dir.mkdir()
        torch.save(broken, out_dir / CHECKPOINT_NAME)
        with pytest.raises(ValueError, match=message) as err:
            train("openunmix", make_settings(), data, out_dir)
        assert str(err.value).count("\n") == 0 and str(out_dir / CHECKPOINT_NAME) in str(err.value)
        assert f"Delete the folder {out_dir}" in str(err.value)


def test_finished_run_without_its_checkpoint_is_kept_and_checked(reference_run, data, tmp_path):
    """The checkpoint of a finished run may be deleted to save space: its history still says it is done."""
    import shutil

    out_dir = tmp_path / "kept"
    shutil.copytree(reference_run.out_dir, out_dir)
    (out_dir / CHECKPOINT_NAME).unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    again = train("openunmix", make_settings(), data, out_dir)
    assert again.already_finished and again.history["valid_loss"] == reference_run.history["valid_loss"]
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before
    with pytest.raises(ValueError, match=r"history\.json belongs to another training run.*hidden_size: 16 there"):
        train("openunmix", make_settings(model={"hidden_size": 32}), data, out_dir)


def test_settings_file_records_the_provenance_module(reference_run):
    from melunmix.base import provenance

    saved = json.loads(reference_run.settings_json.read_text())
    assert saved["versions"] == provenance.package_versions()
    assert saved["versions"]["torch"] == torch.__version__
    info = models.load_model_info(reference_run.weights)
    assert info["versions"] == saved["versions"]  # one record for model files and runs
