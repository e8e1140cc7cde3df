"""`melunmix score`: estimates of any system scored against a MUSDB18-format root."""

from __future__ import annotations

import json
import shutil

import museval
import numpy as np
import pytest
import soundfile as sf

from melunmix.commands import cli
from melunmix.datasets import find_tracks
from melunmix.separation.oracles import oracle_estimates
from melunmix.scoring.track_audio import load_track
from melunmix.commands.score import score_folder
from melunmix.synth import make_dataset

RATE = 16000


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "it's a sönG root"  # quotes, spaces, non-ASCII
    make_dataset(root, nb_train=1, nb_valid=0, nb_test=2, duration=4.0, seed=5, sample_rate=RATE,
                 progress=False)
    return root


@pytest.fixture(scope="module")
def estimates(data_root, tmp_path_factory):
    """IRM1 estimates written in musdb's estimates layout, one folder per test track."""
    folder = tmp_path_factory.mktemp("estimates")
    for track in find_tracks(data_root, "test"):
        audio = load_track(track)
        for target, estimate in oracle_estimates("IRM1", audio.mixture, audio.stems).items():
            (folder / track.name).mkdir(exist_ok=True)
            sf.write(folder / track.name / f"{target}.wav", estimate, RATE, subtype="FLOAT")
    return folder


def test_score_folder_writes_museval_json_that_museval_reads(data_root, estimates, tmp_path):
    out = tmp_path / "eval" / "irm1"
    table = score_folder(estimates, data_root, out, jobs=1, progress=False)
    names = sorted(t.name for t in find_tracks(data_root, "test"))
    assert sorted(p.stem for p in (out / "test").glob("*.json")) == names
    # museval's own store reads the files and gives the same medians as the table.
    store = museval.EvalStore()
    for path in sorted((out / "test").glob("*.json")):
        store.add_track(museval.json2df(json.loads(path.read_text()), path.stem))
    medians = store.df.groupby(["track", "target", "metric"])["score"].median().groupby(["target", "metric"]).median()
    for (target, metric), value in medians.items():
        assert table.loc["irm1", (target, metric)] == pytest.approx(value, abs=1e-9)
    # Same numbers with museval as the scorer (to museval's own round-off).
    reference = score_folder(estimates, data_root, tmp_path / "eval" / "museval", scorer="museval", jobs=1,
                             progress=False)
    np.testing.assert_allclose(table.to_numpy(), reference.to_numpy(), atol=1e-3)


def test_cli_score_prints_the_median_table_and_names_missing_files(data_root, estimates, tmp_path, capsys):
    out = tmp_path / "cli_eval"
    assert cli.main(["score", str(estimates), "--data-root", str(data_root), "--out", str(out),
                     "--jobs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"{out / 'test'}" in printed
    # The printed table is the medians the previous test checks against museval (scores
    # already there: this call only reads them).
    table = score_folder(estimates, data_root, out, jobs=1, progress=False)
    rows = [line for line in printed.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert "vocals SDR" in header and len(rows) == 2 + len(table)
    for line, (method, values) in zip(rows[2:], table.iterrows()):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == str(method)
        for (target, metric), value in values.items():
            assert float(cells[header.index(f"{target} {metric}")]) == pytest.approx(value, abs=0.005 + 1e-9)

    broken = tmp_path / "broken"
    first = sorted(p for p in estimates.iterdir())[0]
    (broken / first.name).mkdir(parents=True)
    sf.write(broken / first.name / "vocals.wav", np.zeros((10, 2)), RATE)
    assert cli.main(["score", str(broken), "--data-root", str(data_root), "--out", str(tmp_path / "e2"),
                     "--jobs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # one warning for the song without estimates, one error for the song without a scorable set
    assert len(err) == 2 and err[0].startswith("melunmix score: warning: no estimates for 1 of the 2")
    assert "holds ['vocals.wav']; it needs vocals.wav and accompaniment.wav" in err[1]
    assert cli.main(["score", str(tmp_path / "nope"), "--data-root", str(data_root), "--out", str(out)]) == 2
    assert "estimates folder" in capsys.readouterr().err


def test_a_silent_estimate_is_named_with_its_track(data_root, estimates, tmp_path, capsys):
    silent = tmp_path / "silent"
    shutil.copytree(estimates, silent)
    first = sorted(p for p in silent.iterdir())[0]
    vocals, rate = sf.read(first / "vocals.wav", always_2d=True)
    sf.write(first / "vocals.wav", np.zeros_like(vocals), rate, subtype="FLOAT")
    assert cli.main(["score", str(silent), "--data-root", str(data_root), "--out", str(tmp_path / "e"),
                     "--jobs", "1", "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert f"vocals estimate of track '{first.name}' is silent" in err, err
    # A WAV with no samples at all: one line naming the file.
    sf.write(first / "vocals.wav", np.zeros((0, vocals.shape[1])), rate, subtype="FLOAT")
    assert cli.main(["score", str(silent), "--data-root", str(data_root), "--out", str(tmp_path / "e2"),
                     "--jobs", "1", "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(first / "vocals.wav") in err, err
    assert "underdetermined" not in err  # mir_eval's text, which names no track


def test_two_shards_give_byte_identical_tables_and_refuse_while_a_song_is_missing(
        data_root, estimates, tmp_path, capsys, monkeypatch):
    names = sorted(t.name for t in find_tracks(data_root, "test"))
    common = [str(estimates), "--data-root", str(data_root), "--jobs", "1", "--no-progress"]
    whole = tmp_path / "whole" / "irm1"
    assert cli.main(["score", *common, "--out", str(whole)]) == 0
    tables = sorted(p.name for p in (whole / "tables").iterdir())
    assert {"main.csv", "poster.csv", "per_track.csv"} <= set(tables)

    sharded = tmp_path / "sharded" / "irm1"
    assert cli.main(["score", *common, "--out", str(sharded), "--shard", "1/2"]) == 0
    assert "--aggregate" in capsys.readouterr().out
    assert sorted(p.stem for p in (sharded / "test").glob("*.json")) == names[1::2]
    # One shard is missing: no tables, one line naming the song that has no scores yet.
    assert cli.main(["score", *common, "--out", str(sharded), "--aggregate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and repr(names[0]) in err and repr(names[1]) not in err
    assert not (sharded / "tables").exists()
    # The other shard as the first task of a Slurm array --array=1-2 sees it.
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    assert cli.main(["score", *common, "--out", str(sharded), "--shard", "slurm"]) == 0
    assert cli.main(["score", *common, "--out", str(sharded), "--aggregate"]) == 0
    for name in names:
        assert (sharded / "test" / f"{name}.json").read_bytes() == (whole / "test" / f"{name}.json").read_bytes()
    assert sorted(p.name for p in (sharded / "tables").iterdir()) == tables
    for name in tables:
        assert (sharded / "tables" / name).read_bytes() == (whole / "tables" / name).read_bytes(), name


@pytest.mark.parametrize("text, environ, expected", [
    ("0/4", {}, (0, 4)), ("3 / 4", {}, (3, 4)),
    ("slurm", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, (2, 4)),
    ("slurm", {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
               "SLURM_ARRAY_TASK_STEP": "4"}, (2, 4)),
])
def test_shard_values(text, environ, expected):
    from melunmix.commands.score import parse_shard, shard_tracks

    assert parse_shard(text, environ) == expected
    # Every song lands in exactly one shard.
    songs = [type("T", (), {"name": f"song {i}"})() for i in range(10)]
    parts = [shard_tracks(songs, i, expected[1]) for i in range(expected[1])]
    assert sorted(t.name for part in parts for t in part) == sorted(t.name for t in songs)


@pytest.mark.parametrize("text, environ, message", [
    ("4/4", {}, "need 0 <= I < N"), ("1-4", {}, "expected I/N"),
    ("slurm", {}, "SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT not set"),
])
def test_bad_shards_are_named(text, environ, message):
    from melunmix.commands.score import parse_shard

    with pytest.raises(ValueError, match=message):
        parse_shard(text, environ)


def test_overwrite_with_a_shard_is_refused(data_root, estimates, tmp_path):
    with pytest.raises(ValueError, match="delete the other shards' scores"):
        score_folder(estimates, data_root, tmp_path / "e", shard=(0, 2), overwrite=True, progress=False)


# --------------------------------------------------------------------------- museval's own command, drop-in
def _four_stem_song(seed: int, rate: int, seconds: float = 2.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    kernel = np.hanning(9) / np.hanning(9).sum()  # band-limited: AAC codes it well
    n = int(seconds * rate)
    return {s: (0.2 * np.stack([np.convolve(rng.standard_normal(n), kernel, "same") for _ in range(2)], 1))
            .astype(np.float32) for s in ("vocals", "drums", "bass", "other")}


def _system_estimates(stems: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A system's estimates: each stem with some of the others leaking in, plus noise."""
    rng = np.random.default_rng(seed)
    names = list(stems)
    out = {}
    for i, name in enumerate(names):
        leak = stems[names[(i + 1) % 4]]
        out[name] = (0.9 * stems[name] + 0.2 * leak + 0.01 * rng.standard_normal(stems[name].shape)).astype(np.float32)
    out["accompaniment"] = out["drums"] + out["bass"] + out["other"]
    return out


def _write_hq_song(folder, stems, rate):
    """A MUSDB18-HQ song: 16-bit PCM WAV stems and mixture."""
    folder.mkdir(parents=True)
    for name, audio in {**stems, "mixture": sum(stems.values())}.items():
        sf.write(folder / f"{name}.wav", audio, rate, subtype="PCM_16")


@pytest.mark.parametrize("kind", ["wav", "stem.mp4"])
def test_four_stems_in_museval_layout_score_as_musdb_and_museval_do(kind, tmp_path, temporary_cache):
    """museval's layout <estimates>/test/<track>/, four stems + accompaniment (+ demucs' no_vocals):
    the scores equal musdb + museval.eval_mus_track's on every window, within 0.01 dB, on a
    MUSDB18-HQ-like root (16-bit WAV) and a MUSDB18-like one (.stem.mp4, AAC)."""
    import musdb
    from test_roots_any_folder import write_stem_mp4

    rate, root, estimates = 44100, tmp_path / "root", tmp_path / "estimates"
    names = ["A - One", "B - Two"]
    written = {}
    for seed, name in enumerate(names):
        stems = _four_stem_song(seed, rate)
        if kind == "wav":
            _write_hq_song(root / "test" / name, stems, rate)
        else:
            write_stem_mp4(root / "test" / f"{name}.stem.mp4", stems, rate)
        written[name] = _system_estimates(stems, seed + 10)
    # song A: the four stems and the accompaniment; song B: two stems and demucs' no_vocals
    for name, files in (("A - One", ("vocals", "drums", "bass", "other", "accompaniment")),
                        ("B - Two", ("vocals", "drums", "accompaniment"))):
        folder = estimates / "test" / name
        folder.mkdir(parents=True)
        for target in files:
            filename = "no_vocals" if (name == "B - Two" and target == "accompaniment") else target
            sf.write(folder / f"{filename}.wav", written[name][target], rate, subtype="FLOAT")

    out = tmp_path / "eval" / "mine"
    table = score_folder(estimates, root, out, jobs=1, progress=False, method="My System")
    assert list(table.index) == ["My System"]
    mus = musdb.DB(root=str(root), subsets="test", is_wav=kind == "wav")
    for track in mus.tracks:
        ours = json.loads((out / "test" / f"{track.name}.json").read_text())
        folder = estimates / "test" / track.name
        theirs_estimates = {}
        for path in folder.glob("*.wav"):
            target = "accompaniment" if path.stem == "no_vocals" else path.stem
            audio, _ = sf.read(path, dtype="float64", always_2d=True)
            theirs_estimates[target] = audio
        theirs = json.loads(museval.eval_mus_track(track, theirs_estimates, mode="v4").json)
        expected = {"A - One": {"vocals", "drums", "bass", "other", "accompaniment"},
                    "B - Two": {"vocals", "drums", "accompaniment"}}[track.name]
        assert {t["name"] for t in ours["targets"]} == {t["name"] for t in theirs["targets"]} == expected
        for mine, ref in zip(ours["targets"], theirs["targets"]):
            assert mine["name"] == ref["name"]
            assert len(mine["frames"]) == len(ref["frames"])
            for a, b in zip(mine["frames"], ref["frames"]):
                for metric in ("SDR", "SIR", "ISR", "SAR"):
                    x, y = a["metrics"][metric], b["metrics"][metric]
                    assert (x is None and y is None) or abs(x - y) < 0.01, (track.name, mine["name"], metric)


def test_score_skips_songs_without_estimates_and_chooses_tracks(data_root, estimates, tmp_path, capsys):
    partial = tmp_path / "partial"
    names = sorted(p.name for p in estimates.iterdir())
    shutil.copytree(estimates / names[0], partial / names[0])
    out = tmp_path / "eval" / "partial"
    assert cli.main(["score", str(partial), "--data-root", str(data_root), "--out", str(out), "--jobs", "1",
                     "--no-progress", "--method", "IRM1 copy"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning") == 1 and names[1] in captured.err
    assert "IRM1 copy" in captured.out and sorted(p.stem for p in (out / "test").glob("*.json")) == [names[0]]
    # --tracks chooses; an unknown name is refused in the flag's terms
    chosen = tmp_path / "eval" / "chosen"
    assert cli.main(["score", str(estimates), "--data-root", str(data_root), "--out", str(chosen), "--jobs", "1",
                     "--no-progress", "--tracks", names[1]]) == 0
    assert sorted(p.stem for p in (chosen / "test").glob("*.json")) == [names[1]]
    capsys.readouterr()
    assert cli.main(["score", str(estimates), "--data-root", str(data_root), "--out", str(chosen),
                     "--tracks", "No Such Song"]) == 2
    assert "--tracks ['No Such Song'] are not test tracks" in capsys.readouterr().err


def test_another_scorer_or_target_set_is_refused_naming_the_flag_and_a_failed_run_blocks_nothing(
        data_root, estimates, tmp_path, capsys):
    out = tmp_path / "eval" / "m"
    args = ["score", str(estimates), "--data-root", str(data_root), "--out", str(out), "--jobs", "1", "--no-progress"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main([*args, "--scorer", "museval"]) == 2
    err = capsys.readouterr().err
    assert "bss_eval" in err and "pass --overwrite to rescore, or choose another --out" in err
    assert cli.main([*args, "--scorer", "museval", "--overwrite"]) == 0
    # another set of targets (a drums estimate added) is refused the same way
    more = tmp_path / "more"
    shutil.copytree(estimates, more)
    first = sorted(p for p in more.iterdir())[0]
    sf.write(first / "drums.wav", sf.read(first / "accompaniment.wav")[0], RATE, subtype="FLOAT")
    capsys.readouterr()
    assert cli.main(["score", str(more), "--data-root", str(data_root), "--out", str(out), "--jobs", "1",
                     "--no-progress", "--scorer", "museval"]) == 2
    err = capsys.readouterr().err
    assert "targets" in err and "estimates" in err and "--overwrite" in err
    # a run that fails before scoring anything leaves settings that block nothing
    failed = tmp_path / "eval" / "f"
    broken = tmp_path / "broken"
    for name in sorted(p.name for p in estimates.iterdir()):
        (broken / name).mkdir(parents=True)
        sf.write(broken / name / "vocals.wav", np.zeros((10, 2)), RATE)  # no accompaniment: fails
    assert cli.main(["score", str(broken), "--data-root", str(data_root), "--out", str(failed), "--jobs", "1",
                     "--no-progress"]) == 2
    assert (failed / "evaluation.json").is_file() and not list((failed / "test").glob("*.json"))
    capsys.readouterr()
    assert cli.main(["score", str(estimates), "--data-root", str(data_root), "--out", str(failed), "--jobs", "1",
                     "--no-progress"]) == 0
