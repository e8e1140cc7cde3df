"""melunmix.study.exploration: the dataset table."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from melunmix.base.config import load_profile, run_paths
from melunmix.study import exploration, run_setup


def test_dataset_table_measures_loudness_and_vocal_activity(tmp_path):
    rate = 8000
    root = tmp_path / "data"
    t = np.arange(4 * rate) / rate
    for subset, name in (("train", "A - Song"), ("test", "B - Song")):
        folder = root / subset / name
        folder.mkdir(parents=True)
        vocals = np.zeros((len(t), 2), np.float32)
        vocals[: 2 * rate] = 0.5  # constant 0.5 for 2 s: -6.02 dBFS over the sung part, silent after
        other = np.stack([0.1 * np.sin(2 * np.pi * 220 * t)] * 2, 1).astype(np.float32)
        stems = {"vocals": vocals, "drums": other, "bass": other, "other": other}
        stems["mixture"] = sum(stems.values())
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", audio, rate, subtype="FLOAT")
    # the profile's rate is the songs' (songs at another rate are refused: test_roots_any_folder.py)
    settings = load_profile("smoke", overrides={"data": {"root": str(root), "sample_rate": rate}})
    run = run_setup.Run(settings, run_paths(settings, tmp_path), root)
    table = exploration.dataset_table(run)
    assert list(table["track"]) == ["A - Song", "B - Song"] and list(table["split"]) == ["train", "test"]
    row = table.iloc[0]
    assert row["duration_s"] == 4.0
    assert row["vocals_db"] == pytest.approx(20 * np.log10(0.5 * np.sqrt(0.5)), abs=0.01)
    assert row["other_db"] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.01)
    assert row["vocals_active"] == 0.5
