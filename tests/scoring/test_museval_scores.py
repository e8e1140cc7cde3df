"""melunmix.scoring.museval_scores: one track's scores equal museval's on a musdb track; bad estimates refused."""

from __future__ import annotations

import json
import re

import museval
import numpy as np
import pytest

from melunmix.scoring.museval_scores import score_estimates, track_json_path, write_track_scores
from melunmix.scoring.track_audio import load_track
from melunmix.separation.oracles import oracle_estimates

from evaluate_support import DURATION, RATE


def test_file_equals_museval_on_a_musdb_track(tracks, data_root, tmp_path):
    """Our loader, scoring and file vs ``museval.eval_mus_track`` on musdb's own track.

    musdb lists the track and defines its targets (accompaniment = bass + drums + other);
    its stems are given the float samples of the WAV files, because musdb's ffmpeg reads
    round them to 16 bit, and the SIR/ISR split of BSS Eval is ill-conditioned for stems
    that are panned mono (rank-one stereo images), as the generated ones are.
    """
    import musdb
    import soundfile as sf

    db = musdb.DB(root=str(data_root), setup_file="setup.yaml", is_wav=True, subsets="test")
    track = db.tracks[0]
    assert track.name == tracks[0].name
    for source in track.sources.values():
        source.audio = sf.read(source.path, always_2d=True)[0]
    ours = load_track(tracks[0])
    theirs = load_track(track)  # the musdb path of load_track
    for key in ("vocals", "accompaniment"):
        np.testing.assert_allclose(theirs.references[key], ours.references[key], atol=1e-7)
    for key in ("vocals", "drums", "bass", "other"):
        np.testing.assert_array_equal(theirs.stems[key], ours.stems[key])

    estimates = oracle_estimates("IRM1", ours.mixture, ours.stems)
    museval.eval_mus_track(track, estimates, output_dir=str(tmp_path / "museval"))
    path = track_json_path(tmp_path / "ours", "IRM1", ours.name)
    write_track_scores(score_estimates(ours, estimates, scorer="museval"), path)
    assert path == tmp_path / "ours" / "IRM1" / "test" / f"{track.name}.json"
    reference = tmp_path / "museval" / "test" / f"{track.name}.json"
    assert path.read_bytes() == reference.read_bytes()
    # The fast scorer (the default) writes the same file, to museval's own round-off.
    fast = track_json_path(tmp_path / "fast", "IRM1", ours.name)
    write_track_scores(score_estimates(ours, estimates), fast)
    theirs_json, fast_json = json.loads(reference.read_text()), json.loads(fast.read_text())
    assert [t["name"] for t in fast_json["targets"]] == [t["name"] for t in theirs_json["targets"]]
    for target_fast, target_ref in zip(fast_json["targets"], theirs_json["targets"]):
        assert len(target_fast["frames"]) == len(target_ref["frames"])
        for frame_fast, frame_ref in zip(target_fast["frames"], target_ref["frames"]):
            assert frame_fast["time"] == frame_ref["time"]
            for metric, value in frame_ref["metrics"].items():
                assert frame_fast["metrics"][metric] == pytest.approx(value, abs=1e-2, nan_ok=True)
    with pytest.raises(ValueError, match="scorer must be one of"):
        score_estimates(ours, estimates, scorer="bss")


def test_bad_estimates_are_refused(one_track):
    mix = one_track.mixture
    good = {"vocals": mix * 0.5, "accompaniment": mix * 0.5}
    name = re.escape(one_track.name)
    short = int(RATE * DURATION) - 1
    with pytest.raises(ValueError, match=rf"vocals estimate of track '{name}' has shape \({short}, 2\)"):
        score_estimates(one_track, {**good, "vocals": mix[:-1]})
    nan = mix.copy()
    nan[100, 1] = np.nan
    with pytest.raises(ValueError, match=f"accompaniment estimate of track '{name}' has NaN"):
        score_estimates(one_track, {**good, "accompaniment": nan})
    with pytest.raises(ValueError, match="no 'accompaniment' estimate.*residual=True"):
        score_estimates(one_track, {"vocals": mix})
