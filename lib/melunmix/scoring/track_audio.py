"""A test track's audio in memory, as scoring reads it: the mixture, the true sources, the stems.

Finding and checking tracks is :mod:`melunmix.datasets.tracks` (:class:`TrackInfo`, where a
track's files are); this module reads one whole track into a :class:`TrackAudio`, from a
``TrackInfo`` (WAV stems, through :mod:`melunmix.datasets.reading`) or from a track of
``musdb.DB`` (read by musdb). The true ``accompaniment`` is the sum of drums, bass and
other, as musdb defines it. Scoring (:mod:`melunmix.scoring.museval_scores`), the evaluation
(:mod:`melunmix.scoring.evaluate`) and the validation SDR of training read tracks through
:func:`load_track`.

Example
-------
>>> from melunmix.datasets import find_tracks
>>> audio = load_track(find_tracks(root, "test")[0])  # doctest: +SKIP
>>> audio.references["vocals"].shape == audio.mixture.shape  # (nb_samples, nb_channels)  # doctest: +SKIP
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..base.names import ACCOMPANIMENT, SCORED_TARGETS, SOURCES


@dataclass
class TrackAudio:
    """One test track in memory: the mixture, the true sources to score against, the stems.

    Attributes
    ----------
    name : str
        Track name (the JSON file's stem).
    rate : float
        Sample rate in Hz.
    mixture : np.ndarray, shape (nb_samples, nb_channels)
        The mixture (museval's layout, time first).
    references : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        True ``"vocals"`` and ``"accompaniment"`` (drums + bass + other, as musdb defines it).
    stems : dict of str to np.ndarray, shape (nb_samples, nb_channels), float64
        The MUSDB18 stems as read (:data:`melunmix.base.names.SOURCES` that the track has;
        the oracles need all four). ``stems["vocals"]`` is ``references["vocals"]``.
    location : str
        Where the track was read from (folder or file), for messages.
    """

    name: str
    rate: float
    mixture: np.ndarray
    references: dict[str, np.ndarray] = field(default_factory=dict)
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    location: str = ""


def load_track(track: Any) -> TrackAudio:
    """Read a test track's mixture, its vocals / accompaniment references and its stems.

    Parameters
    ----------
    track : melunmix.datasets.TrackInfo or musdb.MultiTrack
        A track from :func:`melunmix.datasets.find_tracks` (WAV stems read with soundfile)
        or from ``musdb.DB`` (read by musdb, e.g. ``.stem.mp4`` through ffmpeg).

    Returns
    -------
    TrackAudio

    Raises
    ------
    ValueError
        When the track has no vocals or no accompaniment stems, or stems of another
        length than the mixture. A song of mixture + vocals has its accompaniment as
        ``mixture - vocals`` (:mod:`melunmix.datasets.layout`).
    """
    from ..datasets.tracks import TrackInfo  # the data layer's package (torch) only for melunmix tracks

    if isinstance(track, TrackInfo):
        return _load_trackinfo(track)
    if hasattr(track, "targets") and hasattr(track, "audio"):  # musdb.MultiTrack
        return _load_musdb_track(track)
    raise TypeError(
        f"cannot read a test track from {type(track).__name__}; pass TrackInfo objects from "
        "melunmix.datasets.find_tracks(root, subset='test') or tracks of musdb.DB"
    )


def track_name(track: Any) -> str:
    """The name of a ``TrackInfo`` or musdb track; a TypeError for anything without one."""
    name = getattr(track, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{track!r} is not a track (it has no name)")
    return name


def _no_stem(name: str, where: Any, stem: str) -> ValueError:
    return ValueError(
        f"test track '{name}' ({where}) has no {stem} stem; scoring needs the true vocals and "
        "accompaniment (drums, bass, other) of every test track: use a MUSDB18-format test set "
        "with vocals.wav, drums.wav, bass.wav and other.wav per track, or songs of mixture.wav and vocals.wav only"
    )


def _load_trackinfo(track) -> TrackAudio:
    from ..datasets.reading import read_frames  # the data layer's package (torch) only for melunmix tracks

    # TrackInfo.wav explains how to decode a .stem.mp4 track that has no WAV stems yet.
    mixture = read_frames(track.wav("mixture"), 0, None).astype(np.float64)
    if "vocals" not in track.stems:
        raise _no_stem(track.name, track.path, "vocals")
    if ACCOMPANIMENT in track.layout.derived:  # a song of mixture + vocals: accompaniment = mixture - vocals
        vocals = read_frames(track.wav("vocals"), 0, None).astype(np.float64)
        if vocals.shape != mixture.shape:
            raise ValueError(f"test track '{track.name}': {track.wav('vocals')} has shape {vocals.shape} but the "
                             f"mixture {mixture.shape}; the vocals must have the mixture's length and channels")
        return TrackAudio(track.name, float(track.rate), mixture, {"vocals": vocals, ACCOMPANIMENT: mixture - vocals},
                          {"vocals": vocals}, str(track.path))
    others = [stem for stem in track.stems if stem not in ("mixture", "vocals")]
    if not others:
        raise _no_stem(track.name, track.path, "accompaniment")
    stems = {stem: read_frames(track.wav(stem), 0, None).astype(np.float64) for stem in ["vocals", *others]}
    for stem, audio in stems.items():
        if audio.shape != mixture.shape:
            raise ValueError(
                f"test track '{track.name}': {track.wav(stem)} has shape {audio.shape} but the mixture "
                f"{mixture.shape}; every stem must have the mixture's length and channels"
            )
    accompaniment = np.sum([stems[stem] for stem in others], axis=0)
    # A TrackInfo made by hand without some of drums / bass / other (find_tracks refuses
    # such songs) is still scored for models; the oracles, defined on the four stems,
    # refuse it (OracleSeparation).
    return TrackAudio(track.name, float(track.rate), mixture,
                      {"vocals": stems["vocals"], "accompaniment": accompaniment},
                      {stem: stems[stem] for stem in SOURCES if stem in stems}, str(track.path))


def _load_musdb_track(track) -> TrackAudio:
    for target in SCORED_TARGETS:
        if target not in track.targets:
            raise _no_stem(track.name, getattr(track, "path", ""), target)
    mixture = np.asarray(track.audio, dtype=np.float64)
    stems = {stem: np.asarray(track.sources[stem].audio, dtype=np.float64) for stem in SOURCES if stem in track.sources}
    references = {target: _musdb_target(track.targets[target], stems) for target in SCORED_TARGETS}
    for name, audio in [*references.items(), *stems.items()]:
        if audio.shape != mixture.shape:
            raise ValueError(
                f"test track '{track.name}': true {name} has shape {audio.shape} but the mixture "
                f"{mixture.shape}"
            )
    return TrackAudio(track.name, float(track.rate), mixture, references, stems, str(getattr(track, "path", "")))


def _musdb_target(target, stems: Mapping[str, np.ndarray]) -> np.ndarray:
    """``target.audio`` (musdb: the gain-weighted sum of its sources), from the stems already read."""
    if not all(source.name in stems for source in target.sources):
        return np.asarray(target.audio, dtype=np.float64)
    if len(target.sources) == 1 and target.sources[0].gain == 1.0:
        return stems[target.sources[0].name]
    return np.sum([source.gain * stems[source.name] for source in target.sources], axis=0)


__all__ = ["TrackAudio", "load_track", "track_name"]
