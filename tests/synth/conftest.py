"""Fixtures of the tests in tests/synth/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from melunmix import synth

from synth_support import PARAMS


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return synth.make_dataset(tmp_path_factory.mktemp("gen") / "data", progress=False, **PARAMS)


@pytest.fixture(scope="module")
def manifest(dataset) -> dict:
    return json.loads((dataset / "dataset.json").read_text())
