"""melunmix.synth.dataset: the generated dataset's files, splits, manifest, versions, resumption and argument checks."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from melunmix import synth

from synth_support import DURATION, PARAMS, SR, file_hashes, ratio_mask_oracle, read_stem


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
        audio = read_stem(folder)
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


def test_same_arguments_same_bytes_and_seed_matters(dataset, tmp_path):
    again = synth.make_dataset(tmp_path / "again", progress=False, **PARAMS)
    assert file_hashes(again) == file_hashes(dataset)
    other = synth.make_dataset(tmp_path / "other", progress=False, **{**PARAMS, "seed": 4, "nb_train": 1,
                                                                         "nb_valid": 0})
    audio_other = {k: v for k, v in file_hashes(other).items() if k.endswith(".wav")}
    assert not set(audio_other.values()) & set(file_hashes(dataset).values())


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
    assert "**reverb**" in card and f"exactly silent from {synth.REVERB_TAIL:g} s" in card
    assert "## The voice" in card and "Csound manual" in card and "Rosenberg" in card and "KlattGrid" in card
    for entry in manifest["tracks"]:
        lead = entry["voice"]["lead"]
        assert lead["voice_type"] in entry["instruments"]["vocals"][0] and lead["voice_type"] in card
        assert len(entry["voice"]["lyrics"].split()) == len(synth.arrange_song(
            PARAMS["seed"], entry["split"], int(entry["name"].split()[2]) - 1, DURATION).parts["vocals"][0].notes)
    assert all(entry["name"] in card for entry in manifest["tracks"])


@pytest.mark.parametrize("marker", ["dataset.json", ".make_dataset.json"])
def test_dataset_of_another_generator_version_is_refused(dataset, tmp_path, marker):
    # What an older generator left: a complete dataset, or an interrupted one (only the
    # parameters file of the run in progress), both recording their generator version.
    old = tmp_path / "old"
    shutil.copytree(dataset, old)
    manifest = json.loads((old / "dataset.json").read_text())
    manifest["parameters"]["generator_version"] = synth.GENERATOR_VERSION - 1
    if marker != "dataset.json":
        (old / "dataset.json").unlink()
    (old / marker).write_text(json.dumps(manifest))
    before = file_hashes(old)
    message = (rf"generator version {synth.GENERATOR_VERSION - 1}; this code is version {synth.GENERATOR_VERSION}"
               rf".*Delete {re.escape(str(old))} to regenerate")
    with pytest.raises(ValueError, match=message):
        synth.make_dataset(old, progress=False, **PARAMS)
    assert file_hashes(old) == before


def test_rerun_with_same_arguments_does_nothing(dataset):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert synth.make_dataset(dataset, progress=False, **PARAMS) == dataset
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before


def test_rerun_with_other_arguments_is_refused(dataset):
    before = file_hashes(dataset)
    with pytest.raises(ValueError, match=r"duration=6\.0 there, 7\.0 asked.*another output folder"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "duration": 7.0})
    with pytest.raises(ValueError, match="nb_test=1 there, 2 asked"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "nb_test": 2})
    assert file_hashes(dataset) == before


def test_interrupted_run_resumes_with_only_missing_tracks(tmp_path):
    params = dict(nb_train=1, nb_valid=0, nb_test=1, duration=4.0, seed=11, progress=False)
    root = synth.make_dataset(tmp_path / "d", **params)
    complete = file_hashes(root)
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
    assert file_hashes(root) == complete
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
        ({"nb_train": 2, "nb_valid": 2}, r"nb_valid, --valid: 2\) must be fewer .*nb_train, --train: 2\)"),
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


def test_an_output_path_that_is_a_file_names_the_flag(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(NotADirectoryError, match=rf"output folder {taken} \(--out, out_dir\) is a file"):
        synth.make_dataset(taken, progress=False, **PARAMS)
    assert taken.read_text() == "mine"


def test_unrelated_folder_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        synth.make_dataset(tmp_path, progress=False, **PARAMS)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_museval_scores_do_not_move_when_the_references_are_rounded_to_16_bit(dataset, manifest):
    # Before the reverb, this track's oracle scored vocals SIR 1.9 dB with float references
    # and 21.0 dB with 16-bit ones (ISR -1.9 vs 15.6) while SDR stayed put.
    import museval

    entry = manifest["tracks"][0]
    audio = read_stem(dataset / entry["subset"] / entry["name"])
    references = [audio["vocals"], (audio["drums"] + audio["bass"]) + audio["other"]]
    estimates = np.stack(ratio_mask_oracle(references, audio["mixture"]))
    scores = {}
    for label, refs in (("float", references), ("16 bit", [np.round(r * 2**15) / 2**15 for r in references])):
        sdr, isr, sir, _ = museval.evaluate(np.stack(refs), estimates, win=SR, hop=SR)
        scores[label] = {"SDR": sdr, "ISR": isr, "SIR": sir}
    for metric in ("SDR", "ISR", "SIR"):
        exact, rounded = scores["float"][metric], scores["16 bit"][metric]
        assert (np.isfinite(exact).sum(axis=1) >= 3).all(), (metric, exact)
        swing = np.abs(np.nanmedian(exact, axis=1) - np.nanmedian(rounded, axis=1))
        assert (swing < 3).all(), (metric, swing)
    # and plausible for an oracle mask: the voice well apart from the accompaniment
    assert np.nanmedian(scores["float"]["SIR"][0]) > 10
    assert np.nanmedian(scores["float"]["ISR"][0]) > 8
