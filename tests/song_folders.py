"""Song folders in the MUSDB18 layout written from synthetic stems (``.stem.mp4`` and WAV),
and the tiny profile that runs the study on them: shared by tests/test_roots_any_folder.py
and tests/datasets/test_checks.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

RATE = 44100
#: name -> seconds; none is one of musdb's validation songs.
TRAIN_SONGS = {
    "Zoë & the Ünicorns - Don't Stop": 4.2,
    "O'Brien - Ça va": 3.1,
    "Sigur Rós - Hoppípolla": 5.0,
    "日本のバンド - 歌": 3.6,
    "Space  Band - Two  Spaces": 4.6,
    "Mr. Dot - v1.2 (Live)": 3.9,
}
TEST_SONGS = {"Test Ünïcode - Ünequal": 4.4, "Test's Apostrophe - Short": 3.3}

#: A profile with tiny sizes: every step of the study, in about a minute.
TINY_PROFILE = {
    "description": "tiny models on a user's MUSDB18-format folder (tests)",
    "data": {"seq_dur": 1.0, "samples_per_track": 2, "valid_seq_dur": 2.0},
    "stft": {"n_fft": 512, "n_hop": 256, "bandwidth": 16000},
    "model": {"hidden_size": 8, "nb_layers": 1, "n_mels": 8, "n_mfcc": 4},
    "train": {"models": ["openunmix", "melunmix"], "epochs": 2, "batch_size": 4, "seeds": [42],
              "lr_schedule": "exponential", "lr_decay_gamma": 1.0, "progress": False},
    "tune": {"sample_rate": 16000, "nb_trials": 1, "epochs": 1, "samples_per_track": 1,
             "space": {"lr": [0.0001, 0.01, "log"]}},
    "evaluate": {"jobs": 1, "bootstrap": 20, "oracles": ["MIX", "IRM2"]},
}


def song_stems(seconds: float, seed: int, rate: int = RATE) -> dict[str, np.ndarray]:
    """Stereo stems (nb_samples, 2) with a voice-like line, drums, bass and chords."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    notes = 196.0 * 2 ** (rng.integers(0, 12, size=int(seconds * 2) + 1) / 12)
    f0 = notes[(t * 2).astype(int)] * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (np.sin(2 * np.pi * 0.7 * t) > -0.3)
    hits = np.zeros(n)
    hits[:: rate // 4] = 1.0
    drums = np.convolve(hits, np.exp(-np.arange(2000) / 300.0))[:n] * rng.standard_normal(n)
    bass = np.sin(2 * np.pi * notes[(t * 2).astype(int)] / 4 * t)
    other = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    mono = {"vocals": 0.15 * voice, "drums": 0.2 * drums, "bass": 0.2 * bass, "other": 0.15 * other}
    pans = {"vocals": 0.5, "drums": 0.4, "bass": 0.5, "other": 0.7}
    return {name: np.stack([x * pans[name], x * (1 - pans[name])], axis=1).astype(np.float32)
            for name, x in mono.items()}


def write_stem_mp4(path: Path, stems: dict[str, np.ndarray], rate: int = RATE) -> None:
    """A MUSDB18 song: streams mixture, drums, bass, other, vocals, AAC, as stempeg writes them."""
    import stempeg

    mixture = sum(stems[s] for s in ("vocals", "drums", "bass", "other"))
    data = np.stack([mixture, stems["drums"], stems["bass"], stems["other"], stems["vocals"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    stempeg.write_stems(str(path), data, rate, writer=stempeg.StreamsWriter(codec="aac", bitrate=256000))


def write_wav_song(folder: Path, stems: dict[str, np.ndarray], rate: int = RATE, mixture=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio, rate, subtype="FLOAT")
    if mixture is None:
        mixture = sum(stems[s] for s in ("vocals", "drums", "bass", "other"))
    sf.write(folder / "mixture.wav", mixture, rate, subtype="FLOAT")


def write_profile(path: Path, **data) -> Path:
    profile = json.loads(json.dumps(TINY_PROFILE))
    profile["data"].update(data)
    path.write_text(yaml.safe_dump(profile, allow_unicode=True))
    return path
