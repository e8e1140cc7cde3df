"""Runs trained side by side (one process, one thread each) are the runs trained one after
the other: same histories, same weights; a failing run's error reaches the caller."""

from __future__ import annotations

import json

import pytest
import torch

from melunmix.base.names import SETTINGS_JSON_NAME
from melunmix.models import networks as models
from melunmix.training.side_by_side import RunSpec, jobs_for, train_side_by_side
from melunmix.training.training_data import prepare_data

from train_support import SAMPLE_RATE, make_settings


@pytest.fixture(scope="module")
def data(small_dataset, tmp_path_factory):
    root = small_dataset(seed=1, sample_rate=SAMPLE_RATE)
    return prepare_data(make_settings(), data_root=root, stats_dir=tmp_path_factory.mktemp("features"),
                        progress=False)


def _specs(folder, runs):
    return [RunSpec(f"{model}-seed{seed}", model, seed, folder / f"{model}-{seed}") for model, seed in runs]


def test_side_by_side_equals_one_after_the_other(data, tmp_path, single_torch_thread):
    settings = make_settings(train={"epochs": 2})
    runs = [("openunmix", 7), ("melunmix", 7), ("openunmix", 8)]
    serial = train_side_by_side(_specs(tmp_path / "serial", runs), settings, data, jobs=1)
    parallel = train_side_by_side(_specs(tmp_path / "parallel", runs), settings, data, jobs=2)
    assert list(parallel) == list(serial) == ["openunmix-seed7", "melunmix-seed7", "openunmix-seed8"]
    for method in serial:
        a, b = serial[method], parallel[method]
        assert b.finished and not b.already_finished
        for column in ("train_loss", "valid_loss", "lr"):
            assert a.history[column] == b.history[column], (method, column)  # exact
        state_a, state_b = models.load_model(a.weights).state_dict(), models.load_model(b.weights).state_dict()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), method
        assert json.loads((b.out_dir / SETTINGS_JSON_NAME).read_text())["threads"] == 1
    # The two seeds differ: the workers did not share a random stream.
    assert parallel["openunmix-seed7"].history["train_loss"] != parallel["openunmix-seed8"].history["train_loss"]
    again = train_side_by_side(_specs(tmp_path / "parallel", runs), settings, data, jobs=2)
    assert all(result.already_finished for result in again.values())


def test_a_failing_run_raises_in_the_caller(data, tmp_path):
    settings = make_settings(train={"epochs": 1})
    specs = _specs(tmp_path, [("openunmix", 7), ("openunmix", 8)])
    (specs[1].out_dir).parent.mkdir(parents=True, exist_ok=True)
    specs[1].out_dir.write_text("a file where the run's folder goes")
    with pytest.raises(Exception, match="openunmix-8"):
        train_side_by_side(specs, settings, data, jobs=2)


def test_jobs_default_to_the_cores_and_never_exceed_the_runs(monkeypatch):
    monkeypatch.setattr("melunmix.base.processes.usable_cores", lambda: 2)
    assert jobs_for(make_settings(train={"jobs": None}), 25) == 2
    assert jobs_for(make_settings(train={"jobs": 4}), 3) == 3
    assert jobs_for(make_settings(train={"jobs": 1}), 25) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert jobs_for(make_settings(train={"jobs": 4}), 25) == 1  # torchrun: runs are data parallel instead
    with pytest.raises(ValueError, match="jobs"):
        make_settings(train={"jobs": 0})
