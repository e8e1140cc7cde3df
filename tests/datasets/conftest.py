"""Fixtures of the tests in tests/datasets/."""

from __future__ import annotations

import numpy as np
import pytest

from datasets_support import RATE, STEMS, dc_stems, noise_stems, write_setup, write_track


@pytest.fixture
def noise_root(tmp_path):
    """4 train tracks (1 of them validation) and 1 test track of noise, 1 s at 8 kHz."""
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for i in range(4):
        write_track(root, "train", f"Artist - Song {i}", noise_stems(rng, RATE))
    write_track(root, "test", "Artist - Test", noise_stems(rng, RATE))
    write_setup(root, ["Artist - Song 3"])
    return root


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def default_cache_in_tmp(monkeypatch, tmp_path):
    """Caches a test does not place itself go to tmp_path, never into the repository."""
    monkeypatch.setenv("MELUNMIX_CACHE_DIR", str(tmp_path / "default-cache"))
    return tmp_path / "default-cache"


@pytest.fixture
def dc_root(tmp_path):
    root = tmp_path / "dc"
    for t in range(3):
        write_track(root, "train", f"DC - {t}", dc_stems(t, 2 * RATE))
    return root


@pytest.fixture
def ramp_root(tmp_path):
    """Left channel holds the track number, right channel the sample index / 10000."""
    root = tmp_path / "ramp"
    nb_samples = 3000
    ramp = np.arange(nb_samples, dtype=np.float32) / 10000
    for t in range(4):
        column = np.full(nb_samples, t + 1, np.float32)
        write_track(root, "train", f"Ramp - {t}", {s: np.stack([column, ramp], 1) for s in STEMS})
    return root
