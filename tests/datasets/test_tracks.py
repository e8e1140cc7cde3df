"""melunmix.datasets.tracks: finding and checking tracks, and the errors that name the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from melunmix.datasets import find_tracks

from datasets_support import RATE, STEMS, noise_stems, write_setup, write_track


def test_find_tracks_splits_and_metadata(noise_root):
    import musdb

    train = find_tracks(noise_root, "train", split="train")
    valid = find_tracks(noise_root, "train", split="valid")
    every = find_tracks(noise_root, "train")
    test = find_tracks(noise_root, "test")
    assert [t.name for t in train] == ["Artist - Song 0", "Artist - Song 1", "Artist - Song 2"]
    assert [t.name for t in valid] == ["Artist - Song 3"]
    assert [t.split for t in every] == ["train", "train", "train", "valid"]
    assert [(t.name, t.subset, t.split) for t in test] == [("Artist - Test", "test", None)]
    track = train[0]
    assert (track.rate, track.nb_samples, track.nb_channels, track.is_wav) == (RATE, RATE, 2, True)
    assert track.path == noise_root / "train" / "Artist - Song 0"
    assert track.stems == {s: track.path / f"{s}.wav" for s in ("mixture", *STEMS)}
    assert track.duration == pytest.approx(1.0)
    # The same root and split as musdb sees them.
    db = musdb.DB(root=str(noise_root), setup_file="setup.yaml", is_wav=True, subsets="train", split="valid")
    assert [t.name for t in db.tracks] == [t.name for t in valid]


def test_find_tracks_musdb_default_setup(noise_root, capsys):
    # Without setup.yaml, musdb's MUSDB18 validation list applies: none of these names is in
    # it, so a split is derived (1 of 4 songs; tests/test_roots_any_folder.py checks the rule).
    (noise_root / "setup.yaml").unlink()
    train = find_tracks(noise_root, "train", split="train")
    valid = find_tracks(noise_root, "train", split="valid")
    assert len(train) == 3 and len(valid) == 1
    assert {t.name for t in train} | {t.name for t in valid} == {f"Artist - Song {i}" for i in range(4)}
    printed = capsys.readouterr().out
    assert printed.count("validation split derived") == 1 and valid[0].name in printed


def test_find_tracks_errors_name_the_problem(tmp_path, noise_root):
    with pytest.raises(FileNotFoundError, match="does not exist.*MUSDB_ROOT"):
        find_tracks(tmp_path / "missing")
    with pytest.raises(ValueError, match="subset"):
        find_tracks(noise_root, "valid")
    with pytest.raises(ValueError, match="needs subset='train'"):
        find_tracks(noise_root, "test", split="valid")
    with pytest.raises(FileNotFoundError, match="setup file"):
        find_tracks(noise_root, setup_file="other.yaml")
    (noise_root / "setup.yaml").write_text("validation_tracks: []\n")
    with pytest.raises(ValueError, match="lacks.*sources"):
        find_tracks(noise_root)


@pytest.mark.parametrize(
    "problem, error, message",
    [
        ("missing stem", FileNotFoundError, "'Bad - Track' lacks drums.wav.*musdbconvert"),
        ("mono", ValueError, "'Bad - Track': bass .*is mono"),
        ("length", ValueError, "'Bad - Track': stems have different lengths"),
        ("rate", ValueError, "'Bad - Track': stems have different sample rates"),
    ],
)
def test_find_tracks_rejects_broken_tracks(tmp_path, problem, error, message):
    root = tmp_path / "broken"
    rng = np.random.default_rng(1)
    write_track(root, "train", "Good - Track", noise_stems(rng, 800))
    folder = write_track(root, "train", "Bad - Track", noise_stems(rng, 800))
    if problem == "missing stem":
        (folder / "drums.wav").unlink()
    elif problem == "mono":
        sf.write(folder / "bass.wav", np.zeros(800, np.float32), RATE, subtype="FLOAT")
    elif problem == "length":
        sf.write(folder / "other.wav", np.zeros((799, 2), np.float32), RATE, subtype="FLOAT")
    else:
        sf.write(folder / "vocals.wav", np.zeros((800, 2), np.float32), 2 * RATE, subtype="FLOAT")
    with pytest.raises(error, match=message):
        find_tracks(root, "train")


def test_generated_dataset_errors_say_regenerate(tmp_path):
    from melunmix.base.dataset_format import GENERATED_FORMAT

    root = tmp_path / "gen"
    folder = write_track(root, "train", "Song - 1", noise_stems(np.random.default_rng(2), 400))
    (folder / "other.wav").unlink()
    (root / "dataset.json").write_text(json.dumps({"format": GENERATED_FORMAT}))
    with pytest.raises(FileNotFoundError, match="generated dataset: delete .* and regenerate"):
        find_tracks(root, "train")


@pytest.mark.parametrize("card", [None, "{}", '{"format": "my own dataset"}', "not json"])
def test_a_users_dataset_is_never_told_to_be_deleted(tmp_path, card):
    """A user's root may hold musdb's setup.yaml (or any dataset.json): only the
    generator's own manifest earns the advice to delete and regenerate."""
    root = tmp_path / "mine"
    folder = write_track(root, "train", "Song - 1", noise_stems(np.random.default_rng(2), 400))
    (folder / "other.wav").unlink()
    write_setup(root, [])
    if card is not None:
        (root / "dataset.json").write_text(card)
    with pytest.raises(FileNotFoundError) as err:
        find_tracks(root, "train")
    assert "delete" not in str(err.value) and "other.wav" in str(err.value)


def test_empty_split_is_an_error(noise_root):
    write_setup(noise_root, [f"Artist - Song {i}" for i in range(4)])
    with pytest.raises(ValueError, match="every song of .* is a validation song.*none is left to train on"):
        find_tracks(noise_root, "train", split="train")


