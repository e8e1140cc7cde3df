"""MUSDB18 data: finding tracks, fast chunk reads, caches, training/validation datasets, statistics.

Modules, in the order data flows through them:

- :mod:`.roots`: which dataset root to use, the generated dataset on first use, fingerprints.
- :mod:`.layout`: which stems a song holds (MUSDB18's four, or mixture + vocals) and what
  training mixes.
- :mod:`.tracks`: :func:`find_tracks` lists and checks tracks with the ``musdb`` package.
- :mod:`.splits`: the validation split (the profile's, the setup file's, or derived).
- :mod:`.checks`: roots the study can use, one rate, mixtures that are the sum of their stems.
- :mod:`.cache`: ``.stem.mp4`` decoded once to WAV; tracks resampled once per rate; the
  derived accompaniment of songs of mixture + vocals.
- :mod:`.reading`: :func:`read_chunk`, a soundfile partial read (no ffmpeg).
- :mod:`.torch_datasets`: :class:`TrainDataset` (Open-Unmix augmentation) and :class:`ValidDataset`.
- :mod:`.scaler`: scaler statistics and their on-disk cache.

Example
-------
>>> from melunmix import datasets
>>> root = datasets.ensure_dataset()                       # doctest: +SKIP
>>> train = datasets.find_tracks(root, "train", split="train")  # doctest: +SKIP
>>> item_mix, item_vocals = datasets.TrainDataset(train)[0]     # doctest: +SKIP
"""

from .cache import decode_to_wav_cache, default_cache_dir, read_stem_mixture, resample_wav_cache
from .checks import (
    MIXTURE_SNR_THRESHOLD_DB,
    check_mixtures,
    check_root,
    check_sample_rate,
    mixture_snr_db,
    root_record,
)
from .prepare import prepare_tracks
from .reading import read_chunk
from .roots import (
    check_study_root,
    dataset_fingerprint,
    default_generated_root,
    generated_dataset_name,
    generated_root,
    ensure_dataset,
    generated_dataset_complete,
    is_generated_root,
    resolve_data_root,
)
from .scaler import compute_feature_stats, compute_scaler_stats, load_or_compute_stats
from .torch_datasets import TrainDataset, ValidDataset
from .splits import ValidationSplit, derive_validation_tracks, track_names, validation_split
from .tracks import TrackInfo, find_tracks
from .layout import FOUR_STEMS, LAYOUTS, MIXTURE_AND_VOCALS, StemLayout

__all__ = [
    "FOUR_STEMS",
    "LAYOUTS",
    "MIXTURE_AND_VOCALS",
    "StemLayout",
    "MIXTURE_SNR_THRESHOLD_DB",
    "ValidationSplit",
    "check_mixtures",
    "check_root",
    "check_sample_rate",
    "derive_validation_tracks",
    "mixture_snr_db",
    "root_record",
    "track_names",
    "validation_split",
    "check_study_root",
    "is_generated_root",
    "TrackInfo",
    "TrainDataset",
    "ValidDataset",
    "compute_feature_stats",
    "compute_scaler_stats",
    "dataset_fingerprint",
    "decode_to_wav_cache",
    "default_cache_dir",
    "default_generated_root",
    "generated_dataset_name",
    "generated_root",
    "ensure_dataset",
    "find_tracks",
    "generated_dataset_complete",
    "load_or_compute_stats",
    "prepare_tracks",
    "read_chunk",
    "read_stem_mixture",
    "resample_wav_cache",
    "resolve_data_root",
]
