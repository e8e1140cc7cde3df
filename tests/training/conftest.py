"""Fixtures of the training tests: the small dataset prepared for training, reference runs."""

from __future__ import annotations

import pytest

from melunmix.training.train import train
from melunmix.training.training_data import prepare_data

from train_support import EXPONENTIAL, SAMPLE_RATE, make_settings


@pytest.fixture(scope="module")
def dataset_root(small_dataset):
    return small_dataset(sample_rate=SAMPLE_RATE)


@pytest.fixture(scope="module")
def data(dataset_root, tmp_path_factory):
    return prepare_data(make_settings(), data_root=dataset_root,
                        stats_dir=tmp_path_factory.mktemp("features"), progress=False)


@pytest.fixture(scope="module")
def one_thread(single_torch_thread):
    # Bit-exact comparisons between runs (and with a child process) need one fixed
    # thread count; one thread is also the fastest for models this small.
    yield


@pytest.fixture(scope="module")
def reference_run(data, tmp_path_factory):
    """An uninterrupted 3-epoch baseline run, shared by the tests that compare with it."""
    return train("openunmix", make_settings(), data, tmp_path_factory.mktemp("runs") / "reference")


@pytest.fixture(scope="module")
def exponential_run(data, tmp_path_factory):
    """An uninterrupted 3-epoch run with the per-epoch (exponential) decay."""
    return train("openunmix", make_settings(train=EXPONENTIAL), data, tmp_path_factory.mktemp("runs") / "exp")
