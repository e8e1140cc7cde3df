"""melunmix.analysis.stats: museval aggregation, per-seed tables, paired differences against the baseline.

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
from melunmix.base import names
from melunmix.analysis import inference, plateau, result_tables, score_frames, sentences

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


# --------------------------------------------------------------------------- museval tables


def test_poster_and_track_tables_equal_raw_json_medians(eval_dir):
    df = score_frames.load_scores(eval_dir)
    table = result_tables.poster_table(df)
    assert list(table.index) == ["openunmix-seed1", "openunmix-seed2", "IRM1", "MIX"]
    for method in table.index:
        raw = raw_track_medians(eval_dir, method)
        for target in TARGETS:
            for metric in METRICS:
                values = [v for (_, tg, m), v in raw.items() if tg == target and m == metric]
                assert table.loc[method, (target, metric)] == pytest.approx(np.nanmedian(values))
    counts = result_tables.track_counts(df)
    assert (counts.to_numpy() == 3).all()


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


def test_aggregate_seeds_closed_form():
    columns = pd.MultiIndex.from_tuples([("vocals", m) for m in METRICS], names=["target", "metric"])
    table = pd.DataFrame(
        [[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 5.0, 8.0], [5.0, 2.0, 7.0, 0.0], [9.0, 9.0, 9.0, 9.0]],
        index=pd.Index(["melunmix-seed1", "melunmix-seed2", "melunmix-seed10", "IRM2"], name="method"),
        columns=columns,
    )
    out = result_tables.aggregate_seeds(table).set_index(["method", "metric"])
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
    table = result_tables.main_table(df, params=params)
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
    pd.testing.assert_frame_equal(result_tables.main_table(df, params=frame), table)
    assert "params" not in result_tables.main_table(df).columns
    markdown = result_tables.main_table_markdown(table)
    assert "| Open-Unmix (baseline) | 2 | 100 | 3.00 ± 1.41 |" in markdown
    assert "| MelUnmix (mel, proposed), half training | 1 | 150 | 1.00 |" in markdown
    with pytest.raises(ValueError, match="disagree"):
        result_tables.main_table(df, params={"melunmix-seed1": 150, "melunmix-seed2": 151})
    with pytest.raises(ValueError, match="parameter count"):
        result_tables.main_table(df, params={"melunmix": 1.5})


# --------------------------------------------------------------------------- paired differences


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


def crossed_data(rng, nb_songs, nb_seeds, effect, song_sd=1.0, seed_sd=0.3, noise_sd=0.2):
    """Paired differences d[song, seed] = effect + song + seed + noise: a seed is one network
    that scores every song (its offset is shared by all songs), songs differ in difficulty."""
    song = rng.normal(0, song_sd, size=(nb_songs, 1))
    seed = rng.normal(0, seed_sd, size=(1, nb_seeds))
    return effect + song + seed + rng.normal(0, noise_sd, size=(nb_songs, nb_seeds))


def coverage(nb_songs, nb_seeds, effect, crossed, reps=300, n_boot=400, **sd):
    """How often the 95 % interval holds the true effect, over simulated studies."""
    rng = np.random.default_rng(2024)
    hits = 0
    for rep in range(reps):
        d = crossed_data(rng, nb_songs, nb_seeds, effect, **sd)
        if crossed:
            draws = inference.crossed_bootstrap(d, np.zeros_like(d), True, n_boot, rep)
        else:  # the former scheme: seeds redrawn independently inside each song
            boot = np.random.default_rng(rep)
            songs = boot.integers(0, nb_songs, size=(n_boot, nb_songs))[..., None]
            seeds = boot.integers(0, nb_seeds, size=(n_boot, nb_songs, nb_seeds))
            draws = np.median(d[songs, seeds].mean(axis=-1), axis=1)
        low, high = np.quantile(draws, [0.025, 0.975])
        hits += low <= effect <= high
    return hits / reps


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


# --------------------------------------------------------------------------- answer in words


def paired_row(**changes):
    row = dict(model="melunmix", baseline="openunmix", target="vocals", metric="SDR", pairing="seed",
               n_songs=16, n_songs_excluded=0, n_seeds=3, n_seeds_baseline=3, median_diff=0.1,
               mean_diff=0.12, ci_low=-0.3, ci_high=0.5, level=0.95, p_wilcoxon=0.42, p_holm=0.84)
    row.update(changes)
    return pd.DataFrame([row])


def test_answer_sentence_wording_follows_the_holm_p():
    text = sentences.answer_sentence(paired_row())
    assert text == ("MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.10 dB median vocals SDR "
                    "[95 % CI -0.30, +0.50], 16 songs x 3 seeds; Wilcoxon p = 0.42 (Holm 0.84): "
                    "no significant difference at 5 %.")
    significant = sentences.answer_sentence(paired_row(median_diff=0.8, ci_low=0.3, p_wilcoxon=0.004,
                                                   p_holm=0.012))
    assert significant.endswith("higher than the baseline, significant at 5 % after Holm correction.")
    lower = sentences.answer_sentence(paired_row(median_diff=-0.8, p_wilcoxon=0.004, p_holm=0.012))
    assert "lower than the baseline, significant" in lower
    only_raw = sentences.answer_sentence(paired_row(p_wilcoxon=0.03, p_holm=0.09))
    assert "not significant at 5 % after Holm correction (p < 5 % before it)" in only_raw
    assert "significant at 5 % after Holm correction" not in only_raw.replace("not significant", "")
    few = sentences.answer_sentence(paired_row(n_songs=4, n_seeds=1, p_wilcoxon=1.0, p_holm=1.0))
    assert "4 songs x 1 seed;" in few and "with 4 songs the test cannot reach p < 5 %" in few
    assert "cannot reach" not in text
    with pytest.raises(ValueError, match="no paired difference of 'linunmix'"):
        sentences.answer_sentence(paired_row(), model="linunmix")


# --------------------------------------------------------------------------- files


def test_write_tables(eval_dir, tmp_path):
    df = score_frames.load_scores(eval_dir)
    written = result_tables.write_tables(df, tmp_path / "tables", compare=[("IRM1", "MIX")], bootstrap=50,
                                 params={"openunmix": 1234})
    assert set(written) == {"main", "main_md", "model_medians", "poster", "poster_md", "per_track",
                            "bootstrap_ci", "seeds", "seeds_md", "wilcoxon", "wilcoxon_md"}
    assert all(path.is_file() for path in written.values())
    poster = pd.read_csv(written["poster"], header=[0, 1], index_col=0)
    expected = result_tables.poster_table(df)
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
    sd = result_tables.aggregate_seeds(expected).set_index(["method", "target", "metric"])
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
    both = pd.concat([df, score_frames.load_scores(tmp_path / "eval")], ignore_index=True)
    written = result_tables.write_tables(both, tmp_path / "tables2", bootstrap=50)
    paired = pd.read_csv(written["paired_differences"])
    assert list(paired["model"].unique()) == ["melunmix"] and len(paired) == 8
    np.testing.assert_allclose(paired["median_diff"], 0.5, atol=1e-5)
    assert "| MelUnmix (mel, proposed) | Open-Unmix (baseline) | vocals | SDR | 3 x 2 | +0.50 |" in \
        written["paired_differences_md"].read_text()


# --------------------------------------------------------------------------- residue


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


def test_a_residue_score_leaves_the_song_out_of_a_paired_difference():
    a = per_track({"openunmix": [1.0, 2.0, 3.0, 4.0], "melunmix": [2.0, 3.0, np.inf, 5.0]})
    row = inference.paired_differences(a, metrics=["SDR"], targets=["vocals"], n_boot=0).iloc[0]
    assert row["n_songs"] == 3 and row["n_songs_excluded"] == 1 and row["median_diff"] == 1.0


# --------------------------------------------------------------------------- plateau


def test_plateau_rule_last_quarter_gain_or_early_stopping():
    # 8 epochs: the last quarter is epochs 7-8; best before 5.0, best overall 4.95: 1 %
    flat = [9.0, 7.0, 6.0, 5.5, 5.2, 5.0, 4.98, 4.95]
    assert plateau.last_quarter_gain(flat) == pytest.approx(0.01)
    assert plateau.at_plateau(flat)
    # still learning: the last quarter gains 10 %
    learning = [9.0, 8.0, 7.0, 6.5, 6.0, 5.0, 4.8, 4.5]
    assert plateau.last_quarter_gain(learning) == pytest.approx(0.1)
    assert not plateau.at_plateau(learning)
    assert plateau.at_plateau(learning, stop_reason="early_stopping")
    # the last quarter got worse: no gain at all; 5 epochs -> last quarter is 2 epochs
    assert plateau.last_quarter_gain([5.0, 4.0, 3.0, 3.5, 3.6]) == 0.0
    assert np.isnan(plateau.last_quarter_gain([3.0]))
    assert not plateau.at_plateau([3.0])
    # diverged at the end: NaN losses are not a plateau
    assert np.isnan(plateau.last_quarter_gain([1.0, 0.9, 0.8, np.nan, np.nan]))
    assert not plateau.at_plateau([1.0, 0.9, 0.8, np.nan, np.nan])


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
