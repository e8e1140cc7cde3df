"""The built-in dataset generator: real renders on disk, read back with soundfile and musdb."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import yaml

from melunmix import synth

SR = 44100
DURATION = 6.0
PARAMS = dict(nb_train=2, nb_valid=1, nb_test=1, duration=DURATION, seed=3)
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)[0]
            for name in ("mixture", "vocals", "drums", "bass", "other")}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return synth.make_dataset(tmp_path_factory.mktemp("gen") / "data", progress=False, **PARAMS)


@pytest.fixture(scope="module")
def manifest(dataset) -> dict:
    return json.loads((dataset / "dataset.json").read_text())


def test_layout_and_musdb_splits(dataset, manifest):
    import musdb

    names = {split: [t["name"] for t in manifest["tracks"] if t["split"] == split] for split in ("train", "valid", "test")}
    assert [len(names[s]) for s in ("train", "valid", "test")] == [1, 1, 1]
    setup = yaml.safe_load((dataset / "setup.yaml").read_text())
    assert setup["validation_tracks"] == names["valid"]

    train = musdb.DB(str(dataset), is_wav=True, subsets="train", split="train", setup_file="setup.yaml")
    valid = musdb.DB(str(dataset), is_wav=True, subsets="train", split="valid", setup_file="setup.yaml")
    test = musdb.DB(str(dataset), is_wav=True, subsets="test", setup_file="setup.yaml")
    everything = musdb.DB(str(dataset), is_wav=True)  # musdb's own setup: every WAV folder loads
    assert [t.name for t in train] == names["train"]
    assert [t.name for t in valid] == names["valid"]
    assert [t.name for t in test] == names["test"]
    assert len(everything) == 3

    track = valid[0]  # musdb reads through ffmpeg as 16-bit: equal to the stems' sum within that
    mixture = track.audio
    assert track.rate == SR and mixture.shape == (round(DURATION * SR), 2)
    total = sum(track.sources[name].audio for name in ("vocals", "drums", "bass", "other"))
    np.testing.assert_allclose(mixture, total, atol=4 * 2.0**-15)
    np.testing.assert_allclose(track.targets["accompaniment"].audio + track.targets["vocals"].audio, mixture,
                               atol=4 * 2.0**-15)


def test_files_are_float_stereo_exact_sums_without_clipping(dataset, manifest):
    for entry in manifest["tracks"]:
        folder = dataset / entry["subset"] / entry["name"]
        for name in synth.TRACK_FILES:
            info = sf.info(folder / name)
            assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "FLOAT")
            assert info.frames == round(DURATION * SR) == entry["nb_samples"]
        audio = _read(folder)
        total = audio["vocals"] + audio["drums"]
        total = total + audio["bass"]
        total = total + audio["other"]
        np.testing.assert_array_equal(audio["mixture"], total)
        for name, signal in audio.items():
            assert np.isfinite(signal).all()
            assert np.abs(signal).max() <= synth.PEAK_LIMIT, (entry["name"], name)
            # every stem plays: louder than -40 dBFS RMS over the song
            assert np.sqrt(np.mean(signal**2)) > 0.01, (entry["name"], name)
        # panning: the accompaniment is not the same in both channels
        assert not np.allclose(audio["other"][:, 0], audio["other"][:, 1])


def test_vocals_silent_in_whole_sections_and_sung_in_the_others(dataset, manifest):
    for entry in manifest["tracks"]:
        vocals = _read(dataset / entry["subset"] / entry["name"])["vocals"]
        sections = entry["sections"]
        assert sections[0]["start"] == 0 and math.isclose(sections[-1]["end"], DURATION)
        assert all(a["end"] == b["start"] for a, b in zip(sections, sections[1:]))
        assert sections[0]["name"] == "intro" and not sections[0]["vocals"]
        assert any(s["vocals"] for s in sections)
        for section in sections:
            part = vocals[int(round(section["start"] * SR)):int(round(section["end"] * SR))]
            if section["vocals"]:
                assert np.abs(part).max() > 0.02, (entry["name"], section)
            else:
                assert not part.any(), (entry["name"], section)  # exact digital silence


def test_vocal_line_is_one_voice_in_the_key_at_the_scored_pitches(dataset, manifest):
    entry = manifest["tracks"][0]
    song = synth.arrange_song(PARAMS["seed"], entry["split"], 0, DURATION)
    assert song.name == entry["name"]
    notes = song.parts["vocals"][0].notes
    assert all(a.end <= b.start for a, b in zip(notes, notes[1:]))  # monophonic score
    tonic, mode = entry["key"].split()
    scale = {(KEYS.index(tonic) + step) % 12 for step in SCALES[mode]}
    assert {n.pitch % 12 for n in notes} <= scale

    vocals = _read(dataset / entry["subset"] / entry["name"])["vocals"].mean(axis=1)
    hop = 512
    f0 = librosa.yin(vocals, fmin=80, fmax=1000, sr=SR, frame_length=2048, hop_length=hop)
    times = librosa.frames_to_time(np.arange(len(f0)), sr=SR, hop_length=hop)
    errors = []
    for note in notes:
        # notes long enough for the previous note's release to have faded from yin's window
        inside = (times > note.start + 0.1) & (times < note.end - 0.03)
        if note.end - note.start >= 0.3 and inside.sum() >= 3:
            errors.append(np.median(librosa.hz_to_midi(f0[inside])) - note.pitch)
    assert len(errors) >= 2
    assert np.mean(np.abs(errors) < 0.5) >= 0.8, np.round(errors, 2)


def test_same_arguments_same_bytes_and_seed_matters(dataset, tmp_path):
    again = synth.make_dataset(tmp_path / "again", progress=False, **PARAMS)
    assert _hashes(again) == _hashes(dataset)
    other = synth.make_dataset(tmp_path / "other", progress=False, **{**PARAMS, "seed": 4, "nb_train": 1,
                                                                         "nb_valid": 0})
    audio_other = {k: v for k, v in _hashes(other).items() if k.endswith(".wav")}
    assert not set(audio_other.values()) & set(_hashes(dataset).values())


def test_manifest_fingerprint_matches_the_files(dataset, manifest):
    assert manifest["parameters"] == {**PARAMS, "duration": DURATION, "sample_rate": SR,
                                      "generator_version": synth.GENERATOR_VERSION}
    digest = hashlib.sha256()
    for entry in manifest["tracks"]:
        for name in synth.TRACK_FILES:
            path = dataset / entry["subset"] / entry["name"] / name
            file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["sha256"][name] == file_hash
            digest.update(f"{entry['subset']}/{entry['name']}/{name}\t{file_hash}\n".encode())
    assert manifest["fingerprint"] == digest.hexdigest()
    card = (dataset / "README.md").read_text()
    assert "TimGM6mb.sf2" in card and "GPL" in card and "MIT" in card
    assert all(entry["name"] in card for entry in manifest["tracks"])


def test_rerun_with_same_arguments_does_nothing(dataset):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert synth.make_dataset(dataset, progress=False, **PARAMS) == dataset
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before


def test_rerun_with_other_arguments_is_refused(dataset):
    before = _hashes(dataset)
    with pytest.raises(ValueError, match=r"duration=6\.0 there, 7\.0 asked.*another output folder"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "duration": 7.0})
    with pytest.raises(ValueError, match="nb_test=1 there, 2 asked"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "nb_test": 2})
    assert _hashes(dataset) == before


def test_interrupted_run_resumes_with_only_missing_tracks(tmp_path):
    params = dict(nb_train=1, nb_valid=0, nb_test=1, duration=4.0, seed=11, progress=False)
    root = synth.make_dataset(tmp_path / "d", **params)
    complete = _hashes(root)
    train_track = next((root / "train").iterdir())
    test_track = next((root / "test").iterdir())
    # What a kill leaves: no dataset.json, a track never renamed into place, and a
    # half-written copy of it in the staging folder.
    (root / "dataset.json").unlink()
    staging = root / ".partial" / test_track.name
    staging.mkdir(parents=True)
    (staging / "mixture.wav").write_bytes(b"RIFF")
    shutil.rmtree(test_track)
    kept = train_track / "vocals.wav"
    kept_mtime = kept.stat().st_mtime_ns

    synth.make_dataset(tmp_path / "d", **params)
    assert _hashes(root) == complete
    assert kept.stat().st_mtime_ns == kept_mtime  # the finished track was not rendered again
    assert not (root / ".partial").exists()


def test_other_sample_rate(tmp_path):
    root = synth.make_dataset(tmp_path / "d", nb_train=1, nb_valid=0, nb_test=1, duration=4.0, sample_rate=22050,
                              progress=False)
    setup = yaml.safe_load((root / "setup.yaml").read_text())
    assert setup["sample_rate"] == 22050
    for path in root.rglob("*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.frames) == (22050, 4 * 22050)


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"nb_train": 0}, "nb_train"),
        ({"nb_test": 0}, "nb_test"),
        ({"nb_train": 2, "nb_valid": 2}, "nb_valid"),
        ({"nb_valid": -1}, "nb_valid"),
        ({"nb_train": 2.5}, "nb_train"),
        ({"duration": 1.0}, "duration"),
        ({"duration": float("nan")}, "duration"),
        ({"duration": 10_000.0}, "duration"),
        ({"seed": -1}, "seed"),
        ({"sample_rate": 100}, "sample_rate"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, changes, argument):
    with pytest.raises(ValueError, match=argument):
        synth.make_dataset(tmp_path / "d", progress=False, **{**PARAMS, **changes})
    assert not (tmp_path / "d").exists()


def test_unrelated_folder_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        synth.make_dataset(tmp_path, progress=False, **PARAMS)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("duration, nb_songs", [(synth.MIN_DURATION, 40), (5.0, 40), (9.0, 40), (45.0, 10),
                                                (240.0, 3)])
def test_every_arrangement_has_an_unsung_intro_and_sung_sections(duration, nb_songs):
    for index in range(nb_songs):
        song = synth.arrange_song(index, ("train", "valid", "test")[index % 3], index, duration)
        sections = song.sections
        assert sections[0].start == 0 and math.isclose(sections[-1].end, duration)
        assert not sections[0].sung and any(s.sung for s in sections)
        notes = song.parts["vocals"][0].notes
        for section in sections:
            inside = [n for n in notes if section.start <= n.start < section.end]
            assert bool(inside) == section.sung
            assert all(n.end <= section.end for n in inside)
        assert 84 <= song.bpm <= 140


def test_sung_note_has_the_scoop_and_vibrato_asked():
    vibrato = synth.Vibrato(depth_cents=40.0, rate_hz=5.5, delay=0.15, scoop_cents=50.0, scoop_time=0.04)
    note = synth.Note(start=0.1, end=2.1, pitch=60, velocity=100)
    part = synth.Part(name="Voice Oohs", bank=0, program=53, pan=64, notes=[note], vibrato=True)
    hop = 256
    cents = {}
    for shape in (vibrato, None):
        audio = synth.render_stem([part], int(2.3 * SR), SR, shape).mean(axis=1)
        f0 = librosa.yin(audio, fmin=100, fmax=600, sr=SR, frame_length=2048, hop_length=hop, center=False)
        # yin's frame i covers samples [i*hop, i*hop + 2048): its centre time
        times = (np.arange(len(f0)) * hop + 1024) / SR
        cents[shape is None] = (times, 100 * (librosa.hz_to_midi(f0) - note.pitch))
    times, with_vibrato = cents[False]
    steady = (times > note.start + vibrato.delay + 0.3) & (times < note.end - 0.05)
    t = times[steady] - note.start - vibrato.delay
    # least-squares sinusoid at the asked rate: its amplitude is the vibrato depth
    basis = np.stack([np.sin(2 * np.pi * vibrato.rate_hz * t), np.cos(2 * np.pi * vibrato.rate_hz * t),
                      np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(basis, with_vibrato[steady], rcond=None)[0]
    assert np.hypot(coef[0], coef[1]) == pytest.approx(vibrato.depth_cents, rel=0.25)
    assert abs(coef[2]) < 15  # centred on the note
    _, plain = cents[True]
    # without the vibrato shape only the sample's own slight drift is left
    plain_coef = np.linalg.lstsq(basis, plain[steady], rcond=None)[0]
    assert np.hypot(plain_coef[0], plain_coef[1]) < 0.25 * vibrato.depth_cents
    # the onset scoops up from below the note
    onset = (times > note.start + 0.025) & (times < note.start + 0.045)
    assert np.median(with_vibrato[onset]) < np.median(plain[onset]) - 10
