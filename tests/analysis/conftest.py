"""Fixtures of the tests in tests/analysis/."""

from __future__ import annotations

import numpy as np
import pytest

from analysis_support import METRICS, TARGETS, TRACKS, write_museval_json


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    """IRM1 (clearly above MIX on every track), MIX and two seeds of a model, 5 frames each,
    one NaN frame (a silent window) per track."""
    out = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(3)
    for method, offset in (("IRM1", 12.0), ("MIX", -3.0), ("openunmix-seed1", 4.0),
                           ("openunmix-seed2", 4.5)):
        for track in TRACKS:
            values = {}
            for target in TARGETS:
                values[target] = {m: (offset + rng.normal(size=5)).tolist() for m in METRICS}
                values[target]["SDR"][1] = np.nan
            write_museval_json(out, method, track, values)
    return out


@pytest.fixture
def museval_scores(tmp_path):
    """Per-frame scores as museval writes and reads them: JSON per track, MethodStore."""
    import museval

    rng = np.random.default_rng(1)
    store = museval.MethodStore()
    for m, method in enumerate(["openunmix", "melunmix", "MIX"]):
        folder = tmp_path / "eval" / method
        (folder / "test").mkdir(parents=True)
        for track in ["song A", "song B", "song C"]:
            track_store = museval.TrackStore(track, win=1.0, hop=1.0)
            for target in ["vocals", "accompaniment"]:
                values = {k: (m + rng.normal(size=6)).tolist() for k in ["SDR", "SIR", "ISR", "SAR"]}
                values["SDR"][2] = np.nan  # a silent window: museval writes NaN
                track_store.add_target(target, values)
            track_store.save(folder / "test" / f"{track}.json")
        store.add_eval_dir(folder)
    return store
