"""melunmix.analysis.score_frames: museval JSON read into one table and aggregated as museval does (raw JSON medians, residue as inf)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melunmix.analysis import inference, result_tables, score_frames

from analysis_support import TRACKS, track_medians, write_museval_json


def test_frame_scores_and_per_track_scores_give_the_same_table(eval_dir):
    df = score_frames.load_scores(eval_dir)
    from_frames = inference.paired_differences(df, n_boot=100, models=["IRM1"], baseline="MIX")
    from_tracks = inference.paired_differences(result_tables.track_table(df), n_boot=100, models=["IRM1"],
                                           baseline="MIX")
    pd.testing.assert_frame_equal(from_frames, from_tracks)
    sdr = from_frames[(from_frames["target"] == "vocals") & (from_frames["metric"] == "SDR")].iloc[0]
    a = track_medians(eval_dir, "IRM1", "vocals", "SDR")
    b = track_medians(eval_dir, "MIX", "vocals", "SDR")
    assert sdr["median_diff"] == pytest.approx(np.median([a[t] - b[t] for t in TRACKS]))
    # by default the oracles are not models: with only references and the baseline, no rows
    with pytest.raises(ValueError, match="baseline 'melunmix' has no scores"):
        inference.paired_differences(df, baseline="melunmix")
    with pytest.raises(ValueError, match=r"model\(s\) \['linunmix'\]"):
        inference.paired_differences(df, models=["linunmix"])
    with pytest.raises(ValueError, match="n_boot"):
        inference.paired_differences(df, n_boot=-1)


def test_ratios_above_the_residue_ceiling_are_inf_in_every_table_and_never_compared(tmp_path):
    """MIX's SAR (the mixture carries no artefacts: signal over float32 round-off, ~147 dB)
    is read as inf: its medians and intervals are inf, and a comparison never uses it."""
    sar = {"song A": [146.8, 147.1, 146.9], "song B": [147.3, np.nan, 147.0], "song C": [145.0] * 3}
    for track, frames in sar.items():
        other = {"SIR": [5.0] * 3, "ISR": [6.0] * 3}
        write_museval_json(tmp_path, "MIX", track,
                           {"vocals": {"SDR": [1.0, 2.0, 3.0], "SAR": frames, **other}})
        write_museval_json(tmp_path, "openunmix", track,
                           {"vocals": {"SDR": [4.0, 5.0, 6.0], "SAR": [99.0, 101.0, 8.0], **other}})
    scores = score_frames.load_scores(tmp_path)
    mix_sar = scores[(scores["method"] == "MIX") & (scores["metric"] == "SAR")]["score"]
    assert mix_sar.isna().sum() == 1 and np.isinf(mix_sar.dropna()).all()
    model_sar = scores[(scores["method"] == "openunmix") & (scores["metric"] == "SAR")]["score"]
    assert sorted(model_sar)[:2] == [8.0, 8.0] and (model_sar == 99.0).sum() == 3
    assert np.isposinf(model_sar).sum() == 3  # 101 dB: residue; 99 dB: a measurement

    poster = result_tables.poster_table(scores)
    assert poster.loc["MIX", ("vocals", "SAR")] == np.inf
    assert poster.loc["MIX", ("vocals", "SDR")] == 2.0
    assert poster.loc["openunmix", ("vocals", "SAR")] == 99.0  # median of 99, inf, 8
    ci = inference.bootstrap_ci(scores, n=50).set_index(["method", "metric"])
    assert (ci.loc[("MIX", "SAR"), ["median", "low", "high"]] == np.inf).all()
    wilcoxon = inference.paired_wilcoxon(scores, "openunmix", "MIX", metrics=["SDR"])
    assert wilcoxon["nb_tracks"].tolist() == [3]
    markdown = result_tables.main_table_markdown(result_tables.main_table(scores))
    mix_row = next(line for line in markdown.splitlines() if line.startswith("| MIX"))
    assert mix_row.split(" | ")[-1] == "inf |" and "147" not in markdown
    assert "inf: above 100 dB, a ratio to floating-point residue" in markdown
    from melunmix.study import report
    poster_md = report.markdown_table(result_tables.poster_table(scores), ".3f")
    assert "| inf |" in poster_md and "inf: above 100 dB" in poster_md and "146." not in poster_md
    # a per-track table written by an older version (147 dB as a number) reads the same
    old = result_tables.track_table(scores).replace(np.inf, 147.2)
    assert result_tables.poster_table(old).loc["MIX", ("vocals", "SAR")] == np.inf
