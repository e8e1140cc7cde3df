"""Dataset statistics for the models' input scalers, and their on-disk cache.

Open-Unmix initialises its input normalisation from the mean and standard deviation, per
frequency bin, of the mono (channel-averaged) magnitude spectrogram of every full
training mixture, every frame counted once; the standard deviation is floored at
``1e-4 * max(std)`` so that silent bins do not blow up the scale. The same is done here
for any feature transform (the proposed model's mel or MFCC branch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .prepare import prepare_tracks
from .reading import read_frames
from .tracks import TrackInfo

#: Floor of the standard deviation relative to its maximum (Open-Unmix).
STD_FLOOR = 1e-4
#: Cache keys that are safe file names are used as such (readable); others are hashed.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._=-]{1,150}$")


def compute_scaler_stats(
    tracks: Sequence[TrackInfo],
    n_fft: int,
    n_hop: int,
    sample_rate: float | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    center: bool = False,
) -> dict[str, np.ndarray]:
    """Mean and std per STFT bin of the mono magnitude of the full training mixtures.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        Training tracks; their ``mixture`` stem is read whole.
    n_fft, n_hop : int
        STFT frame length and hop in samples (:class:`melunmix.dsp.features.STFT`, centred,
        periodic Hann window, reflect padding).
    sample_rate : float, optional
        Resample the tracks (cached) to this rate in Hz first.
    progress : bool
        Progress bar over tracks.
    cache_dir : path, optional
        Decode/resample cache; None: the default of the tracks' root.

    Returns
    -------
    dict
        ``mean`` and ``std``: float64 arrays of shape ``(n_fft // 2 + 1,)``. The
        magnitude is averaged over channels, then every frame of every track is one
        observation; ``std`` is the population standard deviation floored at
        ``1e-4 * max(std)``.
    """
    return compute_feature_stats(
        tracks, None, n_fft=n_fft, n_hop=n_hop, sample_rate=sample_rate, progress=progress, cache_dir=cache_dir,
        center=center,
    )


def compute_feature_stats(
    tracks: Sequence[TrackInfo],
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    n_fft: int,
    n_hop: int,
    sample_rate: float | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    center: bool = False,
) -> dict[str, np.ndarray]:
    """Mean and std per feature of ``transform`` applied to the mono mixture magnitudes.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        Training tracks; their ``mixture`` stem is read whole.
    transform : callable or None
        Maps a magnitude ``(1, 1, nb_bins, nb_frames)`` tensor (float32) to features
        ``(1, 1, nb_features, nb_frames)``, e.g. the proposed model's mel or MFCC
        transform; None: the magnitude itself (:func:`compute_scaler_stats`).
    n_fft, n_hop : int
        STFT frame length and hop in samples.
    sample_rate : float, optional
        Resample the tracks (cached) to this rate in Hz first.
    progress : bool
        Progress bar over tracks.
    cache_dir : path, optional
        Decode/resample cache.
    center : bool
        STFT framing; False (default) as Open-Unmix, whose statistics use its training
        encoder (uncentred frames).

    Returns
    -------
    dict
        ``mean`` and ``std``: float64 arrays of shape ``(nb_features,)``; std floored at
        ``1e-4 * max(std)``.
    """
    from melunmix.dsp.features import STFT

    tracks = prepare_tracks(tracks, sample_rate=sample_rate, cache_dir=cache_dir, progress=progress)
    stft = STFT(n_fft, n_hop, center=center)
    count, mean, m2 = 0, None, None
    what = "Scaler statistics" if transform is None else "Feature statistics"
    with torch.no_grad():
        for track in tqdm(tracks, desc=what, disable=not progress):
            audio = read_frames(track.wav("mixture"), 0, None)
            if not np.isfinite(audio).all():
                raise ValueError(
                    f"track '{track.name}': {track.wav('mixture')} has NaN or infinite samples; replace the file "
                    "(re-convert it, or delete and regenerate a generated dataset)"
                )
            waveform = torch.from_numpy(np.ascontiguousarray(audio.T))[None]  # (1, nb_channels, nb_samples)
            features = stft(waveform).abs().mean(dim=1, keepdim=True)  # (1, 1, nb_bins, nb_frames)
            if transform is not None:
                features = transform(features)
                if features.ndim != 4 or features.shape[:2] != (1, 1):
                    raise ValueError(
                        f"transform must map (1, 1, nb_bins, nb_frames) to (1, 1, nb_features, nb_frames), "
                        f"got {tuple(features.shape)}"
                    )
            values = features[0, 0].double().numpy().T  # (nb_frames, nb_features)
            count, mean, m2 = _merge_moments(count, mean, m2, values)
    std = np.sqrt(m2 / count)
    return {"mean": mean, "std": np.maximum(std, STD_FLOOR * std.max())}


def _merge_moments(count, mean, m2, values: np.ndarray):
    """Add observations (rows of ``values``) to running count, mean and sum of squared deviations.

    Chan et al.'s pairwise update: exact, and numerically safe across many long tracks,
    unlike accumulating sums of squares.
    """
    n = values.shape[0]
    batch_mean = values.mean(axis=0)
    batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
    if count == 0:
        return n, batch_mean, batch_m2
    total = count + n
    delta = batch_mean - mean
    return total, mean + delta * (n / total), m2 + batch_m2 + delta**2 * (count * n / total)


def load_or_compute_stats(
    path_dir: str | os.PathLike,
    key: str | Mapping,
    fn: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Load statistics saved under ``key``, or compute them with ``fn`` and save them.

    Parameters
    ----------
    path_dir : path
        Folder of the statistics files (e.g. ``results/<profile>/features``).
    key : str or mapping
        What the statistics depend on (dataset fingerprint, STFT settings, rate, ...). A
        string of file-name characters names the files; a mapping (JSON-serialisable) or
        any other string is hashed into the name. The key is stored in the sidecar and
        compared on load.
    fn : callable
        Returns a mapping of names to arrays (e.g. ``compute_scaler_stats``'s result).

    Returns
    -------
    dict of str to np.ndarray

    Notes
    -----
    Files: ``<name>.npz`` (the arrays) and ``<name>.json`` (the key, shapes). Both are
    written to temporary names and renamed, the sidecar last, so a file set that exists
    and whose key matches is complete.
    """
    path_dir = Path(path_dir)
    canonical = _canonical_key(key)
    if isinstance(key, str) and _SAFE_KEY.match(key):
        name = key
    else:
        name = "stats-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    npz_path, meta_path = path_dir / f"{name}.npz", path_dir / f"{name}.json"
    if npz_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("key") == json.loads(canonical):
            with np.load(npz_path, allow_pickle=False) as data:
                return {array: data[array] for array in data.files}
    arrays = fn()
    if not isinstance(arrays, Mapping) or not arrays:
        raise TypeError(
            f"the statistics function must return a non-empty mapping of arrays, got {type(arrays).__name__}"
        )
    arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
    from melunmix.base.files import atomic_path, write_json

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_path(npz_path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    write_json(
        meta_path,
        {
            "key": json.loads(canonical),
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        },
    )
    return arrays


def _canonical_key(key: str | Mapping) -> str:
    if not isinstance(key, (str, Mapping)):
        raise TypeError(f"key must be a string or a mapping, got {type(key).__name__}")
    try:
        return json.dumps(key, sort_keys=True, default=_jsonable)
    except TypeError as err:
        raise TypeError(f"key must be JSON-serialisable (numbers, strings, paths, lists): {err}") from err


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot put {type(value).__name__} in a statistics key")
