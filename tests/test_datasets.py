"""melunmix.datasets: track discovery, fast reads, caches, training/validation items, statistics.

Every test writes its own tiny MUSDB18-HQ-layout dataset (real WAV files, and a real
AAC ``.stem.mp4`` for the decode cache) under pytest's ``tmp_path`` and reads it with the
real musdb, soundfile, soxr and ffmpeg. Signals are chosen so that what the loader did can
be read back from the values: constant stems reveal gains and channel swaps, ramps reveal
chunk positions, sines have closed forms after resampling.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from melunmix import datasets
from melunmix.base import names
from melunmix.datasets import (
    TrainDataset,
    ValidDataset,
    compute_feature_stats,
    compute_scaler_stats,
    dataset_fingerprint,
    decode_to_wav_cache,
    find_tracks,
    load_or_compute_stats,
    read_chunk,
    resolve_data_root,
)

STEMS = names.SOURCES  # a test track's source files
RATE = 8000  # small files; the loader does not care about the rate


# --------------------------------------------------------------------------- builders
def write_track(root, subset, name, stems, rate=RATE, subtype="FLOAT", mixture=None):
    """Write one MUSDB18-HQ track folder; ``stems`` maps source -> (nb_samples, 2) array."""
    folder = Path(root) / subset / name
    folder.mkdir(parents=True, exist_ok=True)
    for source, audio in stems.items():
        sf.write(folder / f"{source}.wav", audio, rate, subtype=subtype)
    if mixture is None:
        mixture = sum(stems[s] for s in STEMS)
    sf.write(folder / "mixture.wav", mixture, rate, subtype=subtype)
    return folder


def write_setup(root, validation):
    """A musdb setup file (musdb's own MUSDB18 setup with another validation list)."""
    import musdb

    with open(Path(musdb.__path__[0]) / "configs" / "mus.yaml") as fh:
        setup = yaml.safe_load(fh)
    setup["validation_tracks"] = list(validation)
    with open(Path(root) / "setup.yaml", "w") as fh:
        yaml.safe_dump(setup, fh)


def noise_stems(rng, nb_samples, scale=0.1):
    return {s: (scale * rng.standard_normal((nb_samples, 2))).astype(np.float32) for s in STEMS}


def dc_stems(track_index, nb_samples):
    """Constant stems: source k of track t has left 0.1*(k+1) + t and right twice the left.

    Left and right differ, so a swap is visible; track index is the integer part.
    """
    stems = {}
    for k, source in enumerate(STEMS):
        left = 0.1 * (k + 1) + track_index
        stems[source] = np.tile(np.float32([left, 2 * left]), (nb_samples, 1))
    return stems


@pytest.fixture
def noise_root(tmp_path):
    """4 train tracks (1 of them validation) and 1 test track of noise, 1 s at 8 kHz."""
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for i in range(4):
        write_track(root, "train", f"Artist - Song {i}", noise_stems(rng, RATE))
    write_track(root, "test", "Artist - Test", noise_stems(rng, RATE))
    write_setup(root, ["Artist - Song 3"])
    return root


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def default_cache_in_tmp(monkeypatch, tmp_path):
    """Caches a test does not place itself go to tmp_path, never into the repository."""
    monkeypatch.setenv("MELUNMIX_CACHE_DIR", str(tmp_path / "default-cache"))
    return tmp_path / "default-cache"


def test_default_cache_dir_is_per_root_and_outside_it(tmp_path, default_cache_in_tmp, noise_root):
    first = datasets.default_cache_dir(noise_root)
    assert first.parent == default_cache_in_tmp and first.name.startswith("noise-")
    assert datasets.default_cache_dir(tmp_path / "elsewhere" / "noise") != first
    # Without a cache argument the resample cache goes there.
    ValidDataset(find_tracks(noise_root, "test"), sample_rate=RATE // 2, progress=False)
    assert (first / f"wav-{RATE // 2}Hz" / "test" / "Artist - Test" / "mixture.wav").is_file()


# --------------------------------------------------------------------------- roots
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


# --------------------------------------------------------------------------- find_tracks
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


# --------------------------------------------------------------------------- read_chunk
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_read_chunk_matches_soundfile(tmp_path, subtype):
    audio = np.random.default_rng(3).uniform(-0.9, 0.9, (1000, 2)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, audio, RATE, subtype=subtype)
    reference, _ = sf.read(path, dtype="float32", always_2d=True)  # libsndfile's own scaling
    chunk = read_chunk(path, 123, 456)
    assert chunk.shape == (2, 456) and chunk.dtype == np.float32 and chunk.flags.c_contiguous
    np.testing.assert_array_equal(chunk, reference[123:579].T)
    padded = read_chunk(path, 900, 200, pad=True)
    np.testing.assert_array_equal(padded[:, :100], reference[900:].T)
    assert not padded[:, 100:].any()
    with pytest.raises(ValueError, match=r"cannot read samples \[900, 1100\) from .*x.wav: it has 1000;"):
        read_chunk(path, 900, 200)
    with pytest.raises(ValueError, match="start must be >= 0"):
        read_chunk(path, -1, 10)


# --------------------------------------------------------------------------- TrainDataset
@pytest.fixture
def dc_root(tmp_path):
    root = tmp_path / "dc"
    for t in range(3):
        write_track(root, "train", f"DC - {t}", dc_stems(t, 2 * RATE))
    return root


def test_train_items_shapes_and_length(noise_root, cache_dir):
    tracks = find_tracks(noise_root, "train", split="train")
    data = TrainDataset(tracks, seq_dur=0.25, samples_per_track=5, cache_dir=cache_dir)
    assert len(data) == 15 and data.rate == RATE and data.nb_samples == 2000
    mixture, target = data[0]
    assert mixture.shape == target.shape == (2, 2000)
    assert mixture.dtype == target.dtype == torch.float32
    both = TrainDataset(tracks, targets=("vocals", "accompaniment"), seq_dur=0.25, samples_per_track=5)
    mixture, target = both[14]
    assert target.shape == (2, 2, 2000)
    # accompaniment = mixture - vocals: the mixture is the sum of all four sources.
    torch.testing.assert_close(target[1], mixture - target[0], atol=1e-6, rtol=0)
    with pytest.raises(IndexError):
        both[15]
    # Longer excerpts than the tracks are zero-padded to a fixed length.
    long = TrainDataset(tracks, seq_dur=1.5, samples_per_track=1)
    mixture, _ = long[0]
    assert mixture.shape == (2, 12000) and not mixture[:, RATE:].any() and mixture[:, :RATE].abs().min() > 0
    # WAV at the native rate: no audio cached, only the mixture check of each track
    assert not list(cache_dir.rglob("*.wav"))
    assert sorted(p.stem for p in (cache_dir / "checks" / "train" / str(RATE)).glob("*.json")) == [t.name for t in tracks]


def test_train_augmentation_stays_in_bounds(dc_root):
    tracks = find_tracks(dc_root, "train")[:1]  # one track: every unscaled value is known
    data = TrainDataset(tracks, targets=STEMS, seq_dur=0.1, samples_per_track=300, seed=7)
    gains, swaps = [], []
    for index in range(len(data)):
        mixture, stack = data[index]
        torch.testing.assert_close(mixture, stack.sum(0), atol=1e-6, rtol=0)
        for k in range(4):
            assert torch.all(stack[k] == stack[k, :, :1])  # constant stems stay constant
            left, right = stack[k, 0, 0].item(), stack[k, 1, 0].item()
            swapped = left > right  # the file's right channel is twice its left
            assert max(left, right) == pytest.approx(2 * min(left, right), rel=1e-6)
            gains.append(min(left, right) / (0.1 * (k + 1)))
            swaps.append(swapped)
    assert 0.25 - 1e-6 <= min(gains) < 0.27 and 1.23 < max(gains) <= 1.25 + 1e-6
    assert 0.7 < np.mean(gains) < 0.8  # uniform on [0.25, 1.25]: mean 0.75
    assert 0.45 < np.mean(swaps) < 0.55  # 1200 Bernoulli(0.5) draws: 3 sigma is 0.043


def test_train_without_augmentation_keeps_stems(dc_root):
    tracks = find_tracks(dc_root, "train")
    data = TrainDataset(
        tracks, targets=STEMS, seq_dur=0.1, samples_per_track=10, gain_range=None, swap_channels=False,
        random_track_mix=False,
    )
    for index in range(len(data)):
        _, stack = data[index]
        t = index // 10
        for k in range(4):
            expected = torch.tensor([0.1 * (k + 1) + t, 2 * (0.1 * (k + 1) + t)])[:, None].expand(2, 800)
            torch.testing.assert_close(stack[k], expected)


@pytest.fixture
def ramp_root(tmp_path):
    """Left channel holds the track number, right channel the sample index / 10000."""
    root = tmp_path / "ramp"
    nb_samples = 3000
    ramp = np.arange(nb_samples, dtype=np.float32) / 10000
    for t in range(4):
        column = np.full(nb_samples, t + 1, np.float32)
        write_track(root, "train", f"Ramp - {t}", {s: np.stack([column, ramp], 1) for s in STEMS})
    return root


def test_train_chunks_come_from_random_tracks_and_positions(ramp_root):
    tracks = find_tracks(ramp_root, "train")
    data = TrainDataset(
        tracks, targets=STEMS, seq_dur=0.125, samples_per_track=20, gain_range=None, swap_channels=False, seed=3
    )
    starts, origins = [], []
    for index in range(len(data)):
        _, stack = data[index]
        for k in range(4):
            position = np.rint(stack[k, 1].numpy() * 10000).astype(int)
            np.testing.assert_array_equal(np.diff(position), 1)  # one contiguous excerpt
            assert 0 <= position[0] <= 3000 - 1000
            starts.append(position[0])
            origins.append(int(stack[k, 0, 0]))
    assert set(origins) == {1, 2, 3, 4}  # every track is drawn
    assert len(set(starts)) > 200  # random positions, not a few fixed ones
    assert min(starts) < 100 and max(starts) > 1900  # over the whole room of 2000 samples
    # Sources of one item mostly come from different tracks (4 draws with replacement).
    per_item = np.array(origins).reshape(-1, 4)
    assert np.mean([len(set(row)) > 1 for row in per_item]) > 0.8

    fixed = TrainDataset(
        tracks, seq_dur=0.125, samples_per_track=3, random_chunks=False, random_track_mix=False,
        gain_range=None, swap_channels=False,
    )
    firsts = [int(round(fixed[i][1][1, 0].item() * 10000)) for i in range(3)]
    assert firsts == [0, 1000, 2000]  # evenly spaced over the room of 2000 samples


def test_train_items_reproducible_across_workers(noise_root):
    tracks = find_tracks(noise_root, "train", split="train")
    data = TrainDataset(tracks, seq_dur=0.05, samples_per_track=4, seed=11)

    def batches(num_workers):
        loader = torch.utils.data.DataLoader(data, batch_size=3, shuffle=False, num_workers=num_workers)
        return torch.cat([mixture for mixture, _ in loader])

    first, second = batches(2), batches(2)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, batches(0), rtol=0, atol=0)  # same items whatever the worker
    flat = first.reshape(len(data), -1)
    assert torch.cdist(flat, flat).add(torch.eye(len(data)) * 1e9).min() > 0  # items differ from each other
    data.set_epoch(1)
    assert not torch.equal(data[0][0], first[0])  # a new epoch draws new items
    data.set_epoch(0)
    torch.testing.assert_close(data[0][0], first[0], rtol=0, atol=0)
    other_seed = TrainDataset(tracks, seq_dur=0.05, samples_per_track=4, seed=12)
    assert not torch.equal(other_seed[0][0], first[0])


def test_train_rejects_bad_arguments_and_mixed_rates(noise_root, tmp_path):
    tracks = find_tracks(noise_root, "train", split="train")
    with pytest.raises(ValueError, match="targets"):
        TrainDataset(tracks, targets=("voice",))
    with pytest.raises(ValueError, match="seq_dur"):
        TrainDataset(tracks, seq_dur=0)
    with pytest.raises(ValueError, match="gain_range"):
        TrainDataset(tracks, gain_range=(1.5, 0.5))
    with pytest.raises(ValueError, match="no tracks given"):
        TrainDataset([])
    write_track(tmp_path / "fast", "train", "Fast - 1", noise_stems(np.random.default_rng(4), 2 * RATE), rate=2 * RATE)
    mixed = tracks + find_tracks(tmp_path / "fast", "train")
    with pytest.raises(ValueError, match="different sample rates.*sample_rate="):
        TrainDataset(mixed)


def test_non_finite_samples_are_reported_with_the_file(tmp_path, cache_dir):
    root = tmp_path / "nan"
    stems = noise_stems(np.random.default_rng(5), 800)
    stems["bass"][10, 0] = np.nan
    write_track(root, "train", "Nan - Track", stems, mixture=np.zeros((800, 2), np.float32))
    tracks = find_tracks(root, "train")
    with pytest.raises(ValueError, match=r"bass \(.*Nan - Track/bass.wav\)"):
        TrainDataset(tracks, seq_dur=0.1, samples_per_track=1, random_chunks=False, random_track_mix=False)[0]
    with pytest.raises(ValueError, match="Nan - Track.*bass.wav"):
        ValidDataset(tracks, targets=("accompaniment",))[0]
    with pytest.raises(ValueError, match="Nan - Track.*bass.wav.*NaN"):
        TrainDataset(tracks, sample_rate=RATE // 2, cache_dir=cache_dir)


# --------------------------------------------------------------------------- ValidDataset
def test_valid_items_are_real_mixtures_and_targets(noise_root):
    tracks = find_tracks(noise_root, "train")
    full = ValidDataset(tracks, targets=("vocals", "accompaniment"))
    assert len(full) == 4
    mixture, target = full[2]
    folder = noise_root / "train" / "Artist - Song 2"
    reference = {s: sf.read(folder / f"{s}.wav", dtype="float32")[0].T for s in ("mixture", *STEMS)}
    np.testing.assert_array_equal(mixture.numpy(), reference["mixture"])
    np.testing.assert_array_equal(target[0].numpy(), reference["vocals"])
    accompaniment = reference["drums"] + reference["bass"] + reference["other"]
    np.testing.assert_allclose(target[1].numpy(), accompaniment, atol=1e-6)
    assert full.track(2).name == "Artist - Song 2"

    chunks = ValidDataset(tracks, seq_dur=0.3)  # 8000 samples -> 3 chunks of 2400, tail dropped
    assert len(chunks) == 12 and chunks.items[:3] == [(0, 0, 2400), (0, 2400, 2400), (0, 4800, 2400)]
    mixture, vocals = chunks[4]
    folder = noise_root / "train" / "Artist - Song 1"
    np.testing.assert_array_equal(mixture.numpy(), sf.read(folder / "mixture.wav", dtype="float32")[0][2400:4800].T)
    np.testing.assert_array_equal(vocals.numpy(), sf.read(folder / "vocals.wav", dtype="float32")[0][2400:4800].T)


# --------------------------------------------------------------------------- resampling cache
def test_sample_rate_option_resamples_once(tmp_path, cache_dir):
    root = tmp_path / "sine"
    n = np.arange(2 * 16000)
    stems = {s: np.stack([0.5 * np.sin(2 * np.pi * f * n / 16000)] * 2, 1).astype(np.float32)
             for s, f in zip(STEMS, (440, 620, 110, 1500))}
    write_track(root, "train", "Sine - 1", stems, rate=16000)
    tracks = find_tracks(root, "train")
    valid = ValidDataset(tracks, targets=STEMS, sample_rate=8000, cache_dir=cache_dir)
    assert valid.rate == 8000 and valid.tracks[0].nb_samples == 16000
    _, stack = valid[0]
    m = np.arange(16000)
    inner = slice(200, -200)  # away from the filter's edge transients
    for k, f in enumerate((440, 620, 110, 1500)):
        expected = 0.5 * np.sin(2 * np.pi * f * m / 8000)
        np.testing.assert_allclose(stack[k, 0, inner].numpy(), expected[inner], atol=2e-3)
    cached = cache_dir / "wav-8000Hz" / "train" / "Sine - 1" / "vocals.wav"
    assert sf.info(cached).samplerate == 8000
    before = cached.stat().st_mtime_ns
    time.sleep(0.01)
    train = TrainDataset(tracks, sample_rate=8000.0, seq_dur=0.5, samples_per_track=2, cache_dir=cache_dir)
    assert train.rate == 8000 and train[0][0].shape == (2, 4000)
    assert cached.stat().st_mtime_ns == before  # reused, not resampled again
    with pytest.raises(ValueError, match="whole number"):
        TrainDataset(tracks, sample_rate=8000.5, cache_dir=cache_dir)


# --------------------------------------------------------------------------- .stem.mp4
def test_stem_mp4_decodes_once_into_wav_cache(tmp_path, cache_dir):
    import stempeg

    rate, nb_samples = 44100, 44100
    rng = np.random.default_rng(6)
    # Band-limited noise (AAC at 256 kb/s codes it well) so alignment is unambiguous.
    kernel = np.hanning(9) / np.hanning(9).sum()
    stems = {
        s: 0.3 * np.stack([np.convolve(rng.standard_normal(nb_samples), kernel, "same") for _ in range(2)], 1)
        for s in STEMS
    }
    stems = {s: audio.astype(np.float32) for s, audio in stems.items()}
    mixture = sum(stems.values())
    order = ("mixture", "drums", "bass", "other", "vocals")  # MUSDB18 stream order
    root = tmp_path / "stems"
    (root / "train").mkdir(parents=True)
    source = root / "train" / "Stem - Song.stem.mp4"
    stempeg.write_stems(
        str(source), np.stack([mixture if s == "mixture" else stems[s] for s in order]), sample_rate=rate,
        writer=stempeg.StreamsWriter(codec="aac", bitrate=256000),
    )
    write_setup(root, [])
    tracks = find_tracks(root, "train")  # format detected from the files
    assert len(tracks) == 1 and not tracks[0].is_wav and tracks[0].stems == {}
    assert tracks[0].stem_ids == {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
    with pytest.raises(ValueError, match="not been decoded"):
        tracks[0].wav("vocals")
    decoded = decode_to_wav_cache(tracks, cache_dir, progress=False)[0]
    # musdb's length: the AAC encoder's last-frame padding kept (less than a codec frame more)
    assert nb_samples <= decoded.nb_samples < nb_samples + 1024
    for name in ("vocals", "drums", "mixture"):
        reference = mixture if name == "mixture" else stems[name]
        audio, file_rate = sf.read(decoded.wav(name), dtype="float32")
        assert file_rate == rate and audio.shape == (decoded.nb_samples, 2)
        audio = audio[:nb_samples]  # the song; the rest is the encoder's padding
        # No delay: the cross-correlation peaks at lag 0 (ffmpeg honours the encoder delay).
        lags = np.arange(-2048, 2049)
        xcorr = [np.dot(reference[4096:-4096, 0], audio[4096 + lag:nb_samples - 4096 + lag, 0]) for lag in lags]
        assert lags[int(np.argmax(xcorr))] == 0
        assert np.corrcoef(reference[:, 0], audio[:, 0])[0, 1] > 0.95
        snr = 10 * np.log10(np.sum(reference**2) / np.sum((reference - audio) ** 2))
        assert snr > 15, f"{name}: SNR {snr:.1f} dB after AAC"
    # The same samples musdb's reader gets from the stream (stempeg asking ffmpeg for s16le):
    # the references SiSEC 2018's and Open-Unmix's published scores were made with.
    import musdb

    (musdb_track,) = musdb.DB(root=str(root), subsets="train").tracks
    for name in ("vocals", "drums"):
        assert sf.info(str(decoded.wav(name))).subtype == "PCM_16"  # half of float32's size
        ours = sf.read(decoded.wav(name), dtype="float32")[0]
        np.testing.assert_array_equal(ours, musdb_track.sources[name].audio.astype(np.float32))  # whole length
    vocals = decoded.wav("vocals")
    first = vocals.stat().st_mtime_ns
    again = decode_to_wav_cache(tracks, cache_dir, progress=False)[0]
    assert again.wav("vocals") == vocals and vocals.stat().st_mtime_ns == first  # reused
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    decode_to_wav_cache(tracks, cache_dir, progress=False)
    assert vocals.stat().st_mtime_ns != first  # the source changed: rebuilt
    assert not [p for p in vocals.parent.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    # A dataset over stems reads the decoded WAV.
    item = ValidDataset(tracks, cache_dir=cache_dir)[0]
    assert item[0].shape == (2, decoded.nb_samples)


# --------------------------------------------------------------------------- statistics
def mono_magnitude(audio, n_fft, n_hop, center=False):
    """Reference in plain numpy: frames uncentred (Open-Unmix's statistics) or centred
    (reflect padding), periodic Hann window, rFFT magnitude per channel, then the mean over
    channels. Shape (nb_bins, nb_frames)."""
    if center:
        padded = np.pad(audio.T.astype(np.float64), ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
        nb_frames = 1 + audio.shape[0] // n_hop
    else:
        padded = audio.T.astype(np.float64)
        nb_frames = 1 + (audio.shape[0] - n_fft) // n_hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[:, t * n_hop : t * n_hop + n_fft] * window for t in range(nb_frames)], axis=-1)
    return np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0)


def test_scaler_stats_match_numpy(noise_root):
    tracks = find_tracks(noise_root, "train", split="train")
    stats = compute_scaler_stats(tracks, n_fft=256, n_hop=64, progress=False)
    frames = np.concatenate(
        [mono_magnitude(sf.read(t.stems["mixture"], dtype="float32")[0], 256, 64) for t in tracks], axis=1
    )
    std = frames.std(axis=1)
    assert stats["mean"].shape == stats["std"].shape == (129,)
    np.testing.assert_allclose(stats["mean"], frames.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], np.maximum(std, 1e-4 * std.max()), rtol=1e-4)
    # centre=True (the framing of separation) is a different set of frames: its own numbers.
    centred = compute_scaler_stats(tracks, n_fft=256, n_hop=64, progress=False, center=True)
    frames = np.concatenate(
        [mono_magnitude(sf.read(t.stems["mixture"], dtype="float32")[0], 256, 64, center=True) for t in tracks],
        axis=1)
    np.testing.assert_allclose(centred["mean"], frames.mean(axis=1), rtol=1e-5)


def test_feature_stats_match_librosa_mel_and_floor_std(noise_root):
    from melunmix.dsp.features import branch_transform

    tracks = find_tracks(noise_root, "train", split="train")
    transform = branch_transform("mel", sample_rate=RATE, n_fft=256, n_mels=16)
    stats = compute_feature_stats(tracks, transform, n_fft=256, n_hop=64, progress=False)
    mel = librosa.filters.mel(sr=RATE, n_fft=256, n_mels=16)
    magnitudes = [mono_magnitude(sf.read(t.stems["mixture"], dtype="float32")[0], 256, 64) for t in tracks]
    frames = np.concatenate([librosa.power_to_db(mel @ m**2, top_db=None) for m in magnitudes], axis=1)
    np.testing.assert_allclose(stats["mean"], frames.mean(axis=1), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(stats["std"], frames.std(axis=1), rtol=1e-3)

    # A constant band has std 0; it is floored at 1e-4 of the largest std.
    def with_constant_band(magnitude):
        return torch.cat([magnitude[..., :3, :], torch.ones_like(magnitude[..., :1, :])], dim=-2)

    floored = compute_feature_stats(tracks, with_constant_band, n_fft=256, n_hop=64, progress=False)
    assert floored["mean"][3] == pytest.approx(1.0)
    assert floored["std"][3] == pytest.approx(1e-4 * floored["std"][:3].max())
    with pytest.raises(ValueError, match="transform must map"):
        compute_feature_stats(tracks, lambda m: m[0], n_fft=256, n_hop=64, progress=False)


def test_load_or_compute_stats_caches_by_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"mean": np.arange(3.0), "std": np.ones(3)}

    key = {"dataset": "abc", "n_fft": 4096, "n_hop": 1024, "root": tmp_path}
    first = load_or_compute_stats(tmp_path / "features", key, compute)
    second = load_or_compute_stats(tmp_path / "features", dict(key), compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(second["mean"], first["mean"])
    load_or_compute_stats(tmp_path / "features", {**key, "n_hop": 512}, compute)
    assert len(calls) == 2
    load_or_compute_stats(tmp_path / "features", "input_sr44100_nfft4096_abc", compute)
    names = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert "input_sr44100_nfft4096_abc.npz" in names and "input_sr44100_nfft4096_abc.json" in names
    assert len(names) == 6 and not [n for n in names if n.startswith(".")]  # npz + json per key, no temp files
    with pytest.raises(TypeError, match="mapping of arrays"):
        load_or_compute_stats(tmp_path / "other", "k", lambda: None)


def test_cache_entry_written_meanwhile_by_another_process_is_kept(tmp_path):
    """Two processes filling one cache entry: the second keeps the first's valid copy in place
    (its readers never see the folder vanish); a stale copy (other key) is replaced."""
    from melunmix.datasets import cache

    dest = tmp_path / "cache" / "song"
    stems = {name: np.full((100, 2), 0.25, dtype=np.float32) for name in names.STEMS}
    key = {"sources": {"mixture": {"path": "/a", "size": 1, "mtime_ns": 1}}}
    cache._write_track(dest, key, stems, 44100)
    inode = dest.stat().st_ino
    mixture = dest / "mixture.wav"
    before = mixture.stat().st_mtime_ns
    other = {name: np.zeros((100, 2), dtype=np.float32) for name in names.STEMS}
    cache._write_track(dest, key, other, 44100)  # what a second writer of the same entry does
    assert dest.stat().st_ino == inode and mixture.stat().st_mtime_ns == before
    assert np.all(sf.read(str(mixture), dtype="float32")[0] == 0.25)
    new_key = {"sources": {"mixture": {"path": "/a", "size": 2, "mtime_ns": 2}}}
    cache._write_track(dest, new_key, other, 44100)  # the source changed: the copy is stale
    assert cache._cached(dest, new_key) and np.all(sf.read(str(mixture), dtype="float32")[0] == 0.0)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["song"]  # no temporary folder left
