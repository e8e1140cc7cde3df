"""melunmix.datasets.torch_datasets: Open-Unmix's training items and the validation items."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.datasets import TrainDataset, ValidDataset, find_tracks

from datasets_support import RATE, STEMS, noise_stems, write_track


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
