"""melunmix.datasets.scaler: scaler and feature statistics against numpy and librosa, cached by key."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.datasets import compute_feature_stats, compute_scaler_stats, find_tracks, load_or_compute_stats

from datasets_support import RATE, mono_magnitude


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
