"""melunmix.datasets.roots: which root, the generated dataset on first use, fingerprints."""

from __future__ import annotations

import json
import os

import pytest

from melunmix import datasets
from melunmix.datasets import TrainDataset, dataset_fingerprint, find_tracks, resolve_data_root

from datasets_support import write_setup


def test_resolve_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    from melunmix.base.config import GeneratedData

    # (where default_generated_root() itself lies: tests/test_locations.py, from the working
    # directory and the environment, never from the package's location)
    # one folder per set of generator parameters, so profiles never overwrite each other's data
    from melunmix.synth import GENERATOR_VERSION

    v = f"_v{GENERATOR_VERSION}"
    assert resolve_data_root() == datasets.default_generated_root() / f"train8-valid2-test4_30s_seed0{v}"
    small = GeneratedData(nb_train=4, nb_valid=1, nb_test=2, duration=8.0, seed=3)
    assert resolve_data_root(generated=small) == datasets.default_generated_root() / f"train4-valid1-test2_8s_seed3{v}"
    monkeypatch.setenv("MUSDB_PATH", str(tmp_path / "b"))
    assert resolve_data_root() == tmp_path / "b"
    monkeypatch.setenv("MUSDB_ROOT", str(tmp_path / "a"))
    assert resolve_data_root() == tmp_path / "a"
    assert resolve_data_root(tmp_path / "c") == tmp_path / "c"


def test_ensure_dataset_leaves_user_roots_alone(tmp_path):
    # A user root that does not exist is returned as is (find_tracks reports it), never generated.
    missing = tmp_path / "not-there"
    assert datasets.ensure_dataset(missing) == missing
    assert not missing.exists()


def test_ensure_dataset_generates_the_builtin_set_once(monkeypatch, tmp_path):
    from melunmix import synth
    from melunmix.datasets import roots

    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    generated_root = tmp_path / "generated"
    monkeypatch.setattr(roots, "default_generated_root", lambda: generated_root)
    params = dict(nb_train=2, nb_valid=1, nb_test=1, duration=synth.MIN_DURATION, seed=0)
    root = datasets.ensure_dataset(generated=params, progress=False)
    assert root.parent == generated_root and (root / "dataset.json").is_file()
    valid = find_tracks(root, "train", split="valid")  # its setup.yaml is picked up by itself
    train = find_tracks(root, "train", split="train")
    assert len(valid) == 1 and len(train) == 1 and len(find_tracks(root, "test")) == 1
    assert valid[0].rate == 44100 and valid[0].nb_samples == int(synth.MIN_DURATION * 44100)
    card = (root / "dataset.json").stat().st_mtime_ns
    assert datasets.ensure_dataset(generated=params, progress=False) == root
    assert (root / "dataset.json").stat().st_mtime_ns == card  # complete: not made again
    # other parameters: another folder; the first dataset is left as it was
    other = datasets.ensure_dataset(generated={**params, "seed": 1}, progress=False)
    assert other != root and other.parent == generated_root and (other / "dataset.json").is_file()
    assert (root / "dataset.json").stat().st_mtime_ns == card
    with pytest.raises(ValueError, match="unknown keys"):
        datasets.ensure_dataset(generated={"nb_songs": 3})
    mixture, vocals = TrainDataset(train, seq_dur=1.0, samples_per_track=1, progress=False)[0]
    assert mixture.shape == vocals.shape == (2, 44100)


def test_dataset_fingerprint_follows_files(noise_root):
    first = dataset_fingerprint(noise_root)
    assert first == dataset_fingerprint(noise_root) and len(first) == 16
    vocals = noise_root / "train" / "Artist - Song 0" / "vocals.wav"
    stat = vocals.stat()
    os.utime(vocals, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = dataset_fingerprint(noise_root)
    assert touched != first
    write_setup(noise_root, ["Artist - Song 2"])  # another validation split
    assert dataset_fingerprint(noise_root) != touched
    (noise_root / "dataset.json").write_text('{"seed": 1}')
    carded = dataset_fingerprint(noise_root)
    (noise_root / "dataset.json").write_text('{"seed": 2}')
    assert dataset_fingerprint(noise_root) != carded
    # a card with the audio's hash: the audio alone counts, not the library versions
    card = {"fingerprint": "ab" * 32, "software": {"numpy": "2.4.6"}}
    (noise_root / "dataset.json").write_text(json.dumps(card))
    audio = dataset_fingerprint(noise_root)
    card["software"]["numpy"] = "2.5.0"
    (noise_root / "dataset.json").write_text(json.dumps(card, indent=2))
    assert dataset_fingerprint(noise_root) == audio
    card["fingerprint"] = "cd" * 32
    (noise_root / "dataset.json").write_text(json.dumps(card))
    assert dataset_fingerprint(noise_root) != audio
    with pytest.raises(FileNotFoundError, match="nowhere"):
        dataset_fingerprint(noise_root / "nowhere")
