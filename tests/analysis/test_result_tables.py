"""melunmix.analysis.result_tables: the poster and per-track tables, seeds aggregated, the main table and the tables folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from melunmix.analysis import result_tables, score_frames

from analysis_support import METRICS, TARGETS, TRACKS, per_track, write_museval_json
from museval_json import raw_track_medians


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


