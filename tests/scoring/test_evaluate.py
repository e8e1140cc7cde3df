"""melunmix.scoring.evaluate / oracles: museval scoring and oracles (statistics: tests/test_stats.py).

Also what it is built on: reading a track (melunmix.scoring.track_audio) and scoring it into museval
JSON (melunmix.scoring.museval_scores).

Real parts throughout: a generated MUSDB18-layout test set (3 songs of 5 s at 8 kHz to
keep museval fast), tiny untrained models saved with ``save_model``, museval itself, and
references computed here independently (raw JSON + numpy, scipy). The oracles
themselves: tests/test_oracles.py.
"""

from __future__ import annotations

import json
import re
import shutil

import museval
import numpy as np
import pandas as pd
import pytest
import torch

from museval_json import raw_track_medians
from melunmix.base.names import RESIDUE_DB
from melunmix.scoring import evaluate as ev
from melunmix.analysis import result_tables, score_frames
from melunmix.datasets import find_tracks
from melunmix.models.networks import build_model, save_model
from melunmix.scoring.museval_scores import score_estimates, track_json_path, write_track_scores
from melunmix.separation.oracles import oracle_estimates
from melunmix.synth import make_dataset
from melunmix.scoring.track_audio import load_track

RATE = 8000
N_FFT, N_HOP = 256, 64
DURATION = 5.0
METRICS = ["SDR", "SIR", "ISR", "SAR"]


def _save_tiny_model(path, name="openunmix", n_fft=N_FFT, nan=False, **extra):
    torch.manual_seed(0)
    kwargs = dict(nb_bins=n_fft // 2 + 1, nb_channels=2, hidden_size=8, nb_layers=1,
                  sample_rate=RATE, n_fft=n_fft, n_hop=N_HOP)
    if name in ("melunmix", "wideunmix"):
        kwargs["n_mels"] = 16
    model = build_model(name, **kwargs)
    if nan:
        with torch.no_grad():
            model.output_mean.fill_(float("nan"))
    return save_model(model, path, **extra)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synth"
    make_dataset(root, nb_train=1, nb_valid=0, nb_test=3, duration=DURATION, seed=3,
                 sample_rate=RATE, progress=False)
    return root


@pytest.fixture(scope="module")
def tracks(data_root):
    return find_tracks(data_root, "test")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return _save_tiny_model(tmp_path_factory.mktemp("models") / "vocals.pt", target="vocals")


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory, tracks, model_file):
    """MIX, IRM1 and a tiny model scored once (serially) for the tests below."""
    out = tmp_path_factory.mktemp("eval")
    for oracle in ("MIX", "IRM1"):
        ev.evaluate_oracle(oracle, tracks, out, jobs=1, progress=False)
    ev.evaluate_model({"vocals": model_file}, tracks, out, "openunmix-seed1", jobs=1,
                      progress=False, n_fft=N_FFT, n_hop=N_HOP, sample_rate=RATE)
    return out


# --------------------------------------------------------------------------- museval files


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


def test_oracle_irm_scores_above_the_mixture(eval_dir):
    per_track = result_tables.track_table(score_frames.load_scores(eval_dir, ["IRM1", "MIX"]))
    sdr = per_track[per_track["metric"] == "SDR"].pivot_table(
        index=["target", "track"], columns="method", values="score")
    # IRM1 on a real mixture: clearly better than doing nothing, on every track
    assert (sdr.loc["vocals", "IRM1"] > sdr.loc["vocals", "MIX"] + 3).all()
    assert (sdr.loc["accompaniment", "IRM1"] > sdr.loc["accompaniment", "MIX"]).all()


@pytest.fixture(scope="module")
def one_track(tracks):
    return load_track(tracks[0])


# --------------------------------------------------------------------------- running


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
    retrained = _save_tiny_model(tmp_path / "retrained.pt", target="vocals", epoch=3)  # another file
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
    _save_tiny_model(drums, target="drums")
    with pytest.raises(ValueError, match=r"model 'drums' .* holds no vocals model \(it has \['drums'\]\)"):
        ev.evaluate_pretrained(drums, tracks, out, "drums", progress=False)
    with pytest.raises(FileNotFoundError, match="model 'gone'"):
        ev.evaluate_pretrained(tmp_path / "gone", tracks, out, "gone", progress=False)


# --------------------------------------------------------------------------- bad input


def test_bad_model_files_are_named(tmp_path, tracks, model_file):
    out = tmp_path / "eval"
    missing = tmp_path / "nothing" / "vocals.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        ev.evaluate_model({"vocals": missing}, tracks, out, "openunmix", progress=False)

    mel = _save_tiny_model(tmp_path / "mel.pt", name="melunmix", target="vocals")
    with pytest.raises(ValueError, match=f"{re.escape(str(mel))}.*MelUnmix.*another model's file"):
        ev.evaluate_model({"vocals": mel}, tracks, out, "openunmix-seed42", progress=False)

    # The width-matched control is an Open-Unmix of another width: its own file is accepted
    # (``width_of`` is how its width was derived, not a setting of the file), a MelUnmix is not.
    wide = _save_tiny_model(tmp_path / "wide.pt", name="wideunmix", target="vocals")
    infos = ev.check_model_files({"vocals": wide}, "wideunmix")
    assert infos["vocals"]["class_name"] == "OpenUnmix" and infos["vocals"]["kwargs"]["hidden_size"] > 8
    with pytest.raises(ValueError, match=f"{re.escape(str(mel))}.*MelUnmix.*not 'wideunmix'"):
        ev.check_model_files({"vocals": mel}, "wideunmix")

    acc = _save_tiny_model(tmp_path / "acc.pt", target="accompaniment")
    with pytest.raises(ValueError, match=f"{re.escape(str(acc))}.*target 'accompaniment', not 'vocals'"):
        ev.evaluate_model({"vocals": acc}, tracks, out, "openunmix", progress=False)

    other_stft = _save_tiny_model(tmp_path / "acc1024.pt", n_fft=2 * N_FFT)
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
    broken = _save_tiny_model(tmp_path / "broken.pt", nan=True, target="vocals")
    out = tmp_path / "eval"
    expected = f"{re.escape(str(broken))}.*{re.escape(tracks[0].name)}.*(NaN|non-finite)"
    with pytest.raises(ValueError, match=expected):
        ev.evaluate_model({"vocals": broken}, tracks[:1], out, "broken", jobs=1, progress=False)
    assert not (out / "broken" / "test").exists()


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


def test_test_set_without_vocals(data_root, tracks, tmp_path):
    import musdb

    root = tmp_path / "novocals"
    shutil.copytree(tracks[0].path, root / "test" / tracks[0].name)
    (root / "test" / tracks[0].name / "vocals.wav").unlink()
    track = musdb.DB(root=str(root), is_wav=True, subsets="test").tracks[0]
    with pytest.raises(ValueError, match=f"'{re.escape(tracks[0].name)}'.*no vocals stem"):
        ev.evaluate_oracle("MIX", [track], tmp_path / "eval", jobs=1, progress=False)


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
