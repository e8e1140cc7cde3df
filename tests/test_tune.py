"""Tuning: a tiny search writes its table and best parameters, resumes, and feeds training.

The dataset is generated at 16 kHz and the search runs at 8 kHz (resampled into a
temporary cache), as the poster tuned at a lower rate than it trained at.
"""

from __future__ import annotations

import csv
import json

import optuna
import pytest
import torch

from melunmix.config import settings_from_dict
from melunmix.synth import make_dataset
from melunmix.train import HISTORY_JSON_NAME, SETTINGS_JSON_NAME, prepare_data, train
from melunmix.tune import (
    BEST_PARAMS_NAME,
    HISTORIES_CSV_NAME,
    STORAGE_NAME,
    STUDY_NAME,
    TRIALS_CSV_NAME,
    load_best_params,
    search_space,
    tune,
)

SPACE = {"lr": [1e-3, 3e-2, "log"], "lr_decay_gamma": [0.1, 0.9, "linear"]}


def make_settings(**sections):
    values = {
        "name": "test",
        "data": {"sample_rate": 16000, "seq_dur": 1.0, "samples_per_track": 4},
        "stft": {"n_fft": 256, "n_hop": 128, "bandwidth": 4000.0},
        "model": {"hidden_size": 16, "nb_layers": 1, "n_mels": 16},
        "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "progress": False, "seeds": [3]},
        "tune": {"sample_rate": 8000, "model": "openunmix", "nb_trials": 2, "epochs": 2,
                 "samples_per_track": 2, "seed": 5, "space": SPACE},
    }
    for section, overrides in sections.items():
        values[section] = {**values.get(section, {}), **overrides}
    return settings_from_dict(values)


@pytest.fixture(scope="module", autouse=True)
def environment(tmp_path_factory):
    # The resample cache would default to <repo>/data/cache: keep it in a temporary folder.
    patch = pytest.MonkeyPatch()
    patch.setenv("MELUNMIX_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    patch.undo()


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "synth", nb_train=3, nb_valid=1, nb_test=1,
                        duration=4.0, seed=1, sample_rate=16000, progress=False)


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
        assert 1e-3 <= float(row["lr"]) <= 3e-2 and 0.1 <= float(row["lr_decay_gamma"]) <= 0.9
        trial_dir = out_dir / "trials" / f"trial_{int(row['trial']):03d}"
        history = json.loads((trial_dir / HISTORY_JSON_NAME).read_text())
        # Each trial is a short run at the tuning rate with its own parameters...
        assert history["epoch"] == [1, 2] and int(row["nb_epochs"]) == 2
        assert history["lr"][0] == float(row["lr"])
        saved = json.loads((trial_dir / SETTINGS_JSON_NAME).read_text())
        assert saved["sample_rate"] == 8000 and saved["model_config"]["sample_rate"] == 8000
        assert saved["settings"]["data"]["samples_per_track"] == 2
        assert saved["train"]["lr_decay_gamma"] == float(row["lr_decay_gamma"])
        # ... whose objective is its best validation loss.
        assert float(row["best_valid_loss"]) == min(history["valid_loss"])
        assert float(row["time_s"]) == pytest.approx(sum(history["epoch_time"]), abs=1e-3)
    assert rows[0]["lr"] != rows[1]["lr"]

    histories = _read_csv(out_dir / HISTORIES_CSV_NAME)
    assert [(r["trial"], r["epoch"]) for r in histories] == [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]

    best_row = min(rows, key=lambda r: float(r["best_valid_loss"]))
    best = json.loads((out_dir / BEST_PARAMS_NAME).read_text())
    assert best["search"]["trial"] == int(best_row["trial"]) == search.best_trial
    assert best["search"]["best_valid_loss"] == float(best_row["best_valid_loss"])
    expected = {"lr": float(best_row["lr"]), "lr_decay_gamma": float(best_row["lr_decay_gamma"])}
    assert {k: best[k] for k in expected} == expected
    assert load_best_params(out_dir) == expected == search.best_params
    assert best["search"]["sample_rate"] == 8000 and (out_dir / STORAGE_NAME).is_file()
    assert list(search.trials["trial"]) == [0, 1]


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


def test_interrupted_trial_is_resumed_from_its_checkpoint(dataset_root, tmp_path):
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
    from melunmix.tune import trial_settings

    data = prepare_data(trial_settings(settings, {}), data_root=dataset_root, stats_dir=out_dir / "features",
                        sample_rate=8000, progress=False)
    partial = train("openunmix", trial_settings(settings, trial.params), data,
                    out_dir / "trials" / "trial_000", seed=5, stop_after=1)
    assert partial.last_epoch == 1 and not partial.finished

    resumed = tune(settings, data_root=dataset_root, out_dir=out_dir)
    assert resumed.nb_trials_run == 1 and list(resumed.trials["trial"]) == [0]
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
    assert saved["tuned_from"] == str(search.out_dir / BEST_PARAMS_NAME)
    assert saved["sample_rate"] == 16000  # tuned at 8 kHz, trained at the profile's rate

    # use_tuned off: the profile's own learning rate.
    plain = train("openunmix", make_settings(train={"epochs": 1, "use_tuned": False}), data,
                  tmp_path / "plain", tuning_dir=search.out_dir)
    assert plain.history["lr"][0] == settings.train.lr


def test_changed_search_settings_are_refused(search, dataset_root):
    with pytest.raises(ValueError, match=r"study\.db belongs to another tuning search.*tune\.epochs: 2 there, 3 here"):
        tune(make_settings(tune={"epochs": 3}), data_root=dataset_root, out_dir=search.out_dir)


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
