"""Tuning: a tiny search writes its table and best parameters, resumes, and feeds training.

The dataset is generated at 16 kHz and the search runs at 8 kHz (resampled into a
temporary cache), as the poster tuned at a lower rate than it trained at; the trials use
the STFT scaled to that rate and the per-epoch (exponential) learning-rate decay, so every
searched value changes training. The smoke profile's own search and transfer check run on a
tiny dataset at 44.1 kHz.
"""

from __future__ import annotations

import csv
import json
import re

import optuna
import pytest
import torch

from melunmix.analysis import tuning_figures
from melunmix.base.config import load_profile, settings_from_dict
from melunmix.base.names import HISTORY_JSON_NAME, SETTINGS_JSON_NAME
from melunmix.dsp.features import bandwidth_to_max_bin
from melunmix.training.hyperparameters import resolve_hyperparameters
from melunmix.training.train import train
from melunmix.training.training_data import prepare_data
from melunmix.training.tune import BEST_PARAMS_NAME, HISTORIES_CSV_NAME, STORAGE_NAME, STUDY_NAME, TRANSFER_CSV_NAME, TRIALS_CSV_NAME, load_best_params, load_trial_histories, search_dir, search_space, transfer_check, trial_settings, tune, tune_all

SPACE = {"lr": [1e-3, 3e-2, "log"], "weight_decay": [1e-7, 1e-3, "log"], "lr_decay_gamma": [0.5, 1.0, "linear"]}


def make_settings(**sections):
    values = {
        "name": "test",
        "data": {"sample_rate": 16000, "seq_dur": 1.0, "samples_per_track": 4},
        "stft": {"n_fft": 256, "n_hop": 128, "bandwidth": 4000.0},
        "model": {"hidden_size": 16, "nb_layers": 1, "n_mels": 16},
        "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "lr_schedule": "exponential", "lr_decay_gamma": 1.0,
                  "progress": False, "seeds": [3]},
        "tune": {"sample_rate": 8000, "model": "openunmix", "nb_trials": 2, "epochs": 2,
                 "samples_per_track": 2, "seed": 5, "space": SPACE},
    }
    for section, overrides in sections.items():
        values[section] = {**values.get(section, {}), **overrides}
    return settings_from_dict(values)


@pytest.fixture(scope="module", autouse=True)
def environment(temporary_cache, single_torch_thread):
    yield


@pytest.fixture(scope="module")
def dataset_root(small_dataset):
    return small_dataset(seed=1)


@pytest.fixture(scope="module")
def search(dataset_root, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("tuning")
    return tune(make_settings(), data_root=dataset_root, out_dir=out_dir)


def _read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_search_writes_table_histories_and_best_params(search):
    out_dir = search.out_dir
    rows = _read_csv(out_dir / TRIALS_CSV_NAME)
    assert [row["trial"] for row in rows] == ["0", "1"] and search.nb_trials_run == 2
    assert all(row["state"] == "COMPLETE" for row in rows)
    for row in rows:
        lr, weight_decay, gamma = (float(row[name]) for name in ("lr", "weight_decay", "lr_decay_gamma"))
        assert 1e-3 <= lr <= 3e-2 and 1e-7 <= weight_decay <= 1e-3 and 0.5 <= gamma <= 1.0
        trial_dir = out_dir / "trials" / f"trial_{int(row['trial']):03d}"
        history = json.loads((trial_dir / HISTORY_JSON_NAME).read_text())
        # Each trial is a short run at the tuning rate with its own parameters, and the
        # per-epoch decay acts within it...
        assert history["epoch"] == [1, 2] and int(row["nb_epochs"]) == 2
        assert history["lr"] == [lr, pytest.approx(lr * gamma, rel=1e-12)] and history["lr"][1] < lr
        saved = json.loads((trial_dir / SETTINGS_JSON_NAME).read_text())
        assert saved["sample_rate"] == 8000 and saved["model_config"]["sample_rate"] == 8000
        # ... with the STFT scaled to that rate (256 / 128 at 16 kHz -> 128 / 64 at 8 kHz,
        # bandwidth 4 kHz -> 2 kHz: 2000 / 62.5 + 1 bins)...
        assert (saved["model_config"]["n_fft"], saved["model_config"]["n_hop"]) == (128, 64)
        assert saved["model_config"]["max_bin"] == 33
        assert saved["settings"]["data"]["samples_per_track"] == 2
        assert saved["train"]["lr_decay_gamma"] == gamma and saved["train"]["weight_decay"] == weight_decay
        assert saved["train"]["lr_schedule"] == "exponential"
        # ... whose objective is its best validation loss.
        assert float(row["best_valid_loss"]) == min(history["valid_loss"])
        assert float(row["time_s"]) == pytest.approx(sum(history["epoch_time"]), abs=1e-3)
    for name in SPACE:
        assert rows[0][name] != rows[1][name]

    histories = _read_csv(out_dir / HISTORIES_CSV_NAME)
    assert [(r["trial"], r["epoch"]) for r in histories] == [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]
    for trial in ("0", "1"):
        lrs = [float(r["lr"]) for r in histories if r["trial"] == trial]
        assert lrs[1] < lrs[0]

    best_row = min(rows, key=lambda r: float(r["best_valid_loss"]))
    best = json.loads((out_dir / BEST_PARAMS_NAME).read_text())
    assert best["search"]["trial"] == int(best_row["trial"]) == search.best_trial
    assert best["search"]["best_valid_loss"] == float(best_row["best_valid_loss"])
    assert best["search"]["lr_schedule"] == "exponential" and best["search"]["model"] == "openunmix"
    assert best["search"]["stft"]["n_fft"] == 128
    expected = {name: float(best_row[name]) for name in SPACE}
    assert {k: best[k] for k in expected} == expected
    assert load_best_params(out_dir) == expected == search.best_params
    assert best["search"]["sample_rate"] == 8000 and (out_dir / STORAGE_NAME).is_file()
    assert list(search.trials["trial"]) == [0, 1]


def test_trials_after_the_start_up_are_chosen_by_tpe_and_say_so(search, dataset_root, tmp_path):
    # The shared search has the default start-up (10): both of its trials are random draws.
    assert [row["sampler"] for row in _read_csv(search.out_dir / TRIALS_CSV_NAME)] == ["random", "random"]
    settings = make_settings(tune={"nb_trials": 3, "startup_trials": 1, "epochs": 1})
    tpe = tune(settings, data_root=dataset_root, out_dir=tmp_path / "tpe")
    rows = _read_csv(tmp_path / "tpe" / TRIALS_CSV_NAME)
    assert [row["sampler"] for row in rows] == ["random", "TPE", "TPE"]
    best = json.loads((tmp_path / "tpe" / BEST_PARAMS_NAME).read_text())["search"]
    assert best["startup_trials"] == 1 and best["best_chosen_by"] == rows[tpe.best_trial]["sampler"]
    # The same seeds with every trial random draw other values after the first: the
    # setting reaches the sampler.
    random = tune(make_settings(tune={"nb_trials": 3, "epochs": 1}), data_root=dataset_root,
                  out_dir=tmp_path / "random")
    assert list(random.trials["lr"])[0] == list(tpe.trials["lr"])[0]
    assert list(random.trials["lr"])[1:] != list(tpe.trials["lr"])[1:]


def test_rerun_does_not_retrain_finished_trials(search, dataset_root):
    out_dir = search.out_dir
    files = sorted((out_dir / "trials").rglob("*"))
    before = {path: path.stat().st_mtime_ns for path in files}
    again = tune(make_settings(), data_root=dataset_root, out_dir=out_dir)
    assert again.nb_trials_run == 0 and again.best_params == search.best_params
    assert sorted((out_dir / "trials").rglob("*")) == files
    assert {path: path.stat().st_mtime_ns for path in files} == before
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{out_dir / STORAGE_NAME}")
    assert len(study.trials) == 2


def test_interrupted_trial_is_resumed_from_its_checkpoint(dataset_root, tmp_path, capsys):
    """A trial left RUNNING (its process killed after one epoch) is finished, not restarted."""
    settings = make_settings(tune={"nb_trials": 1})
    first = tune(settings, data_root=dataset_root, out_dir=tmp_path / "reference")

    # The same first trial, stopped after its first epoch as a killed process leaves it.
    out_dir = tmp_path / "interrupted"
    out_dir.mkdir()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out_dir / STORAGE_NAME}",
                                direction="minimize", sampler=optuna.samplers.TPESampler(seed=5))
    trial = study.ask(search_space(SPACE))
    assert trial.params == first.best_params  # the search seeds trial n's sampler with seed + n
    from melunmix.training.tune import trial_settings

    data = prepare_data(trial_settings(settings, {}), data_root=dataset_root, stats_dir=out_dir / "features",
                        sample_rate=8000, progress=False)
    partial = train("openunmix", trial_settings(settings, trial.params), data,
                    out_dir / "trials" / "trial_000", seed=5, stop_after=1)
    assert partial.last_epoch == 1 and not partial.finished

    capsys.readouterr()
    resumed = tune(settings, data_root=dataset_root, out_dir=out_dir)
    assert resumed.nb_trials_run == 1 and list(resumed.trials["trial"]) == [0]
    # The retry fills the killed trial's slot: it is still trial 1 of 1 (it used to say 2/1).
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tuning")]
    assert any(" trial 1/1 " in line and "interrupted" in line for line in printed), printed
    assert any(line.startswith("tuning openunmix trial 1/1: ") for line in printed), printed
    assert not any("2/1" in line for line in printed), printed
    assert resumed.best_valid_loss == first.best_valid_loss  # same two epochs, same numbers
    history = json.loads((out_dir / "trials" / "trial_000" / HISTORY_JSON_NAME).read_text())
    assert history["epoch"] == [1, 2]


def test_training_reads_the_best_parameters(search, dataset_root, tmp_path):
    settings = make_settings(train={"epochs": 1, "use_tuned": True})
    data = prepare_data(settings, data_root=dataset_root, stats_dir=tmp_path / "features", progress=False)
    result = train("openunmix", settings, data, tmp_path / "model", tuning_dir=search.out_dir)
    best = load_best_params(search.out_dir)
    assert result.history["lr"][0] == best["lr"] != settings.train.lr
    saved = json.loads(result.settings_json.read_text())
    assert saved["tuned_params"] == best
    assert saved["train"]["lr_decay_gamma"] == best["lr_decay_gamma"]
    assert saved["train"]["weight_decay"] == best["weight_decay"]
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == best["weight_decay"]
    assert state["scheduler"]["gamma"] == best["lr_decay_gamma"]
    assert saved["tuned_from"] == str(search.out_dir / BEST_PARAMS_NAME)
    assert saved["sample_rate"] == 16000  # tuned at 8 kHz, trained at the profile's rate

    # use_tuned off: the profile's own learning rate.
    plain = train("openunmix", make_settings(train={"epochs": 1, "use_tuned": False}), data,
                  tmp_path / "plain", tuning_dir=search.out_dir)
    assert plain.history["lr"][0] == settings.train.lr


def test_changed_search_settings_are_refused(search, dataset_root):
    with pytest.raises(ValueError, match=r"study\.db belongs to another tuning search.*tune\.epochs: 2 there, 3 here"):
        tune(make_settings(tune={"epochs": 3}), data_root=dataset_root, out_dir=search.out_dir)
    with pytest.raises(ValueError, match=r"train\.lr_schedule: 'exponential' there, 'plateau' here"):
        tune(make_settings(train={"lr_schedule": "plateau"}, tune={"space": {"lr": SPACE["lr"]}}),
             data_root=dataset_root, out_dir=search.out_dir)


def test_tuned_gamma_of_another_schedule_is_refused(search, dataset_root, tmp_path):
    settings = make_settings(train={"lr_schedule": "plateau", "use_tuned": True})
    with pytest.raises(ValueError, match="lr_decay_gamma searched with train.lr_schedule 'exponential'"):
        resolve_hyperparameters(settings, search.out_dir, model_name="openunmix")


def test_plateau_decay_search_warns_that_it_cannot_act(dataset_root, tmp_path):
    settings = make_settings(train={"lr_schedule": "plateau"}, tune={"nb_trials": 1, "epochs": 1})
    with pytest.warns(UserWarning, match="cannot act within a trial"):
        tune(settings, data_root=dataset_root, out_dir=tmp_path)


@pytest.mark.parametrize("space, message", [
    ({"learning_rate": [1e-3, 1e-2, "log"]}, "'learning_rate' is not a training setting"),
    ({"lr": [1e-3, 1e-2, "exp"]}, r"lr must be \[low, high, 'log' \| 'linear'\]"),
    ({"lr": [1e-2, 1e-3, "log"]}, "need low < high"),
    ({"lr": [0.0, 1e-3, "log"]}, "low > 0 for 'log'"),
    ({}, "space is empty"),
])
def test_bad_search_space_is_named(space, message):
    with pytest.raises(ValueError, match=message):
        search_space(space)


def test_integer_settings_get_integer_distributions():
    distributions = search_space({"batch_size": [2, 16, "log"], "lr": [1e-4, 1e-2, "log"]})
    assert isinstance(distributions["batch_size"], optuna.distributions.IntDistribution)
    assert isinstance(distributions["lr"], optuna.distributions.FloatDistribution)
    assert distributions["batch_size"].log and (distributions["batch_size"].low, distributions["batch_size"].high) == (2, 16)


def test_best_params_file_is_read_or_refused(tmp_path):
    assert load_best_params(tmp_path) is None
    (tmp_path / BEST_PARAMS_NAME).write_text('{"lr": 0.1, "search": {"trial": 3}}')
    assert load_best_params(tmp_path) == {"lr": 0.1}
    (tmp_path / BEST_PARAMS_NAME).write_text('{"lr": "fast"}')
    with pytest.raises(ValueError, match=r"best_params\.json must map training settings to numbers"):
        load_best_params(tmp_path)


# --------------------------------------------------------------------------- the model scaled down
@pytest.mark.parametrize("profile", ["poster", "demo", "smoke"])
def test_trial_stft_is_the_profile_scaled_to_the_tuning_rate(profile):
    settings = load_profile(profile)
    trial = trial_settings(settings, {})
    full_rate, rate = settings.data.sample_rate, trial.data.sample_rate
    # MUSDB18's rate tuned at 16 kHz; the demo (as the study) is rendered at 16 kHz and tuned at 8.
    assert (full_rate, rate) == ((16000, 8000) if profile == "demo" else (44100, 16000))
    ratio = rate / full_rate
    # n_fft and hop: the nearest even integers to the durations kept at the lower rate.
    for name in ("n_fft", "n_hop"):
        full, scaled = getattr(settings.stft, name), getattr(trial.stft, name)
        assert scaled % 2 == 0 and abs(scaled - full * ratio) <= 1
        assert abs(scaled / rate - full / full_rate) <= 1 / rate  # the same duration, to a sample
    # The bandwidth keeps its fraction of the band, below the lower Nyquist frequency.
    # (the demo's bandwidth is its Nyquist frequency: every bin, at either rate)
    assert trial.stft.bandwidth == pytest.approx(settings.stft.bandwidth * ratio) and trial.stft.bandwidth <= rate / 2
    max_bin = bandwidth_to_max_bin(rate, trial.stft.n_fft, trial.stft.bandwidth)
    full_max_bin = bandwidth_to_max_bin(full_rate, settings.stft.n_fft, settings.stft.bandwidth)
    assert max_bin == int(trial.stft.bandwidth * trial.stft.n_fft / rate) + 1  # bins k with k*rate/n_fft <= bw
    assert max_bin / (trial.stft.n_fft // 2 + 1) == pytest.approx(full_max_bin / (settings.stft.n_fft // 2 + 1),
                                                                  abs=0.01)
    if profile == "poster":
        # 4096 / 1024 at 44.1 kHz (92.9 / 23.2 ms) -> 1486 / 372 at 16 kHz; 16 kHz of 22.05 kHz
        # (1487 of 2049 bins) -> 5805 Hz of 8 kHz: 540 of 744 bins.
        assert (trial.stft.n_fft, trial.stft.n_hop) == (1486, 372)
        assert full_max_bin == 1487 and max_bin == 540 == int(16000 * 16000 / 44100 * 1486 / 16000) + 1
    # Tuning at the data's own rate changes nothing.
    same = trial_settings(settings_from_dict({**settings.to_dict(), "tune": {**settings.to_dict()["tune"],
                                                                             "sample_rate": full_rate}}), {})
    assert same.stft == settings.stft


# --------------------------------------------------------------------------- one search per model
def test_per_model_search_writes_one_folder_per_model_and_training_reads_its_own(dataset_root, tmp_path):
    settings = make_settings(train={"models": ["openunmix", "melunmix"], "use_tuned": True, "epochs": 1},
                             tune={"per_model": True, "nb_trials": 1, "epochs": 1})
    results = tune_all(settings, data_root=dataset_root, out_dir=tmp_path / "tuning")
    assert list(results) == ["openunmix", "melunmix"]
    assert sorted(p.name for p in (tmp_path / "tuning").iterdir()) == ["features", "melunmix", "openunmix"]
    assert not (tmp_path / "tuning" / BEST_PARAMS_NAME).exists()
    for model, result in results.items():
        assert result.out_dir == tmp_path / "tuning" / model == search_dir(settings, model, tmp_path / "tuning")
        summary = json.loads(result.best_params_json.read_text())["search"]
        assert summary["model"] == model
        saved = json.loads((result.out_dir / "trials" / "trial_000" / SETTINGS_JSON_NAME).read_text())
        assert saved["model"] == model
    # The two searches draw the same first parameters (same seed); make them differ so that
    # reading the wrong file would show.
    other = {"lr": 0.0123, "weight_decay": 1e-6, "lr_decay_gamma": 0.75}
    (tmp_path / "tuning" / "melunmix" / BEST_PARAMS_NAME).write_text(json.dumps(other))
    for model in ("openunmix", "melunmix"):
        hp, tuned, source = resolve_hyperparameters(settings, tmp_path / "tuning", model_name=model)
        assert source == tmp_path / "tuning" / model / BEST_PARAMS_NAME
        assert tuned == load_best_params(tmp_path / "tuning" / model) and hp.lr == tuned["lr"]
    data = prepare_data(settings, data_root=dataset_root, stats_dir=tmp_path / "features", progress=False)
    run = train("melunmix", settings, data, tmp_path / "model", tuning_dir=tmp_path / "tuning")
    assert run.history["lr"] == [0.0123]
    # Without per_model every model reads the one file at the top of the tuning folder.
    shared = make_settings(train={"use_tuned": True})
    assert search_dir(shared, "melunmix", tmp_path / "tuning") == tmp_path / "tuning"
    assert load_trial_histories(settings, tmp_path / "tuning")["model"].unique().tolist() == ["openunmix", "melunmix"]


def _write_search(folder, rows):
    """A finished per-model search as the tuner leaves it: trials.csv and best_params.json."""
    folder.mkdir(parents=True)
    lines = ["trial,state,sampler,lr,lr_decay_gamma,batch_size,best_valid_loss"]
    lines += [f"{n},{state},random,{lr!r},{gamma!r},4,{loss}" for n, (state, lr, gamma, loss) in enumerate(rows)]
    (folder / TRIALS_CSV_NAME).write_text("\n".join(lines) + "\n")
    (folder / BEST_PARAMS_NAME).write_text(json.dumps({"lr": 1.0, "search": {"lr_schedule": "exponential"}}))


# --------------------------------------------------------------------------- the smoke profile
@pytest.fixture(scope="module")
def full_rate_root(small_dataset):
    """A tiny dataset at the smoke profile's rate (44.1 kHz)."""
    return small_dataset(seed=2, sample_rate=44100)


@pytest.fixture(scope="module")
def smoke_search(full_rate_root, tmp_path_factory):
    settings = load_profile("smoke", overrides={"data": {"root": str(full_rate_root)}})
    tuning = tmp_path_factory.mktemp("smoke") / "tuning"
    return settings, tuning, tune_all(settings, data_root=full_rate_root, out_dir=tuning)


def test_smoke_search_tunes_the_proposed_model_and_every_setting_changes_training(smoke_search):
    settings, tuning, results = smoke_search
    assert settings.tune.model == "melunmix" and settings.train.lr_schedule == "exponential"
    (result,) = results.values()
    assert result.out_dir == tuning
    trials = result.trials
    assert list(trials["trial"]) == [0, 1] and trials["weight_decay"].nunique() == 2
    histories = load_trial_histories(settings, tuning)
    for trial, group in histories.groupby("trial"):
        row = trials[trials["trial"] == trial].iloc[0]
        assert group["lr"].nunique() == len(group) == settings.tune.epochs  # the lr moves every epoch
        assert list(group["lr"]) == pytest.approx([row["lr"] * row["lr_decay_gamma"] ** (e - 1)
                                                   for e in group["epoch"]], rel=1e-12)
        saved = json.loads((tuning / "trials" / f"trial_{trial:03d}" / SETTINGS_JSON_NAME).read_text())
        assert saved["model"] == "melunmix" and saved["model_config"]["n_fft"] == 372
    fig = tuning_figures.tuning_curves_figure(histories, path=tuning / "curves.png")
    assert (tuning / "curves.png").stat().st_size > 0 and len(fig.axes) == 3  # lr, loss, colour bar


def test_transfer_check_runs_tuned_and_default_values_at_the_full_rate(smoke_search, full_rate_root):
    settings, tuning, results = smoke_search
    table = transfer_check(settings, data_root=full_rate_root, out_dir=tuning)
    assert list(table["variant"]) == ["tuned", "default"] and set(table["model"]) == {"melunmix"}
    best = load_best_params(tuning)
    tuned, default = (table[table["variant"] == v].iloc[0] for v in ("tuned", "default"))
    assert {name: tuned[name] for name in best} == best
    assert {name: default[name] for name in best} == {name: getattr(settings.train, name) for name in best}
    for variant in ("tuned", "default"):
        run_dir = tuning / "transfer" / variant
        history = json.loads((run_dir / HISTORY_JSON_NAME).read_text())
        saved = json.loads((run_dir / SETTINGS_JSON_NAME).read_text())
        assert history["epoch"] == [1] == list(range(1, settings.tune.transfer_epochs + 1))
        assert saved["sample_rate"] == 44100 and saved["model_config"]["n_fft"] == settings.stft.n_fft
        assert saved["seed"] == settings.train.seeds[0] and saved["tuned_params"] is None
    assert tuned["final_valid_loss"] != default["final_valid_loss"]
    assert (tuning / TRANSFER_CSV_NAME).is_file()
    # Done runs are reused, not retrained.
    before = {p: p.stat().st_mtime_ns for p in (tuning / "transfer").rglob("*.pth")}
    again = transfer_check(settings, data_root=full_rate_root, out_dir=tuning)
    assert again.drop(columns="time_s").equals(table.drop(columns="time_s"))
    assert {p: p.stat().st_mtime_ns for p in (tuning / "transfer").rglob("*.pth")} == before
    assert list(table["run_dir"]) == ["transfer/tuned", "transfer/default"]
    fig = tuning_figures.transfer_figure(tuning / TRANSFER_CSV_NAME, tuning, path=tuning / "transfer.png")
    assert len(fig.axes) == 2 and (tuning / "transfer.png").is_file()
    # transfer_epochs 0: nothing to do.
    off = load_profile("smoke", overrides={"tune": {"transfer_epochs": 0}})
    assert transfer_check(off, out_dir=tuning / "none").empty and not (tuning / "none").exists()


def _journal_study(journal, name):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))


def test_two_workers_on_one_journal_run_each_trial_once_and_retry_a_killed_workers_trial(dataset_root, tmp_path):
    """Two `melunmix tune` processes share a journal file; one is killed (SIGKILL) in a trial."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import yaml

    from melunmix.study.profile_commands import tune_profile
    from melunmix.training.tune import WORKER_ATTR, _slots

    nb_trials, epochs = 5, 4
    journal = tmp_path / "shared" / "journal.log"
    values = {
        "name": "workers",
        "data": {"sample_rate": 16000, "seq_dur": 1.0, "samples_per_track": 4},
        "stft": {"n_fft": 256, "n_hop": 128, "bandwidth": 4000.0},
        "model": {"hidden_size": 16, "nb_layers": 1, "n_mels": 16},
        "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "lr_schedule": "exponential", "lr_decay_gamma": 1.0,
                  "progress": False, "seeds": [3]},
        "tune": {"sample_rate": 8000, "model": "openunmix", "nb_trials": nb_trials, "epochs": epochs,
                 "samples_per_track": 8, "seed": 5, "space": SPACE, "storage": str(journal),
                 "heartbeat_interval": 0.5, "grace_period": 3.0},
    }
    profile = tmp_path / "workers.yaml"
    profile.write_text(yaml.safe_dump(values))
    results = tmp_path / "results"
    command = [sys.executable, "-m", "melunmix.commands.cli", "tune", "--profile", str(profile), "--data-root",
               str(dataset_root), "--results-dir", str(results), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
               for _ in range(2)]
    survivor, victim = workers
    name = "melunmix-tune:workers:openunmix"
    folder = results / "workers" / "tuning"
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.05)
            try:
                running = _journal_study(journal, name).get_trials(deepcopy=False)
            except (KeyError, FileNotFoundError):  # no journal, or no study in it, yet
                continue
            for trial in running:
                mine = trial.user_attrs.get(WORKER_ATTR) == f"{socket.gethostname()}:{victim.pid}"
                if (mine and trial.state.name == "RUNNING"
                        and (folder / "trials" / f"trial_{trial.number:03d}" / "checkpoint.pt").exists()):
                    victim.send_signal(signal.SIGKILL)  # mid-trial, after at least one epoch
                    killed = trial.number
                    break
        assert killed is not None, "the second worker never ran a trial long enough to be killed"
        out, _ = survivor.communicate(timeout=180)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    victim_out = victim.stdout.read()
    assert survivor.returncode == 0, out
    assert victim.returncode == -signal.SIGKILL

    trials = _journal_study(journal, name).get_trials(deepcopy=False)
    slots, surplus = _slots(trials, nb_trials)
    # Exactly nb_trials slots, every one complete; the killed trial is FAIL and its retry
    # (same parameters, same folder) finished it.
    assert len(slots) == nb_trials and all(t.state.name == "COMPLETE" for t in slots.values())
    dead = trials[killed]
    assert dead.state.name == "FAIL"
    retry = slots[killed]
    assert retry.number != killed and retry.system_attrs["retry_history"] == [killed]
    assert retry.params == dead.params
    assert (f"trial {killed + 1}/{nb_trials} (trials/trial_{killed:03d}, worker {socket.gethostname()}:{victim.pid}) "
            "was interrupted; queued again") in out
    # No trial ran twice, none is lost: one folder per slot with each epoch once, and every
    # trial reported once over both workers (the killed one only by the survivor).
    assert sorted(p.name for p in (folder / "trials").iterdir()) == [f"trial_{n:03d}" for n in slots]
    for number in slots:
        history = json.loads((folder / "trials" / f"trial_{number:03d}" / HISTORY_JSON_NAME).read_text())
        assert history["epoch"] == list(range(1, epochs + 1))
    reported = [line.split(" trial ")[1].split("/")[0] for line in (out + victim_out).splitlines()
                if line.startswith("tuning openunmix trial ")]
    # Each slot's place k of "trial k/N", once: never beyond N, although a surplus trial took
    # a number (the roots here can be e.g. 0-3 and 5; they used to print "6/5").
    assert sorted(int(n) for n in reported) == list(range(1, nb_trials + 1))
    assert all(trials[n].state.name == "FAIL" for n in surplus)  # asked at the same moment, never run
    rows = _read_csv(folder / TRIALS_CSV_NAME)
    assert [int(r["trial"]) for r in rows] == list(slots) and {r["state"] for r in rows} == {"COMPLETE"}

    # The best parameters come from the storage: a third worker finds the search complete.
    best_number = min(slots, key=lambda n: (slots[n].value, n))
    assert load_best_params(folder) == slots[best_number].params
    again = tune_profile(str(profile), data_root=dataset_root, results_dir=results, progress=False)["openunmix"]
    assert again.nb_trials_run == 0 and again.best_trial == best_number
    assert again.best_params == slots[best_number].params


def test_storage_specs(tmp_path):
    from optuna.storages import JournalStorage

    from melunmix.training.tune import STORAGE_NAME, open_storage

    assert open_storage(None, tmp_path) == (f"sqlite:///{(tmp_path / STORAGE_NAME).resolve()}",
                                            (tmp_path / STORAGE_NAME).resolve(), False)
    url, label, shared = open_storage("postgresql://me:s3cret@db.example/melunmix", tmp_path)
    assert url == "postgresql://me:s3cret@db.example/melunmix" and shared
    assert "s3cret" not in str(label) and label == "postgresql://me:***@db.example/melunmix"
    storage, label, shared = open_storage(str(tmp_path / "shared" / "journal.log"), tmp_path)
    assert isinstance(storage, JournalStorage) and shared and label == tmp_path / "shared" / "journal.log"
    with pytest.raises(ValueError, match="is a folder; give a journal file path"):
        open_storage(str(tmp_path), tmp_path)
    # A path under a file names the file that is in the way and the flag, not errno 17.
    readme = tmp_path / "README.md"
    readme.write_text("text")
    with pytest.raises(ValueError, match=r"--storage.*lies under .*README\.md, which is a file, not a folder"):
        open_storage(str(readme / "x.journal"), tmp_path)
    with pytest.raises(ValueError, match=r"--storage.*is a folder"):
        open_storage(str(tmp_path), tmp_path)


def test_a_corrupt_journal_is_named_with_the_fix(dataset_root, tmp_path):
    journal = tmp_path / "journal.log"
    settings = make_settings(tune={"nb_trials": 1, "epochs": 1, "storage": str(journal)})
    tune(settings, data_root=dataset_root, out_dir=tmp_path / "search")
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2] + "\n")  # a line cut short
    with pytest.raises(ValueError, match=rf"tuning journal {re.escape(str(journal))} is corrupt .*delete its last"):
        tune(settings, data_root=dataset_root, out_dir=tmp_path / "search")


def test_a_trials_place_counts_slots_not_trial_numbers():
    from melunmix.training.tune import _position

    # Trial 2 was surplus (two workers asked at once): slot 3 is the third of three, never "4/3".
    slots = {0: "a", 1: "b", 3: "c"}
    assert [_position(slots, root) for root in (0, 1, 3)] == [1, 2, 3]
