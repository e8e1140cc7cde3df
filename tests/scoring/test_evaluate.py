"""melunmix.scoring.evaluate: museval's JSON layout and numbers, oracles above the mixture, pooled and resumed scoring, stale and bad model files (statistics: tests/analysis/)."""

from __future__ import annotations

import json
import re
import shutil

import museval
import numpy as np
import pandas as pd
import pytest
import torch

from melunmix.analysis import result_tables, score_frames
from melunmix.base.names import RESIDUE_DB
from melunmix.scoring import evaluate as ev

from evaluate_support import METRICS, N_FFT, N_HOP, RATE, save_tiny_model
from museval_json import raw_track_medians


def test_json_layout_and_museval_read_back(eval_dir, tracks):
    methods = ["IRM1", "MIX", "openunmix-seed1"]
    assert sorted(p.name for p in eval_dir.iterdir()) == methods
    for method in methods:
        for track in tracks:
            data = json.loads((eval_dir / method / "test" / f"{track.name}.json").read_text())
            targets = {t["name"]: t["frames"] for t in data["targets"]}
            assert set(targets) == {"vocals", "accompaniment"}
            # 1 s windows and hops over 5 s: frames start at 0, 1, ..., 4 s
            assert [f["time"] for f in targets["vocals"]] == [0, 1, 2, 3, 4]
            assert all(f["duration"] == 1 for f in targets["vocals"])

    df = score_frames.load_scores(eval_dir)
    assert list(df.columns) == ["method", "track", "target", "metric", "time", "score"]
    assert len(df) == len(methods) * len(tracks) * 2 * 4 * 5
    table = result_tables.poster_table(df)
    assert list(table.index) == ["openunmix-seed1", "IRM1", "MIX"]  # models, then oracles
    assert list(table.columns) == [(t, m) for t in ("vocals", "accompaniment") for m in METRICS]

    for method in methods:
        # museval's own readers of the folder agree with the table ...
        store = museval.EvalStore()
        store.add_eval_dir(eval_dir / method)
        agg = store.agg_frames_tracks_scores()
        methods_store = museval.MethodStore()
        methods_store.add_eval_dir(eval_dir / method)
        agg_m = methods_store.agg_frames_tracks_scores()
        # ... and so does a direct numpy median of the frames in the raw JSON
        raw = raw_track_medians(eval_dir, method)
        for target in ("vocals", "accompaniment"):
            for metric in METRICS:
                values = [v for (t, tg, m), v in raw.items() if tg == target and m == metric]
                assert len(values) == len(tracks)
                expected = np.nanmedian(values)
                # museval prints MIX's SAR (float residue, ~148 dB); the tables show inf
                shown = np.inf if expected > RESIDUE_DB else expected
                assert (method, metric, shown == np.inf) in (("MIX", "SAR", True),) or shown < 100
                assert table.loc[method, (target, metric)] == pytest.approx(shown, abs=1e-9)
                assert agg[(target, metric)] == pytest.approx(expected, abs=1e-9)
                assert agg_m[(method, target, metric)] == pytest.approx(expected, abs=1e-9)

    per_track = result_tables.track_table(df)
    assert list(per_track.columns) == ["method", "track", "target", "metric", "score"]
    raw = raw_track_medians(eval_dir, "MIX")
    mix = per_track[per_track["method"] == "MIX"]
    assert len(mix) == len(raw)
    for row in mix.itertuples():
        expected = raw[(row.track, row.target, row.metric)]
        expected = np.inf if expected > RESIDUE_DB else expected  # MIX's SAR: residue
        assert row.score == pytest.approx(expected, abs=1e-9, nan_ok=True)
    assert (mix.loc[mix["metric"] == "SAR", "score"] == np.inf).all()


def test_oracle_irm_scores_above_the_mixture(eval_dir):
    per_track = result_tables.track_table(score_frames.load_scores(eval_dir, ["IRM1", "MIX"]))
    sdr = per_track[per_track["metric"] == "SDR"].pivot_table(
        index=["target", "track"], columns="method", values="score")
    # IRM1 on a real mixture: clearly better than doing nothing, on every track
    assert (sdr.loc["vocals", "IRM1"] > sdr.loc["vocals", "MIX"] + 3).all()
    assert (sdr.loc["accompaniment", "IRM1"] > sdr.loc["accompaniment", "MIX"]).all()


def test_pooled_scoring_equals_serial_with_its_own_pool_or_a_shared_one(eval_dir, tracks, model_file, tmp_path):
    """Scoring in worker processes gives serial scoring's bytes, with a pool of its own
    (one method) or one pool shared by several methods (study.evaluate_all): started once,
    at the first method that needs it, and shut down with the block."""
    ev.evaluate_model({"vocals": model_file}, tracks, tmp_path, "openunmix-seed2", jobs=2, progress=False)
    with ev.shared_workers(jobs=2):
        assert ev._SHARED[-1].executor is None  # nothing started before it is needed
        ev.evaluate_oracle("IRM1", tracks, tmp_path, jobs=2, progress=False)
        pool = ev._SHARED[-1].executor
        workers = set(pool._processes)
        ev.evaluate_model({"vocals": model_file}, tracks, tmp_path, "openunmix-seed3", jobs=2, progress=False)
        ev.evaluate_oracle("MIX", tracks, tmp_path, jobs=2, progress=False)
        assert ev._SHARED[-1].executor is pool and set(pool._processes) == workers and len(workers) == 2
    assert not ev._SHARED and pool._processes is None  # shut down, its workers joined
    # (MIX's SAR, ~147 dB, is floating-point residue that moves between processes: left out)
    assert len(list((tmp_path / "MIX" / "test").glob("*.json"))) == len(tracks)
    for pooled, serial in (("openunmix-seed2", "openunmix-seed1"), ("openunmix-seed3", "openunmix-seed1"),
                           ("IRM1", "IRM1")):
        for track in tracks:
            name = f"{track.name}.json"
            assert (tmp_path / pooled / "test" / name).read_bytes() == (eval_dir / serial / "test" / name).read_bytes()
    both = pd.concat([score_frames.load_scores(eval_dir, ["openunmix-seed1"]),
                      score_frames.load_scores(tmp_path, ["openunmix-seed2"])])
    seeds = result_tables.aggregate_seeds(result_tables.poster_table(both))
    row = seeds[(seeds["target"] == "vocals") & (seeds["metric"] == "SDR")]
    assert row["method"].item() == "openunmix"
    assert row["nb_seeds"].item() == 2 and row["seeds"].item() == "1,2"
    assert row["std"].item() == 0.0


def test_resume_skips_scored_tracks(eval_dir, tracks, tmp_path):
    resumed = tmp_path / "eval"
    shutil.copytree(eval_dir / "MIX", resumed / "MIX")
    paths = [resumed / "MIX" / "test" / f"{t.name}.json" for t in tracks]
    original = [p.read_bytes() for p in paths]
    paths[0].unlink()  # killed before this track was written
    paths[1].write_text(original[1].decode()[:100])  # a truncated file from outside
    mtime = paths[2].stat().st_mtime_ns

    returned = ev.evaluate_oracle("MIX", tracks, resumed, jobs=1, progress=False)
    assert returned == paths
    assert paths[2].stat().st_mtime_ns == mtime  # scored: skipped
    assert [p.read_bytes() for p in paths] == original  # rescored ones are identical
    assert not list((resumed / "MIX" / "test").glob(".*"))  # no temporary left behind

    # asking for the same method with other settings is refused, not mixed in
    with pytest.raises(ValueError, match="other settings.*overwrite=True"):
        ev.evaluate_oracle("MIX", tracks, resumed, jobs=1, win=2.0, progress=False)
    ev.evaluate_oracle("MIX", tracks[:1], resumed, jobs=1, win=2.0, hop=2.0, progress=False, overwrite=True)
    assert sorted(p.name for p in (resumed / "MIX" / "test").iterdir()) == [f"{tracks[0].name}.json"]
    frames = json.loads(paths[0].read_text())["targets"][0]["frames"]
    assert [f["time"] for f in frames] == [0, 2]


def test_retrained_model_is_not_mixed_with_old_scores(eval_dir, tracks, model_file, tmp_path):
    resumed = tmp_path / "eval"
    shutil.copytree(eval_dir / "openunmix-seed1", resumed / "openunmix-seed1")
    retrained = save_tiny_model(tmp_path / "retrained.pt", target="vocals", epoch=3)  # another file
    with pytest.raises(ValueError, match="models differ"):
        ev.evaluate_model({"vocals": retrained}, tracks, resumed, "openunmix-seed1", jobs=1, progress=False)


def test_a_model_trained_elsewhere_scores_as_one_more_method(eval_dir, tracks, model_file, tmp_path):
    """evaluate.models: Open-Unmix's train.py folder holding the same weights as the model
    scored as openunmix-seed1 gets the same numbers, window by window."""
    from melunmix.models.networks import load_model

    umx = tmp_path / "umx"
    umx.mkdir()
    torch.save(load_model(model_file).state_dict(), umx / "vocals.pth")
    (umx / "vocals.json").write_text(json.dumps({"args": {"nfft": N_FFT, "nhop": N_HOP, "hidden_size": 8,
                                                          "nb_channels": 2}}))
    (umx / "separator.json").write_text(json.dumps({"sample_rate": RATE, "nfft": N_FFT, "nhop": N_HOP,
                                                    "nb_channels": 2}))
    out = tmp_path / "eval"
    ev.evaluate_pretrained(umx, tracks, out, "umx-folder", sample_rate=RATE, jobs=1, progress=False)
    ours = score_frames.load_scores(eval_dir, ["openunmix-seed1"])
    theirs = score_frames.load_scores(out, ["umx-folder"])
    keys = ["track", "target", "metric", "time"]
    joined = ours.merge(theirs, on=keys, suffixes=("_ours", "_theirs"))
    assert len(joined) == len(ours) == len(theirs) > 0
    np.testing.assert_allclose(joined["score_theirs"], joined["score_ours"], atol=1e-6)
    settings = json.loads((out / "umx-folder" / ev.SETTINGS_FILE).read_text())
    assert settings["kind"] == "pretrained" and settings["files"] == {"vocals": str(umx.resolve())}
    # Other weights under the same name are not mixed with the old scores.
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in torch.load(umx / "vocals.pth").items()},
               umx / "vocals.pth")
    with pytest.raises(ValueError, match="models differ"):
        ev.evaluate_pretrained(umx, tracks, out, "umx-folder", sample_rate=RATE, jobs=1, progress=False)
    # Refused in one line naming the method and the path: another rate, no vocals model, nothing there.
    with pytest.raises(ValueError, match=r"model 'umx-folder' .* separates at 8000 Hz, the test songs are at 44100 Hz"):
        ev.evaluate_pretrained(umx, tracks, out, "umx-folder", sample_rate=44100, progress=False)
    drums = tmp_path / "drums.pt"
    save_tiny_model(drums, target="drums")
    with pytest.raises(ValueError, match=r"model 'drums' .* holds no vocals model \(it has \['drums'\]\)"):
        ev.evaluate_pretrained(drums, tracks, out, "drums", progress=False)
    with pytest.raises(FileNotFoundError, match="model 'gone'"):
        ev.evaluate_pretrained(tmp_path / "gone", tracks, out, "gone", progress=False)


def test_bad_model_files_are_named(tmp_path, tracks, model_file):
    out = tmp_path / "eval"
    missing = tmp_path / "nothing" / "vocals.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        ev.evaluate_model({"vocals": missing}, tracks, out, "openunmix", progress=False)

    mel = save_tiny_model(tmp_path / "mel.pt", name="melunmix", target="vocals")
    with pytest.raises(ValueError, match=f"{re.escape(str(mel))}.*MelUnmix.*another model's file"):
        ev.evaluate_model({"vocals": mel}, tracks, out, "openunmix-seed42", progress=False)

    # The width-matched control is an Open-Unmix of another width: its own file is accepted
    # (``width_of`` is how its width was derived, not a setting of the file), a MelUnmix is not.
    wide = save_tiny_model(tmp_path / "wide.pt", name="wideunmix", target="vocals")
    infos = ev.check_model_files({"vocals": wide}, "wideunmix")
    assert infos["vocals"]["class_name"] == "OpenUnmix" and infos["vocals"]["kwargs"]["hidden_size"] > 8
    with pytest.raises(ValueError, match=f"{re.escape(str(mel))}.*MelUnmix.*not 'wideunmix'"):
        ev.check_model_files({"vocals": mel}, "wideunmix")

    acc = save_tiny_model(tmp_path / "acc.pt", target="accompaniment")
    with pytest.raises(ValueError, match=f"{re.escape(str(acc))}.*target 'accompaniment', not 'vocals'"):
        ev.evaluate_model({"vocals": acc}, tracks, out, "openunmix", progress=False)

    other_stft = save_tiny_model(tmp_path / "acc1024.pt", n_fft=2 * N_FFT)
    with pytest.raises(ValueError, match=f"{re.escape(str(other_stft))}.*STFT settings"):
        ev.evaluate_model({"vocals": model_file, "accompaniment": other_stft}, tracks, out,
                          "openunmix", progress=False)
    with pytest.raises(ValueError, match=f"{re.escape(str(model_file))}.*n_fft={N_FFT}.*{2 * N_FFT}"):
        ev.evaluate_model({"vocals": model_file}, tracks, out, "openunmix", n_fft=2 * N_FFT, progress=False)

    with pytest.raises(ValueError, match="scored as a pair.*residual=True"):
        ev.evaluate_model({"vocals": model_file}, tracks, out, "openunmix", residual=False,
                          progress=False)

    assert not out.exists()  # every check runs before anything is written


def test_nan_model_output_names_track_and_file(tmp_path, tracks):
    broken = save_tiny_model(tmp_path / "broken.pt", nan=True, target="vocals")
    out = tmp_path / "eval"
    expected = f"{re.escape(str(broken))}.*{re.escape(tracks[0].name)}.*(NaN|non-finite)"
    with pytest.raises(ValueError, match=expected):
        ev.evaluate_model({"vocals": broken}, tracks[:1], out, "broken", jobs=1, progress=False)
    assert not (out / "broken" / "test").exists()


def test_bad_arguments(tmp_path, tracks):
    with pytest.raises(ValueError, match="unknown oracle 'IRM3'"):
        ev.evaluate_oracle("IRM3", tracks, tmp_path)
    with pytest.raises(ValueError, match="method name"):
        ev.evaluate_model({"vocals": "x.pt"}, tracks, tmp_path, "../escape")
    with pytest.raises(ValueError, match="jobs"):
        ev.evaluate_oracle("MIX", tracks, tmp_path, jobs=0)
    with pytest.raises(ValueError, match="empty"):
        ev.evaluate_oracle("MIX", [], tmp_path)
    with pytest.raises(FileNotFoundError, match="no museval JSON"):
        score_frames.load_scores(tmp_path / "nothing")
