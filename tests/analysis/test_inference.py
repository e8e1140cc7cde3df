"""melunmix.analysis.inference: paired differences against the baseline, crossed bootstrap, Holm, seed-level tests and the equivalence verdict, against numpy, scipy and hand computations."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from melunmix.analysis import inference, result_tables, score_frames, sentences
from melunmix.base import names

from analysis_support import METRICS, TRACKS, coverage, crossed_data, per_track, track_medians


def test_bootstrap_ci_against_numpy(eval_dir):
    df = score_frames.load_scores(eval_dir)
    n, seed = 200, 7
    table = inference.bootstrap_ci(df, n=n, seed=seed)
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
    pd.testing.assert_frame_equal(table, inference.bootstrap_ci(df, n=n, seed=seed))


def test_holm_equals_a_hand_computation():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> max 0.06
    np.testing.assert_allclose(inference.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(inference.holm([0.5, np.nan, 0.2]), [0.5, np.nan, 0.4])
    np.testing.assert_allclose(inference.holm([0.6, 0.7]), [1.0, 1.0])  # capped at 1
    assert inference.holm([]).shape == (0,)


def test_identical_methods_give_zero_and_a_zero_interval():
    rng = np.random.default_rng(0)
    base = {f"openunmix-seed{s}": rng.normal(5, 2, size=6) for s in (1, 2, 3)}
    same = {name.replace("openunmix", "melunmix"): values for name, values in base.items()}
    paired = inference.paired_differences(per_track({**base, **same}), n_boot=500)
    assert len(paired) == 2 * 4 and set(paired["model"]) == {"melunmix"}
    assert (paired["pairing"] == "seed").all()
    assert (paired["n_songs"] == 6).all() and (paired["n_seeds"] == 3).all()
    for column in ("median_diff", "mean_diff", "ci_low", "ci_high"):
        assert (paired[column] == 0.0).all(), column
    assert (paired["p_wilcoxon"] == 1.0).all() and (paired["p_holm"] == 1.0).all()


def test_a_model_trained_elsewhere_is_a_row_but_never_in_a_comparison_or_the_holm_family():
    rng = np.random.default_rng(4)
    base = {f"openunmix-seed{s}": rng.normal(5, 2, size=8) for s in (1, 2, 3)}
    proposed = {f"melunmix-seed{s}": rng.normal(5.3, 2, size=8) for s in (1, 2, 3)}
    alone = inference.paired_differences(per_track({**base, **proposed}), n_boot=100, metrics=["SDR"])
    extra = inference.paired_differences(per_track({**base, **proposed, "umxhq-published": rng.normal(7, 2, size=8)}),
                                     n_boot=100, metrics=["SDR"])
    pd.testing.assert_frame_equal(alone, extra)  # same rows, same Holm-adjusted p-values
    assert not names.is_study_model("umxhq-published") and names.is_study_model("wideunmix-half-seed2")


def test_a_constant_shift_of_one_db_gives_exactly_one():
    # quarters are exact in binary, so model - baseline is exactly 1.0 in floating point
    rng = np.random.default_rng(1)
    base = {f"openunmix-seed{s}": rng.integers(-40, 40, size=7) / 4 for s in (1, 2)}
    shifted = {name.replace("openunmix", "melunmix"): values + 1.0 for name, values in base.items()}
    paired = inference.paired_differences(per_track({**base, **shifted}), n_boot=300)
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
    paired = inference.paired_differences(per_track(scores), n_boot=0, metrics=["SDR"], targets=["vocals"],
                                      controls=False)
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
    paired = inference.paired_differences(per_track({**base, **model}), n_boot=0, metrics=["SDR"],
                                      targets=["vocals"], controls=False).set_index("model")
    mel, mfcc = paired.loc["melunmix"], paired.loc["mfccunmix"]
    assert mel["pairing"] == "seed" and mel["n_seeds"] == mel["n_seeds_baseline"] == 2
    # per song: mean over seeds 1, 2 of (model - baseline) = 1, 3, 5, 7 -> median 4
    assert mel["median_diff"] == 4.0 and mel["mean_diff"] == 4.0
    assert mfcc["pairing"] == "mean" and (mfcc["n_seeds"], mfcc["n_seeds_baseline"]) == (2, 2)
    # per song: mean(1, 3) - mean(0, 2) = 1, then 2, 3, 4 -> median 2.5
    assert mfcc["median_diff"] == 2.5
    text = sentences.answer_sentence(paired.reset_index(), "mfccunmix", metric="SDR")
    assert "seed means are compared, not paired" in text


def test_the_proposed_model_meets_each_control_and_holm_counts_full_training_only():
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    scores = {"openunmix": base, "melunmix": base + [1, 2, 3, 4, 5], "linunmix": base + [-1, 2, 3, 4, 5],
              "mfccunmix": base + [1, -2, 3, 4, 5], "melunmix-half": base + [1, 1, 1, 1, 1]}
    paired = inference.paired_differences(per_track(scores), n_boot=200, metrics=["SDR"], targets=["vocals"])
    pairs = list(zip(paired["model"], paired["baseline"]))
    assert pairs == [("melunmix", "openunmix"), ("melunmix-half", "openunmix"), ("mfccunmix", "openunmix"),
                     ("linunmix", "openunmix"), ("melunmix", "mfccunmix"), ("melunmix", "linunmix")]
    rows = paired.set_index(["model", "baseline"])
    # melunmix - linunmix per song: 2, 0, 0, 0, 0 -> median 0, Wilcoxon drops the zeros
    assert rows.loc[("melunmix", "linunmix"), "median_diff"] == 0.0
    # the half-training row is descriptive: outside the family, no Holm p
    half = rows.loc[("melunmix-half", "openunmix")]
    assert not half["in_family"] and np.isnan(half["p_holm"]) and half["verdict"] == "descriptive"
    family = paired[paired["in_family"]]
    np.testing.assert_allclose(family["p_holm"], inference.holm(family["p_wilcoxon"]))
    assert len(family) == 5


def test_seed_level_test_and_equivalence_on_simulated_studies():
    rng = np.random.default_rng(7)

    def study(effect, seed_sd, nb_seeds=6, nb_songs=24, noise_sd=0.2, offsets=None):
        base = rng.normal(5, 2, size=(nb_songs, nb_seeds))
        d = crossed_data(rng, nb_songs, nb_seeds, effect, song_sd=0.05, seed_sd=seed_sd,
                         noise_sd=noise_sd)
        if offsets is not None:  # these seed offsets exactly
            d = d + np.asarray(offsets)[None, :]
        names = {}
        for k in range(nb_seeds):
            names[f"openunmix-seed{k}"] = base[:, k]
            names[f"melunmix-seed{k}"] = base[:, k] + d[:, k]
        return inference.paired_differences(per_track(names), n_boot=1000, metrics=["SDR"],
                                        targets=["vocals"]).iloc[0]

    same = study(0.0, seed_sd=0.02, noise_sd=0.05)   # no effect, measured precisely
    assert same["verdict"] == "equivalent" and -0.2 < same["eq_low"] < same["eq_high"] < 0.2
    three = study(0.0, seed_sd=0.02, noise_sd=0.05, nb_seeds=3)  # as precise, too few networks
    assert -0.2 < three["eq_low"] < three["eq_high"] < 0.2 and three["verdict"] == "inconclusive"
    assert "equivalence needs 5 seeds or more" in sentences.answer_sentence(pd.DataFrame([three]))
    big = study(1.0, seed_sd=0.05)                    # a clear effect
    assert big["verdict"] == "higher" and big["p_seed"] < 0.01 and big["ci_low"] > 0.5
    # networks disagree (offsets -1.5 .. +1.5 dB, mean 0): every song says "higher" for
    # half the seeds, nothing can be said either way
    noisy = study(0.0, seed_sd=0.0, offsets=[-1.5, -0.9, -0.3, 0.3, 0.9, 1.5])
    # every song gains (+0.15 dB averaged over seeds) but the networks disagree: songs alone
    # would call it significant; the verdict asks the networks too
    songs_only = study(0.0, seed_sd=0.0, noise_sd=0.02, offsets=[0.1, 0.2, 0.3, -0.6, 0.4, 0.5])
    assert songs_only["p_holm"] < 0.001 and songs_only["p_seed"] > 0.05
    assert songs_only["verdict"] == "inconclusive"
    text = sentences.answer_sentence(pd.DataFrame([songs_only]))
    assert "but not at the level of trained networks" in text
    assert noisy["verdict"] == "inconclusive"
    assert noisy["ci_high"] - noisy["ci_low"] > 0.8
    # the seed-level p against scipy on the per-seed medians
    base = {f"openunmix-seed{k}": np.arange(5.0) for k in range(4)}
    model = {f"melunmix-seed{k}": np.arange(5.0) + shift for k, shift in enumerate([0.1, 0.3, 0.2, 0.5])}
    row = inference.paired_differences(per_track({**base, **model}), n_boot=0, metrics=["SDR"],
                                   targets=["vocals"]).iloc[0]
    assert row["p_seed"] == pytest.approx(sps.ttest_1samp([0.1, 0.3, 0.2, 0.5], 0.0).pvalue)
    assert row["verdict"] == ""  # no interval without resamples


def test_songs_missing_in_one_method_are_left_out_and_counted():
    base = {"openunmix-seed1": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "openunmix-seed2": [1.0] * 6}
    model = {"melunmix-seed1": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
             "melunmix-seed2": [2.0, None, 2.0, 2.0, np.nan, 2.0]}  # song 1 not scored, song 4 NaN
    paired = inference.paired_differences(per_track({**base, **model}), n_boot=50)
    assert (paired["n_songs"] == 4).all() and (paired["n_songs_excluded"] == 2).all()
    # the four complete songs: (1 + 1) / 2 = 1 each
    assert (paired["median_diff"] == 1.0).all()
    text = sentences.answer_sentence(paired)
    assert "4 songs x 2 seeds, 2 songs left out" in text


def test_a_residue_score_leaves_the_song_out_of_a_paired_difference():
    a = per_track({"openunmix": [1.0, 2.0, 3.0, 4.0], "melunmix": [2.0, 3.0, np.inf, 5.0]})
    row = inference.paired_differences(a, metrics=["SDR"], targets=["vocals"], n_boot=0).iloc[0]
    assert row["n_songs"] == 3 and row["n_songs_excluded"] == 1 and row["median_diff"] == 1.0


def test_one_network_or_too_few_songs_allow_no_verdict():
    rng = np.random.default_rng(3)
    base = rng.normal(5, 1, size=12)
    one = inference.paired_differences(per_track({"openunmix": base, "melunmix": base + 0.01}), n_boot=200,
                                   metrics=["SDR"], targets=["vocals"]).iloc[0]
    # identical up to 0.01 dB, yet one seed says nothing about other trained networks
    assert one["verdict"] == "one network" and -0.2 < one["eq_low"] <= one["eq_high"] < 0.2
    text = sentences.answer_sentence(pd.DataFrame([one]))
    assert "a demonstration, not evidence" in text and "equivalent" not in text
    # songs alone significant, the verdict not a difference: the sentence never says "higher than"
    for verdict in ("one network", "equivalent", "inconclusive", "too few songs"):
        row = pd.DataFrame([dict(one, p_wilcoxon=0.001, p_holm=0.002, verdict=verdict)])
        text = sentences.answer_sentence(row)
        assert "higher than" not in text and "significant over songs" in text, verdict
    seeds = {f"{m}-seed{k}": base[:4] + (0.01 * k if m == "melunmix" else 0) for m in ("openunmix", "melunmix")
             for k in (1, 2)}
    few = inference.paired_differences(per_track(seeds), n_boot=200, metrics=["SDR"], targets=["vocals"]).iloc[0]
    assert few["verdict"] == "too few songs"


def test_crossed_bootstrap_covers_a_known_effect_where_seeds_matter():
    """Where networks differ more than songs (seed sd 0.3 dB, song sd 0.2 dB, 24 songs x 6
    seeds), the crossed interval holds the true effect close to 95 % of the time; drawing
    seeds inside each song (nested) averages the seed offsets away and covers far less."""
    crossed = coverage(24, 6, 0.3, crossed=True, song_sd=0.2)
    nested = coverage(24, 6, 0.3, crossed=False, song_sd=0.2)
    # 6 seeds: the percentile bootstrap shrinks the seed variance by 5/6; 300 studies: +-2.5 %
    assert crossed >= 0.85, crossed
    assert nested <= 0.75, nested
    assert crossed - nested >= 0.15


def test_without_a_seed_effect_the_crossed_interval_still_covers():
    assert coverage(24, 5, -0.2, crossed=True, seed_sd=0.0) >= 0.88


def test_paired_wilcoxon_against_scipy(eval_dir):
    df = score_frames.load_scores(eval_dir)
    result = inference.paired_wilcoxon(df, "IRM1", "MIX", target="vocals").set_index("metric")
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


def test_model_medians_are_seed_means_and_museval_medians_for_one_seed(eval_dir):
    df = score_frames.load_scores(eval_dir)
    medians = inference.model_medians(df, n_boot=200).set_index(["model", "target", "metric"])
    poster = result_tables.poster_table(df)
    assert medians.loc[("MIX", "vocals", "SDR"), "median"] == pytest.approx(poster.loc["MIX", ("vocals", "SDR")])
    row = medians.loc[("openunmix", "vocals", "ISR")]
    one = track_medians(eval_dir, "openunmix-seed1", "vocals", "ISR")
    two = track_medians(eval_dir, "openunmix-seed2", "vocals", "ISR")
    assert row["n_seeds"] == 2 and row["n_songs"] == 3
    assert row["median"] == pytest.approx(np.median([(one[t] + two[t]) / 2 for t in TRACKS]))
    assert row["ci_low"] <= row["median"] <= row["ci_high"]
