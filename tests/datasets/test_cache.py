"""melunmix.datasets.cache: the cache folder, .stem.mp4 decoded once, entries written meanwhile by another process."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from melunmix import datasets
from melunmix.base import names
from melunmix.datasets import ValidDataset, decode_to_wav_cache, find_tracks

from datasets_support import RATE, STEMS, write_setup


def test_default_cache_dir_is_per_root_and_outside_it(tmp_path, default_cache_in_tmp, noise_root):
    first = datasets.default_cache_dir(noise_root)
    assert first.parent == default_cache_in_tmp and first.name.startswith("noise-")
    assert datasets.default_cache_dir(tmp_path / "elsewhere" / "noise") != first
    # Without a cache argument the resample cache goes there.
    ValidDataset(find_tracks(noise_root, "test"), sample_rate=RATE // 2, progress=False)
    assert (first / f"wav-{RATE // 2}Hz" / "test" / "Artist - Test" / "mixture.wav").is_file()


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
    assert cache._cached(dest, new_key, list(other)) and np.all(sf.read(str(mixture), dtype="float32")[0] == 0.0)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["song"]  # no temporary folder left
