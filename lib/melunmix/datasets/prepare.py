"""Tracks made ready for reading: decoded, checked, resampled and completed (a derived accompaniment) in the cache.

The one step that joins :mod:`.cache` (decoding, resampling) and :mod:`.checks` (the
mixture = sum of stems check), so that neither imports the other's caller.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .cache import decode_to_wav_cache, default_cache_dir, derive_sources, resample_wav_cache
from .checks import check_mixtures
from .tracks import TrackInfo


def prepare_tracks(
    tracks: Sequence[TrackInfo],
    sample_rate: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[TrackInfo]:
    """Make tracks readable with :func:`read_chunk`: decode stems, check, resample if asked.

    Every track's mixture is checked against the sum of its stems at its own rate, once
    (:func:`melunmix.datasets.check_mixtures`, cached): a mixture that is not that sum
    gets one warning line naming the track and the SNR. A song of mixture + vocals gets
    its accompaniment derived (``mixture - vocals``, :func:`.cache.derive_sources`) at the
    rate it is read at; its mixture check is skipped (there are no stems to sum).

    Parameters
    ----------
    tracks : sequence of TrackInfo
        From :func:`find_tracks`.
    sample_rate : float, optional
        Resample every track to this rate (Hz); ``None`` keeps each track's rate.
    cache_dir : path, optional
        Cache folder; ``None`` uses :func:`default_cache_dir` of each track's root.
    progress : bool
        Show progress bars while caches are built.

    Returns
    -------
    list of TrackInfo
        Same order, every one backed by WAV files.
    """
    tracks = list(tracks)
    if not tracks:
        raise ValueError("no tracks given; find_tracks() returned an empty list or the wrong split was passed")
    by_cache: dict[Path, list[int]] = {}
    for index, track in enumerate(tracks):
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(track.root)
        by_cache.setdefault(folder, []).append(index)
    out: list[TrackInfo] = list(tracks)
    for folder, indices in by_cache.items():
        group = decode_to_wav_cache([tracks[i] for i in indices], folder, progress=progress)
        check_mixtures(group, folder)
        if sample_rate is not None:
            group = resample_wav_cache(group, sample_rate, folder, progress=progress)
        group = derive_sources(group, folder)
        for i, track in zip(indices, group):
            out[i] = track
    return out
