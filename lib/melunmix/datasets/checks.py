"""Data that would give numbers nobody should trust: refused or flagged before any work.

- :func:`check_root`: a root the study can use: songs in ``test/``, at least 2 in
  ``train/`` when training is needed (the validation split, :mod:`.splits`), and every
  song at the profile's sample rate (:func:`check_sample_rate`).
- :func:`check_mixtures`: the mixture of every track against the sum of its stems, once
  per track (cached); a mixture that is not that sum gets one warning line per track.
- :func:`root_record`: what the run's manifest records about its data: the validation
  split, the rates of the songs, of training and of scoring, and the mixture check.

Why one rate, refused otherwise: BSS Eval v4 fits a 512-tap distortion filter per
source; on references resampled from another rate (an empty band above the old Nyquist
frequency after upsampling, the resampler's stop band after downsampling) that fit is
ill-conditioned and ISR, SIR and SAR lose their meaning (oracle ISR below -30 dB and SAR
0.00 dB, ``bench/rates.py``), while the same songs at their own rate score sanely. So
the study trains and scores at ``data.sample_rate`` and never resamples the songs it
scores: songs at another rate are refused with one line saying which key to set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..base.names import SOURCES, STEMS
from .cache import default_cache_dir, file_key
from .reading import read_frames
from .roots import dataset_fingerprint
from .splits import track_names, validation_split
from .tracks import TrackInfo, find_tracks, read_setup, setup_file_path

#: Mixtures further than this from the sum of their stems (SNR, dB) are flagged. Songs in
#: MUSDB18's ``.stem.mp4`` form (every stream AAC-coded on its own at 256 kb/s) measured
#: 28.5-31.9 dB (``bench/records/data_checks.txt``); far worse is wrong data.
MIXTURE_SNR_THRESHOLD_DB = 15.0
#: Stored SNRs are clipped to +-this (an exact sum has no finite SNR).
MAX_SNR_DB = 300.0
#: Frames read at once by the mixture check (bounded memory for long songs).
CHECK_BLOCK = 1 << 20
#: Folder of the per-track check results inside a cache folder.
CHECKS_DIR = "checks"

_warned: set[tuple[str, str, str]] = set()


# --------------------------------------------------------------------------- mixtures


def mixture_snr_db(track: TrackInfo) -> float:
    """SNR (dB) of a WAV-backed track's mixture against the sum of its four stems.

    ``10 log10(sum(mixture^2) / sum((mixture - (vocals + drums + bass + other))^2))`` over
    every sample and channel, clipped to +-:data:`MAX_SNR_DB`; a silent track (mixture
    and stems) counts as an exact sum.
    """

    signal = residual = 0.0
    for start in range(0, track.nb_samples, CHECK_BLOCK):
        nb = min(CHECK_BLOCK, track.nb_samples - start)
        mixture = read_frames(track.wav("mixture"), start, nb).astype(np.float64)
        total = np.zeros_like(mixture)
        for stem in SOURCES:
            total += read_frames(track.wav(stem), start, nb)
        signal += float(np.sum(np.square(mixture)))
        residual += float(np.sum(np.square(mixture - total)))
    if residual == 0.0:
        return MAX_SNR_DB
    if signal == 0.0:
        return -MAX_SNR_DB
    return float(np.clip(10.0 * np.log10(signal / residual), -MAX_SNR_DB, MAX_SNR_DB))


def check_mixtures(
    tracks: Sequence[TrackInfo],
    cache_dir: str | os.PathLike,
    threshold_db: float = MIXTURE_SNR_THRESHOLD_DB,
    warn: bool = True,
) -> list[dict[str, Any]]:
    """Check that every track's mixture is the sum of its stems; warn once per bad track.

    The result of a track is cached in ``<cache_dir>/checks/<subset>/<rate>/<name>.json``
    and reused while its stem files keep their size and modification time.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        WAV-backed tracks (``.stem.mp4`` decoded: :func:`melunmix.datasets.prepare_tracks`
        calls this after decoding).
    cache_dir : path
        The dataset's cache folder.
    threshold_db : float
        Mixtures with a lower SNR get a warning line on stderr naming the track and the SNR.
    warn : bool
        Print the warnings (once per track and process).

    Returns
    -------
    list of dict
        Per track of four stems: ``track``, ``subset``, ``rate`` (Hz), ``snr_db``, ``ok``
        (a song of mixture + vocals has no stems to sum, and no record).
    """

    records = []
    for track in tracks:
        if not track.layout.four_sources:  # mixture + vocals: no stems to sum
            # a record left from when the song had four stems no longer describes it
            _record_path(cache_dir, track.subset, int(track.rate), track.name).unlink(missing_ok=True)
            continue
        files = {stem: track.wav(stem) for stem in STEMS}
        key = file_key(files)
        path = _record_path(cache_dir, track.subset, int(track.rate), track.name)
        record = _read_record(path, key)
        if record is None:
            record = {"track": track.name, "subset": track.subset, "rate": int(track.rate),
                      "snr_db": round(mixture_snr_db(track), 2)}
            _write_record(path, key, record)
        record = {**record, "ok": bool(record["snr_db"] >= threshold_db)}
        if warn and not record["ok"]:
            _warn_once(track.name, str(track.path), record["snr_db"], threshold_db)
        records.append(record)
    return records


def _record_path(cache_dir, subset: str, rate: int, name: str) -> Path:
    return Path(cache_dir) / CHECKS_DIR / subset / str(rate) / f"{name}.json"


def _read_record(path: Path, key: dict) -> dict | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != json.loads(json.dumps(key)):
        return None
    return stored.get("record")


def _write_record(path: Path, key: dict, record: dict) -> None:
    from melunmix.base.files import write_json

    try:
        write_json(path, {"key": key, "record": record})
    except OSError:
        pass  # a read-only cache only costs the check again next time


def _warn_once(name: str, where: str, snr_db: float, threshold_db: float) -> None:
    token = (where, name, f"{snr_db:.2f}")
    if token in _warned:
        return
    _warned.add(token)
    print(
        f"warning: track '{name}' ({where}): the mixture is not the sum of its stems "
        f"(SNR {snr_db:.1f} dB, below {threshold_db:g} dB; AAC-coded .stem.mp4 songs measure about 30 dB): "
        "scores on this track are not trustworthy; fix its mixture or stems",
        file=sys.stderr, flush=True,
    )


def mixture_check_record(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                         threshold_db: float = MIXTURE_SNR_THRESHOLD_DB) -> dict[str, Any]:
    """Summary of the cached mixture checks of the songs now in ``root`` (for the manifest).

    Returns
    -------
    dict
        ``threshold_db``, ``checked`` (tracks with a stored result), ``min_snr_db`` and
        ``below_threshold`` (``[{"track", "subset", "snr_db"}]``).
    """

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(root)
    found = []
    for subset in ("train", "test"):
        rate_dirs = sorted(p for p in (folder / CHECKS_DIR / subset).glob("*") if p.is_dir())
        for name in track_names(root, subset):
            # A song checked at several rates (resampled copies) counts with its lowest SNR.
            records = []
            for rate_dir in rate_dirs:
                try:
                    records.append(json.loads((rate_dir / f"{name}.json").read_text())["record"])
                except (OSError, ValueError, KeyError, TypeError):
                    continue
            if records:
                found.append(min(records, key=lambda r: r["snr_db"]))
    below = [{"track": r["track"], "subset": r["subset"], "snr_db": r["snr_db"]}
             for r in found if r["snr_db"] < threshold_db]
    return {"threshold_db": threshold_db, "checked": len(found),
            "min_snr_db": min((r["snr_db"] for r in found), default=None), "below_threshold": below}


# --------------------------------------------------------------------------- rates


def check_sample_rate(tracks: Sequence[TrackInfo], sample_rate: float, profile: str | None = None) -> None:
    """Refuse tracks whose rate is not ``sample_rate`` (one line naming a track and the fix).

    See the module docstring for why songs are not resampled for scoring.
    """
    other = {track.name: int(track.rate) for track in tracks if float(track.rate) != float(sample_rate)}
    if other:
        raise _rate_error(tracks[0].root, tracks[0].subset, other, sample_rate, profile)


def _rate_error(root, subset: str, other: dict[str, int], sample_rate: float, profile: str | None) -> ValueError:
    name, rate = next(iter(other.items()))
    where = f"profile {profile!r}" if profile else "the profile"
    wanted = float(sample_rate)
    return ValueError(
        f"{root}: {len(other)} {subset} song(s) at {', '.join(map(str, sorted(set(other.values()))))} Hz "
        f"(e.g. '{name}') but {where} trains and scores at {wanted:g} Hz; BSS Eval scores of resampled songs "
        f"are not trustworthy, so songs are never resampled for scoring: set data.sample_rate: {rate} in a "
        f"copy of the profile, or convert the songs to {wanted:g} Hz"
    )


def song_rates(root: str | os.PathLike, is_wav: bool | None = None) -> dict[str, dict[str, int]]:
    """Sample rate of every song of ``root`` (``{"train": {name: Hz}, "test": {...}}``).

    Read from the files' headers (ffprobe for ``.stem.mp4``) and cached per dataset
    fingerprint, so asking again costs a directory listing.
    """
    from melunmix.base.files import write_json


    root = Path(root).expanduser().absolute()
    path = default_cache_dir(root) / CHECKS_DIR / "rates.json"
    fingerprint = dataset_fingerprint(root)
    try:
        stored = json.loads(path.read_text())
        if stored.get("fingerprint") == fingerprint and stored.get("is_wav") == is_wav:
            return stored["rates"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    rates = {}
    for subset in ("train", "test"):
        if (root / subset).is_dir() and any(not p.name.startswith(".") for p in (root / subset).iterdir()):
            rates[subset] = {t.name: int(t.rate) for t in find_tracks(root, subset, is_wav=is_wav)}
    try:
        write_json(path, {"fingerprint": fingerprint, "is_wav": is_wav, "rates": rates})
    except OSError:
        pass
    return rates


# --------------------------------------------------------------------------- roots


def check_root(
    root: str | os.PathLike,
    sample_rate: float | None = None,
    needs_train: bool = True,
    valid_tracks: Sequence[str] | None = None,
    is_wav: bool | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Check that the study can run on ``root``; one error line naming the root and the fix.

    Parameters
    ----------
    root : path
        Dataset root.
    sample_rate : float, optional
        The profile's ``data.sample_rate``: every song must have it.
    needs_train : bool
        Training will run: ``train/`` must hold 2 songs or more and a valid split.
        Scoring saved models needs ``test/`` only.
    valid_tracks : sequence of str, optional
        The profile's ``data.valid_tracks``.
    is_wav : bool, optional
        The profile's ``data.is_wav``.
    profile : str, optional
        Profile name, for the messages.

    Returns
    -------
    dict
        ``validation_split`` (:meth:`ValidationSplit.to_dict`, or None without
        ``train/``) and ``song_rates`` (sorted distinct rates in Hz).

    Raises
    ------
    FileNotFoundError, ValueError
        No root, no or an empty ``test/``, too few train songs, a bad ``valid_tracks``
        name, songs at another rate than ``sample_rate``.
    """

    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        find_tracks(root, "test")  # raises the one-line message about a missing root
    test = root / "test"
    if not test.is_dir():
        raise FileNotFoundError(
            f"{test} does not exist; the study scores the songs of test/: put them there in the MUSDB18 layout "
            "(<song>/mixture.wav + stems, or <song>.stem.mp4)"
        )
    split = None
    has_train = (root / "train").is_dir()
    if needs_train and not has_train:
        raise FileNotFoundError(
            f"{root / 'train'} does not exist; training needs at least 2 songs there, or, to score saved "
            "models only, run notebooks 05-06 (`melunmix reproduce --only 05 06`) or `melunmix score`"
        )
    if has_train:
        setup_path = setup_file_path(root, None)
        split = validation_split(root, read_setup(setup_path)["validation_tracks"], valid_tracks, is_wav,
                                 setup_path, strict=needs_train)
    rates = song_rates(root, is_wav)
    if not rates.get("test"):
        find_tracks(root, "test", is_wav=is_wav)  # raises: test/ is empty or holds no songs
    if sample_rate is not None:
        for subset, by_name in rates.items():
            other = {name: rate for name, rate in by_name.items() if float(rate) != float(sample_rate)}
            if other:
                raise _rate_error(root, subset, other, sample_rate, profile)
    all_rates = sorted({rate for by_name in rates.values() for rate in by_name.values()})
    return {"validation_split": None if split is None else split.to_dict(), "song_rates": all_rates}


def root_record(root: str | os.PathLike, settings, needs_train: bool = True, warn: bool = True) -> dict[str, Any]:
    """What a run's manifest records about its data (fields ``validation_split``,
    ``sample_rates`` and ``mixture_check``).

    Parameters
    ----------
    root : path
        The run's dataset root (existing).
    settings : melunmix.base.config.Settings
        The profile.
    needs_train : bool
        As in :func:`check_root`.
    warn : bool
        Print a warning line (once per process) for every track whose mixture check failed.

    Returns
    -------
    dict
        ``validation_split``: ``{"source": "profile" | "musdb setup" | "derived", "tracks":
        [...], ...}``; ``sample_rates``: ``{"songs": [Hz], "training": Hz, "scoring": Hz}``;
        ``mixture_check``: :func:`mixture_check_record`.
    """
    data = settings.data
    checked = check_root(root, data.sample_rate, needs_train, data.valid_tracks, data.is_wav, settings.name)
    rate = float(data.sample_rate)
    mixtures = mixture_check_record(root)
    if warn:
        for item in mixtures["below_threshold"]:
            _warn_once(item["track"], str(Path(root) / item["subset"]), item["snr_db"], mixtures["threshold_db"])
    return {
        "validation_split": checked["validation_split"],
        "sample_rates": {"songs": checked["song_rates"], "training": rate, "scoring": rate},
        "mixture_check": mixtures,
    }
