"""melunmix.stats: museval aggregation, per-seed tables, paired differences against the baseline.

Scores are museval JSON files written by museval's own ``TrackStore`` (cheap: no audio is
separated) and read back by ``load_scores``, or per-track tables built here. References
are independent: the raw JSON through the json module, numpy, scipy, hand computations
and closed forms (identical methods, constant shifts, exact Wilcoxon p-values).
"""

from __future__ import annotations

import json
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from museval_json import raw_track_medians
from melunmix import stats

METRICS = ["SDR", "SIR", "ISR", "SAR"]
TARGETS = ["vocals", "accompaniment"]
TRACKS = ["song A", "song B", "song C"]


def write_museval_json(eval_dir, method, track, values):
    """museval's own file for one track: values = {target: {metric: [frame scores]}}."""
    import museval

    store = museval.TrackStore(track, win=1.0, hop=1.0)
    for target, metrics in values.items():
        store.add_target(target, {k: list(map(float, v)) for k, v in metrics.items()})
    path = eval_dir / method / "test" / f"{track}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.save(path)
    return path


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


def track_medians(eval_dir, method, target, metric):
    raw = raw_track_medians(eval_dir, method)
    return {trk: v for (trk, tg, m), v in raw.items() if tg == target and m == metric}


def per_track(scores: dict[str, np.ndarray | list], tracks=None) -> pd.DataFrame:
    """Per-track long table: method -> one score per song (NaN: not scored), the same for
    every target and metric (accompaniment shifted by -2 dB)."""
    rows = []
    for method, values in scores.items():
        names = tracks or [f"song {i:02d}" for i in range(len(values))]
        for track, value in zip(names, values):
            if value is None:
                continue
            for target, shift in (("vocals", 0.0), ("accompaniment", -2.0)):
                for metric in METRICS:
                    rows.append(dict(method=method, track=track, target=target, metric=metric,
                                     score=float(value) + shift))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- method names


def test_method_registry_agrees_with_models_and_oracles():
    from melunmix.models import MODEL_ALIASES, canonical_model_name
    from melunmix.oracles import ORACLES

    assert set(stats.REFERENCES) == set(ORACLES)
    # every alias the training accepts names the same method in the tables
    for alias in MODEL_ALIASES:
        model = canonical_model_name(alias)
        assert stats.canonical_method(alias.upper()) == model
        assert stats.canonical_method(f"{alias}-half-seed3") == model + stats.HALF_SUFFIX
    assert stats.METHOD_ORDER == ("openunmix", "openunmix-half", "melunmix", "melunmix-half",
                                  "mfccunmix", "mfccunmix-half", "linunmix", "linunmix-half",
                                  "IRM1", "IRM2", "IBM", "MWF", "MIX")
    assert set(stats.METHOD_LABELS) == set(stats.METHOD_ORDER)
    assert stats.METHOD_LABELS["openunmix"] == "Open-Unmix (baseline)"
    assert stats.METHOD_LABELS["melunmix"] == "MelUnmix (mel, proposed)"
    assert stats.METHOD_LABELS["mfccunmix"] == "MelUnmix (MFCC)"
    assert stats.METHOD_LABELS["linunmix"] == "Control (linear branch)"
    assert stats.METHOD_LABELS["linunmix-half"] == "Control (linear branch), half training"


def test_method_names_resolve_and_order():
    assert stats.canonical_method("MelUnmix-half-seed3") == "melunmix-half"
    assert stats.canonical_method("openunmix/seed42") == "openunmix"
    assert stats.canonical_method("proposed") == "melunmix"
    assert stats.canonical_method("baseline-half") == "openunmix-half"
    assert stats.canonical_method("my_model") is None
    assert stats.method_label("melunmix-half-seed1") == "MelUnmix (mel, proposed), half training seed1"
    assert stats.split_seed("melunmix-half-seed7") == ("melunmix-half", 7)
    names = ["MIX", "zzz", "melunmix-seed10", "IRM1", "melunmix-half-seed1", "openunmix",
             "melunmix-seed2", "linunmix", "aaa", "mfccunmix-seed1"]
    assert stats.order_methods(names) == [
        "openunmix", "melunmix-seed2", "melunmix-seed10", "melunmix-half-seed1", "mfccunmix-seed1",
        "linunmix", "aaa", "zzz", "IRM1", "MIX"]
    assert stats.is_reference("MIX") and stats.is_reference("IRM2")
    assert not stats.is_reference("melunmix-half")


# --------------------------------------------------------------------------- museval tables


def test_poster_and_track_tables_equal_raw_json_medians(eval_dir):
    df = stats.load_scores(eval_dir)
    table = stats.poster_table(df)
    assert list(table.index) == ["openunmix-seed1", "openunmix-seed2", "IRM1", "MIX"]
    for method in table.index:
        raw = raw_track_medians(eval_dir, method)
        for target in TARGETS:
            for metric in METRICS:
                values = [v for (_, tg, m), v in raw.items() if tg == target and m == metric]
                assert table.loc[method, (target, metric)] == pytest.approx(np.nanmedian(values))
    counts = stats.track_counts(df)
    assert (counts.to_numpy() == 3).all()


def test_paired_wilcoxon_against_scipy(eval_dir):
    df = stats.load_scores(eval_dir)
    result = stats.paired_wilcoxon(df, "IRM1", "MIX", target="vocals").set_index("metric")
    for metric in METRICS:
        a = track_medians(eval_dir, "IRM1", "vocals", metric)
        b = track_medians(eval_dir, "MIX", "vocals", metric)
        names = sorted(k for k in a if np.isfinite(a[k]) and np.isfinite(b[k]))
        x, y = np.array([a[k] for k in names]), np.array([b[k] for k in names])
        expected = sps.wilcoxon(x, y)
        assert result.loc[metric, "nb_tracks"] == len(names)
        assert result.loc[metric, "statistic"] == pytest.approx(expected.statistic)
        assert result.loc[metric, "pvalue"] == pytest.approx(expected.pvalue)
        assert result.loc[metric, "median_diff"] == pytest.approx(np.median(x - y))
    # closed form: 3 tracks, all differences positive -> W = 0, exact two-sided p = 2 / 2**3
    assert result.loc["SDR", "statistic"] == 0
    assert result.loc["SDR", "pvalue"] == pytest.approx(0.25)


def test_bootstrap_ci_against_numpy(eval_dir):
    df = stats.load_scores(eval_dir)
    n, seed = 200, 7
    table = stats.bootstrap_ci(df, n=n, seed=seed)
    assert len(table) == 4 * 2 * 4
    for row in table.itertuples():
        medians = track_medians(eval_dir, row.method, row.target, row.metric)
        values = np.array([medians[k] for k in sorted(medians) if np.isfinite(medians[k])])
        draws = np.random.default_rng(seed).integers(0, len(values), size=(n, len(values)))
        resampled = sorted(statistics.median(values[idx].tolist()) for idx in draws)

        def quantile(q):  # linear interpolation written out: position q * (n - 1)
            pos = q * (n - 1)
            lo = int(np.floor(pos))
            return resampled[lo] + (pos - lo) * (resampled[min(lo + 1, n - 1)] - resampled[lo])

        assert row.median == pytest.approx(statistics.median(values.tolist()))
        assert row.low == pytest.approx(quantile(0.025))
        assert row.high == pytest.approx(quantile(0.975))
        assert row.low <= row.median <= row.high
    pd.testing.assert_frame_equal(table, stats.bootstrap_ci(df, n=n, seed=seed))


def test_aggregate_seeds_closed_form():
    columns = pd.MultiIndex.from_tuples([("vocals", m) for m in METRICS], names=["target", "metric"])
    table = pd.DataFrame(
        [[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 5.0, 8.0], [5.0, 2.0, 7.0, 0.0], [9.0, 9.0, 9.0, 9.0]],
        index=pd.Index(["melunmix-seed1", "melunmix-seed2", "melunmix-seed10", "IRM2"], name="method"),
        columns=columns,
    )
    out = stats.aggregate_seeds(table).set_index(["method", "metric"])
    sdr = out.loc[("melunmix", "SDR")]
    assert sdr["nb_seeds"] == 3 and sdr["seeds"] == "1,2,10"
    assert sdr["mean"] == pytest.approx(3.0)
    assert sdr["std"] == pytest.approx(2.0)  # sample std of 1, 3, 5
    assert (sdr["min"], sdr["max"]) == (1.0, 5.0)
    assert out.loc[("melunmix", "SIR"), "std"] == 0.0
    assert out.loc[("IRM2", "SDR"), "nb_seeds"] == 1 and np.isnan(out.loc[("IRM2", "SDR"), "std"])


# --------------------------------------------------------------------------- main table


def test_main_table_is_mean_and_sd_over_seeds_with_parameter_counts():
    df = per_track({
        "openunmix-seed1": [1.0, 2.0, 3.0], "openunmix-seed2": [3.0, 4.0, 5.0],  # medians 2, 4
        "melunmix-seed1": [2.0, 2.0, 2.0], "melunmix-seed2": [2.0, 2.0, 2.0],
        "melunmix-half-seed1": [0.0, 1.0, 2.0],
        "MIX": [-1.0, -1.0, -1.0],
    })
    params = {"openunmix-seed1": 100, "openunmix-seed2": 100, "melunmix": 150}
    table = stats.main_table(df, params=params)
    assert list(table.index) == ["openunmix", "melunmix", "melunmix-half", "MIX"]
    assert table.loc["openunmix", "vocals SDR"] == pytest.approx(3.0)
    assert table.loc["openunmix", "vocals SDR sd"] == pytest.approx(np.sqrt(2.0))  # sd of 2, 4
    assert table.loc["melunmix", "vocals SDR sd"] == 0.0
    assert table.loc["openunmix", "accompaniment SAR"] == pytest.approx(1.0)
    assert np.isnan(table.loc["melunmix-half", "vocals SDR sd"])  # one seed
    assert table["seeds"].tolist()[:3] == [2, 2, 1] and pd.isna(table.loc["MIX", "seeds"])
    # a half-training checkpoint is the same network: it takes its model's count
    assert table["params"].tolist()[:3] == [100, 150, 150] and pd.isna(table.loc["MIX", "params"])
    # study.parameter_table's layout gives the same
    frame = pd.DataFrame({"model": ["openunmix", "melunmix"], "class": ["a", "b"],
                          "parameters": [100, 150]})
    pd.testing.assert_frame_equal(stats.main_table(df, params=frame), table)
    assert "params" not in stats.main_table(df).columns
    markdown = stats.main_table_markdown(table)
    assert "| Open-Unmix (baseline) | 2 | 100 | 3.00 ± 1.41 |" in markdown
    assert "| MelUnmix (mel, proposed), half training | 1 | 150 | 1.00 |" in markdown
    with pytest.raises(ValueError, match="disagree"):
        stats.main_table(df, params={"melunmix-seed1": 150, "melunmix-seed2": 151})
    with pytest.raises(ValueError, match="parameter count"):
        stats.main_table(df, params={"melunmix": 1.5})


# --------------------------------------------------------------------------- paired differences


def test_holm_equals_a_hand_computation():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> max 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.5, np.nan, 0.2]), [0.5, np.nan, 0.4])
    np.testing.assert_allclose(stats.holm([0.6, 0.7]), [1.0, 1.0])  # capped at 1
    assert stats.holm([]).shape == (0,)


def test_identical_methods_give_zero_and_a_zero_interval():
    rng = np.random.default_rng(0)
    base = {f"openunmix-seed{s}": rng.normal(5, 2, size=6) for s in (1, 2, 3)}
    same = {name.replace("openunmix", "melunmix"): values for name, values in base.items()}
    paired = stats.paired_differences(per_track({**base, **same}), n_boot=500)
    assert len(paired) == 2 * 4 and set(paired["model"]) == {"melunmix"}
    assert (paired["pairing"] == "seed").all()
    assert (paired["n_songs"] == 6).all() and (paired["n_seeds"] == 3).all()
    for column in ("median_diff", "mean_diff", "ci_low", "ci_high"):
        assert (paired[column] == 0.0).all(), column
    assert (paired["p_wilcoxon"] == 1.0).all() and (paired["p_holm"] == 1.0).all()


def test_a_constant_shift_of_one_db_gives_exactly_one():
    # quarters are exact in binary, so model - baseline is exactly 1.0 in floating point
    rng = np.random.default_rng(1)
    base = {f"openunmix-seed{s}": rng.integers(-40, 40, size=7) / 4 for s in (1, 2)}
    shifted = {name.replace("openunmix", "melunmix"): values + 1.0 for name, values in base.items()}
    paired = stats.paired_differences(per_track({**base, **shifted}), n_boot=300)
    assert (paired["median_diff"] == 1.0).all() and (paired["mean_diff"] == 1.0).all()
    assert (paired["ci_low"] == 1.0).all() and (paired["ci_high"] == 1.0).all()
    # 7 songs, all differences positive (and tied): exact two-sided p = 2 / 2**7
    assert paired["p_wilcoxon"].to_numpy() == pytest.approx(2 / 2**7)


def test_holm_over_the_models_of_a_known_small_example():
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    diffs = {"melunmix": [1, 2, 3, 4, 5],      # all positive: W = 0, p = 2/32
             "mfccunmix": [-1, 2, 3, 4, 5],    # rank 1 negative: W = 1, p = 4/32
             "linunmix": [1, -2, 3, 4, 5]}     # rank 2 negative: W = 2, p = 6/32
    scores = {"openunmix": base, **{m: base + np.array(d, dtype=float) for m, d in diffs.items()}}
    paired = stats.paired_differences(per_track(scores), n_boot=0, metrics=["SDR"], targets=["vocals"])
    assert list(paired["model"]) == ["melunmix", "mfccunmix", "linunmix"]
    np.testing.assert_allclose(paired["p_wilcoxon"], [2 / 32, 4 / 32, 6 / 32])
    for model, d in diffs.items():  # scipy on the same differences
        assert paired.set_index("model").loc[model, "p_wilcoxon"] == pytest.approx(sps.wilcoxon(d).pvalue)
    # Holm by hand: 3 x 0.0625 = 0.1875; 2 x 0.125 = 0.25; 1 x 0.1875 -> max(0.25, 0.1875)
    np.testing.assert_allclose(paired["p_holm"], [0.1875, 0.25, 0.25])
    np.testing.assert_allclose(paired["median_diff"], [3.0, 3.0, 3.0])
    np.testing.assert_allclose(paired["mean_diff"], [3.0, 2.6, 2.2])
    assert paired["ci_low"].isna().all()  # n_boot = 0: no interval


def test_seeds_are_paired_by_number_or_averaged_when_none_is_shared():
    base = {"openunmix-seed1": [0.0, 0.0, 0.0, 0.0], "openunmix-seed2": [2.0, 2.0, 2.0, 2.0]}
    model = {"melunmix-seed1": [1.0, 3.0, 5.0, 7.0], "melunmix-seed2": [3.0, 5.0, 7.0, 9.0],
             "melunmix-seed3": [100.0, 100.0, 100.0, 100.0],  # no baseline seed 3: left out
             "mfccunmix-seed7": [1.0, 2.0, 3.0, 4.0], "mfccunmix-seed8": [3.0, 4.0, 5.0, 6.0]}
    paired = stats.paired_differences(per_track({**base, **model}), n_boot=0, metrics=["SDR"],
                                      targets=["vocals"]).set_index("model")
    mel, mfcc = paired.loc["melunmix"], paired.loc["mfccunmix"]
    assert mel["pairing"] == "seed" and mel["n_seeds"] == mel["n_seeds_baseline"] == 2
    # per song: mean over seeds 1, 2 of (model - baseline) = 1, 3, 5, 7 -> median 4
    assert mel["median_diff"] == 4.0 and mel["mean_diff"] == 4.0
    assert mfcc["pairing"] == "mean" and (mfcc["n_seeds"], mfcc["n_seeds_baseline"]) == (2, 2)
    # per song: mean(1, 3) - mean(0, 2) = 1, then 2, 3, 4 -> median 2.5
    assert mfcc["median_diff"] == 2.5
    text = stats.answer_sentence(paired.reset_index(), "mfccunmix", metric="SDR")
    assert "seed means are compared, not paired" in text


def test_bootstrap_resamples_songs_then_seeds_as_documented():
    rng = np.random.default_rng(5)
    base = {f"openunmix-seed{s}": rng.normal(5, 2, size=8) for s in (1, 2, 3)}
    model = {f"melunmix-seed{s}": base[f"openunmix-seed{s}"] + rng.normal(0.3, 1, size=8) for s in (1, 2, 3)}
    n_boot, seed = 400, 11
    paired = stats.paired_differences(per_track({**base, **model}), n_boot=n_boot, seed=seed,
                                      metrics=["SDR"], targets=["vocals"]).iloc[0]
    d = np.stack([model[f"melunmix-seed{s}"] - base[f"openunmix-seed{s}"] for s in (1, 2, 3)], axis=1)
    # the same draws, one resample at a time
    draws = np.random.default_rng(seed)
    songs = draws.integers(0, 8, size=(n_boot, 8))
    seeds = draws.integers(0, 3, size=(n_boot, 8, 3))
    medians = [np.median([d[songs[b, i], seeds[b, i]].mean() for i in range(8)]) for b in range(n_boot)]
    low, high = np.quantile(medians, [0.025, 0.975])
    assert paired["ci_low"] == pytest.approx(low) and paired["ci_high"] == pytest.approx(high)
    assert paired["median_diff"] == pytest.approx(np.median(d.mean(axis=1)))
    assert paired["ci_low"] < paired["median_diff"] < paired["ci_high"]
    again = stats.paired_differences(per_track({**base, **model}), n_boot=n_boot, seed=seed,
                                     metrics=["SDR"], targets=["vocals"]).iloc[0]
    assert (again["ci_low"], again["ci_high"]) == (paired["ci_low"], paired["ci_high"])
    other = stats.paired_differences(per_track({**base, **model}), n_boot=n_boot, seed=seed + 1,
                                     metrics=["SDR"], targets=["vocals"]).iloc[0]
    assert (other["ci_low"], other["ci_high"]) != (paired["ci_low"], paired["ci_high"])


def test_songs_missing_in_one_method_are_left_out_and_counted():
    base = {"openunmix-seed1": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "openunmix-seed2": [1.0] * 6}
    model = {"melunmix-seed1": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
             "melunmix-seed2": [2.0, None, 2.0, 2.0, np.nan, 2.0]}  # song 1 not scored, song 4 NaN
    paired = stats.paired_differences(per_track({**base, **model}), n_boot=50)
    assert (paired["n_songs"] == 4).all() and (paired["n_songs_excluded"] == 2).all()
    # the four complete songs: (1 + 1) / 2 = 1 each
    assert (paired["median_diff"] == 1.0).all()
    text = stats.answer_sentence(paired)
    assert "4 songs x 2 seeds, 2 songs left out" in text


def test_frame_scores_and_per_track_scores_give_the_same_table(eval_dir):
    df = stats.load_scores(eval_dir)
    from_frames = stats.paired_differences(df, n_boot=100, models=["IRM1"], baseline="MIX")
    from_tracks = stats.paired_differences(stats.track_table(df), n_boot=100, models=["IRM1"],
                                           baseline="MIX")
    pd.testing.assert_frame_equal(from_frames, from_tracks)
    sdr = from_frames[(from_frames["target"] == "vocals") & (from_frames["metric"] == "SDR")].iloc[0]
    a = track_medians(eval_dir, "IRM1", "vocals", "SDR")
    b = track_medians(eval_dir, "MIX", "vocals", "SDR")
    assert sdr["median_diff"] == pytest.approx(np.median([a[t] - b[t] for t in TRACKS]))
    # by default the oracles are not models: with only references and the baseline, no rows
    with pytest.raises(ValueError, match="baseline 'melunmix' has no scores"):
        stats.paired_differences(df, baseline="melunmix")
    with pytest.raises(ValueError, match=r"model\(s\) \['linunmix'\]"):
        stats.paired_differences(df, models=["linunmix"])
    with pytest.raises(ValueError, match="n_boot"):
        stats.paired_differences(df, n_boot=-1)


def test_model_medians_are_seed_means_and_museval_medians_for_one_seed(eval_dir):
    df = stats.load_scores(eval_dir)
    medians = stats.model_medians(df, n_boot=200).set_index(["model", "target", "metric"])
    poster = stats.poster_table(df)
    assert medians.loc[("MIX", "vocals", "SDR"), "median"] == pytest.approx(poster.loc["MIX", ("vocals", "SDR")])
    row = medians.loc[("openunmix", "vocals", "ISR")]
    one = track_medians(eval_dir, "openunmix-seed1", "vocals", "ISR")
    two = track_medians(eval_dir, "openunmix-seed2", "vocals", "ISR")
    assert row["n_seeds"] == 2 and row["n_songs"] == 3
    assert row["median"] == pytest.approx(np.median([(one[t] + two[t]) / 2 for t in TRACKS]))
    assert row["ci_low"] <= row["median"] <= row["ci_high"]


# --------------------------------------------------------------------------- answer in words


def paired_row(**changes):
    row = dict(model="melunmix", baseline="openunmix", target="vocals", metric="SDR", pairing="seed",
               n_songs=16, n_songs_excluded=0, n_seeds=3, n_seeds_baseline=3, median_diff=0.1,
               mean_diff=0.12, ci_low=-0.3, ci_high=0.5, level=0.95, p_wilcoxon=0.42, p_holm=0.84)
    row.update(changes)
    return pd.DataFrame([row])


def test_answer_sentence_wording_follows_the_holm_p():
    text = stats.answer_sentence(paired_row())
    assert text == ("MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.10 dB median vocals SDR "
                    "[95 % CI -0.30, +0.50], 16 songs x 3 seeds; Wilcoxon p = 0.42 (Holm 0.84): "
                    "no significant difference at 5 %.")
    significant = stats.answer_sentence(paired_row(median_diff=0.8, ci_low=0.3, p_wilcoxon=0.004,
                                                   p_holm=0.012))
    assert significant.endswith("higher than the baseline, significant at 5 % after Holm correction.")
    lower = stats.answer_sentence(paired_row(median_diff=-0.8, p_wilcoxon=0.004, p_holm=0.012))
    assert "lower than the baseline, significant" in lower
    only_raw = stats.answer_sentence(paired_row(p_wilcoxon=0.03, p_holm=0.09))
    assert "not significant at 5 % after Holm correction (p < 5 % before it)" in only_raw
    assert "significant at 5 % after Holm correction" not in only_raw.replace("not significant", "")
    few = stats.answer_sentence(paired_row(n_songs=4, n_seeds=1, p_wilcoxon=1.0, p_holm=1.0))
    assert "4 songs x 1 seed;" in few and "with 4 songs the test cannot reach p < 5 %" in few
    assert "cannot reach" not in text
    with pytest.raises(ValueError, match="no paired difference of 'linunmix'"):
        stats.answer_sentence(paired_row(), model="linunmix")


# --------------------------------------------------------------------------- files


def test_write_tables(eval_dir, tmp_path):
    df = stats.load_scores(eval_dir)
    written = stats.write_tables(df, tmp_path / "tables", compare=[("IRM1", "MIX")], bootstrap=50,
                                 params={"openunmix": 1234})
    assert set(written) == {"main", "main_md", "model_medians", "poster", "poster_md", "per_track",
                            "bootstrap_ci", "seeds", "seeds_md", "wilcoxon", "wilcoxon_md"}
    assert all(path.is_file() for path in written.values())
    poster = pd.read_csv(written["poster"], header=[0, 1], index_col=0)
    expected = stats.poster_table(df)
    assert list(poster.index) == list(expected.index)
    np.testing.assert_allclose(poster.to_numpy(), expected.to_numpy(), atol=1e-5)
    markdown = written["poster_md"].read_text()
    assert markdown.splitlines()[0].startswith("| method | vocals SDR | vocals SIR")
    assert f"| MIX | {expected.loc['MIX', ('vocals', 'SDR')]:.3f} |" in markdown
    assert len(pd.read_csv(written["per_track"])) == 4 * 3 * 2 * 4
    wilcoxon = pd.read_csv(written["wilcoxon"])
    assert set(wilcoxon["target"]) == {"vocals", "accompaniment"} and len(wilcoxon) == 8
    main = pd.read_csv(written["main"], index_col=0)
    assert list(main.index) == ["openunmix", "IRM1", "MIX"]
    assert main.loc["openunmix", "params"] == 1234 and main.loc["openunmix", "seeds"] == 2
    sd = stats.aggregate_seeds(expected).set_index(["method", "target", "metric"])
    assert main.loc["openunmix", "vocals SDR sd"] == pytest.approx(
        sd.loc[("openunmix", "vocals", "SDR"), "std"], abs=1e-5)
    # no model besides the baseline: no paired table
    assert "paired_differences" not in written

    # a second model, seeds paired with the baseline's
    for track in TRACKS:
        for seed in (1, 2):
            data = json.loads((eval_dir / f"openunmix-seed{seed}" / "test" / f"{track}.json").read_text())
            values = {t["name"]: {m: [f["metrics"][m] + 0.5 for f in t["frames"]] for m in METRICS}
                      for t in data["targets"]}
            write_museval_json(tmp_path / "eval", f"melunmix-seed{seed}", track, values)
    both = pd.concat([df, stats.load_scores(tmp_path / "eval")], ignore_index=True)
    written = stats.write_tables(both, tmp_path / "tables2", bootstrap=50)
    paired = pd.read_csv(written["paired_differences"])
    assert list(paired["model"].unique()) == ["melunmix"] and len(paired) == 8
    np.testing.assert_allclose(paired["median_diff"], 0.5, atol=1e-5)
    assert "| MelUnmix (mel, proposed) | vocals | SDR | 3 x 2 | +0.50 |" in \
        written["paired_differences_md"].read_text()
