"""On-disk WAV caches: ``.stem.mp4`` decoded once, and tracks resampled once per rate.

Training then reads WAV only (see :mod:`.reading`). A cached track is a folder with one
WAV per stem and a ``cache.json`` holding the key it was made from (size and
modification time of every source file, rates). A track whose key no longer matches is
rebuilt. Each track folder is written under a temporary name and renamed into place, so
a killed run never leaves a half-written track that looks complete.

Decoded ``.stem.mp4`` stems are 16-bit PCM, exactly what musdb reads (it asks ffmpeg for
``s16le``): the study's references are then the ones SiSEC 2018's and Open-Unmix's
published scores were made with, and the cache takes half a float32 cache's space: 0.88 MB
per second of song (five stereo stems at 44.1 kHz), about 32 GB for MUSDB18's 10 hours
instead of 64 GB. Resampled copies are float WAV (a resampled signal has no 16-bit grid to
keep).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..base.config import cache_root
from ..base.names import ACCOMPANIMENT, MIXTURE, STEMS, VOCALS
from .reading import read_frames
from .tracks import TrackInfo

#: Name of the key file inside a cached track folder; written last, so it marks completion.
KEY_FILE = "cache.json"
#: How decoded stems are stored (part of the key: a cache of another format is rebuilt):
#: 16-bit, at the whole decoded length (the AAC encoder's last-frame padding included),
#: the samples and length musdb reads.
DECODED_FORMAT = "pcm_s16le-decoded-length"
#: How derived sources are computed (``accompaniment = mixture - vocals``, float32); part of their key.
DERIVED_FORMAT = "mixture-minus-vocals-float32"


def default_cache_dir(root: str | os.PathLike) -> Path:
    """Cache folder for a dataset root, under :func:`melunmix.base.config.cache_root`, per root.

    ``$MELUNMIX_CACHE_DIR``, else ``data/cache`` of the source checkout holding the working
    directory, else of the working directory.

    The cache never goes inside the dataset root, which may be read-only (a shared
    MUSDB18 copy). The sub-folder name holds the root's name and a hash of its absolute
    path, so two roots never share a cache.
    """
    root = Path(root).expanduser().resolve()

    base = cache_root()
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return base / f"{root.name}-{tag}"


def decode_to_wav_cache(
    tracks: Sequence[TrackInfo], cache_dir: str | os.PathLike, progress: bool = True
) -> list[TrackInfo]:
    """Decode ``.stem.mp4`` tracks once into 16-bit WAV files, as musdb decodes them; WAV
    tracks pass through.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        From :func:`find_tracks`.
    cache_dir : path
        Cache folder; decoded tracks go to ``cache_dir/decoded/<subset>/<name>/``.
    progress : bool
        Show a progress bar over the tracks that need decoding.

    Returns
    -------
    list of TrackInfo
        Same order; ``stems`` point at WAV files and ``nb_samples`` is the decoded
        length: what musdb reads, the AAC encoder's last-frame padding included (up to
        a codec frame, 1024 samples, beyond the length the container declares), so that
        scores are museval's on musdb's tracks.
    """
    base = Path(cache_dir) / "decoded"
    out: list[TrackInfo | None] = []
    todo = []
    for index, track in enumerate(tracks):
        if track.is_wav or track.stems:
            out.append(track)
            continue
        dest = base / track.subset / track.name
        key = file_key({"stem.mp4": Path(track.path)}) | {"rate": track.rate, "stem_ids": track.stem_ids,
                                                            "format": DECODED_FORMAT}
        cached = _cached(dest, key, STEMS)
        out.append(_from_cache(track, dest, track.rate, STEMS) if cached else None)
        if not cached:
            todo.append((index, track, dest, key))
    for index, track, dest, key in tqdm(todo, desc="Decoding .stem.mp4 to WAV", disable=not (progress and todo)):
        _write_track(dest, key, _decode_stems(track), track.rate)
        out[index] = _from_cache(track, dest, track.rate, STEMS)
    return out


def resample_wav_cache(
    tracks: Sequence[TrackInfo], sample_rate: float, cache_dir: str | os.PathLike, progress: bool = True
) -> list[TrackInfo]:
    """Resample WAV tracks once to ``sample_rate`` (soxr, high quality) into a cache.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        WAV tracks (decode ``.stem.mp4`` first); tracks already at ``sample_rate`` pass through.
    sample_rate : float
        Target rate in Hz; must be a whole number.
    cache_dir : path
        Cache folder; resampled tracks go to ``cache_dir/wav-<rate>Hz/<subset>/<name>/``.
    progress : bool
        Show a progress bar over the tracks that need resampling.

    Returns
    -------
    list of TrackInfo
        Same order, at ``sample_rate``, backed by the files of their layout only: a derived
        accompaniment is made at the new rate afterwards (:func:`derive_sources`, which
        :func:`melunmix.datasets.prepare_tracks` calls).
    """
    rate = _check_rate(sample_rate)
    base = Path(cache_dir) / f"wav-{rate}Hz"
    out: list[TrackInfo | None] = []
    todo = []
    for index, track in enumerate(tracks):
        if track.rate == rate:
            out.append(track)
            continue
        sources = {stem: track.wav(stem) for stem in track.layout.files}
        dest = base / track.subset / track.name
        key = file_key(sources) | {"source_rate": track.rate, "rate": rate}
        cached = _cached(dest, key, track.layout.files)
        out.append(_from_cache(track, dest, rate, track.layout.files) if cached else None)
        if not cached:
            todo.append((index, track, dest, key))
    for index, track, dest, key in tqdm(todo, desc=f"Resampling to {rate} Hz", disable=not (progress and todo)):
        _write_track(dest, key, _resample_stems(track, rate), rate)
        out[index] = _from_cache(track, dest, rate, track.layout.files)
    return out


def derive_sources(tracks: Sequence[TrackInfo], cache_dir: str | os.PathLike) -> list[TrackInfo]:
    """Write the derived sources of songs of mixture + vocals: ``accompaniment = mixture - vocals``.

    Songs that hold every source of their layout pass through. The derived file goes to
    ``cache_dir/derived/<rate>Hz/<subset>/<name>/accompaniment.wav`` (32-bit float: the
    difference of two 16-bit files can exceed their range), once per version of the
    mixture and vocals files.

    Returns
    -------
    list of TrackInfo
        Same order; ``stems`` also name the derived files.
    """
    out = []
    for track in tracks:
        derived = [source for source in track.layout.derived if source not in track.stems]
        if not derived:
            out.append(track)
            continue
        files = {stem: track.wav(stem) for stem in track.layout.files}
        dest = Path(cache_dir) / "derived" / f"{int(track.rate)}Hz" / track.subset / track.name
        key = file_key(files) | {"derived": derived, "format": DERIVED_FORMAT}
        if not _cached(dest, key, derived):
            mixture = _check_finite(track, MIXTURE, read_frames(track.wav(MIXTURE), 0, None))
            vocals = _check_finite(track, VOCALS, read_frames(track.wav(VOCALS), 0, None))
            _write_track(dest, key, {ACCOMPANIMENT: (mixture.astype(np.float64) - vocals).astype(np.float32)},
                         int(track.rate))
        out.append(dataclasses.replace(track, stems={**track.stems, **{s: dest / f"{s}.wav" for s in derived}}))
    return out


def _check_rate(sample_rate: float) -> int:
    rate = int(round(float(sample_rate)))
    if rate <= 0 or abs(rate - float(sample_rate)) > 1e-6:
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return rate


def file_key(files: dict[str, Path]) -> dict:
    """Size and modification time of each file: the cheap identity of a source."""
    key = {}
    for name, path in files.items():
        stat = Path(path).stat()
        key[name] = {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"sources": key}


def _cached(dest: Path, key: dict, stems: Sequence[str]) -> bool:
    key_path = dest / KEY_FILE
    if not key_path.is_file():
        return False
    try:
        stored = json.loads(key_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return stored.get("key") == json.loads(json.dumps(key)) and all(
        (dest / f"{stem}.wav").is_file() for stem in stems
    )


def _from_cache(track: TrackInfo, dest: Path, rate: int, stems: Sequence[str]) -> TrackInfo:
    stems = {stem: dest / f"{stem}.wav" for stem in stems}
    nb_samples = sf.info(str(stems["mixture"])).frames
    return dataclasses.replace(track, stems=stems, rate=rate, nb_samples=int(nb_samples))


def _write_track(dest: Path, key: dict, stems: dict[str, np.ndarray], rate: int) -> None:
    """Write a cached track folder atomically: temporary folder, then rename.

    Several processes may fill the same entry at once (tuning workers, training ranks, a
    notebook beside ``melunmix score``): a valid copy that another process has just put in
    place is kept, never moved aside under its readers; only a stale copy is replaced.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for stem, audio in stems.items():
            # int16 (decoded, musdb's samples) stays 16-bit; float (resampled) stays float
            sf.write(str(tmp / f"{stem}.wav"), audio, rate, subtype="PCM_16" if audio.dtype == np.int16 else "FLOAT")
        (tmp / KEY_FILE).write_text(json.dumps({"key": key, "rate": rate}, indent=2) + "\n")
        if _cached(dest, key, list(stems)):
            return  # another process wrote the same entry meanwhile
        if dest.exists():
            # Move the stale copy aside first: rename cannot replace a non-empty folder.
            stale = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            try:
                try:
                    os.rename(dest, stale / "track")
                except FileNotFoundError:
                    pass  # another process moved it aside first
                _rename_into_place(tmp, dest, key, list(stems))
            finally:
                shutil.rmtree(stale, ignore_errors=True)
        else:
            _rename_into_place(tmp, dest, key, list(stems))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _rename_into_place(tmp: Path, dest: Path, key: dict, stems: Sequence[str]) -> None:
    """``tmp`` -> ``dest``; when another process got there first with a valid copy, keep theirs."""
    try:
        os.rename(tmp, dest)
    except OSError:
        if not _cached(dest, key, stems):
            raise


def _decode_stems(track: TrackInfo) -> dict[str, np.ndarray]:
    """Decode every stem of a ``.stem.mp4`` with one ffmpeg process into 16-bit samples.

    stempeg (what musdb uses) starts one ffprobe and one ffmpeg per stem, each asked for
    ``s16le``; one process writing five 16-bit outputs decodes the same streams with the
    same decoder to the same samples in a fraction of the time. Stream indices are musdb's
    ``stem_ids`` (``-map 0:<id>``, as stempeg maps). Returns int16 arrays.
    """
    with tempfile.TemporaryDirectory(prefix="melunmix-decode-") as tmp:
        command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(track.path)]
        for stem in STEMS:
            # musdb asks stempeg for s16le: the same 16-bit samples (ffmpeg's conversion from the decoder)
            command += ["-map", f"0:{track.stem_ids[stem]}", "-c:a", "pcm_s16le", "-f", "wav", f"{tmp}/{stem}.wav"]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError as err:
            raise RuntimeError("decoding .stem.mp4 needs the `ffmpeg` program on PATH; install ffmpeg") from err
        if result.returncode != 0:
            raise ValueError(
                f"track '{track.name}': ffmpeg could not decode {track.path}: {result.stderr.strip()[-500:]}; "
                "re-download the file or use the MUSDB18-HQ WAV version"
            )
        stems = {}
        for stem in STEMS:
            audio, rate = sf.read(f"{tmp}/{stem}.wav", dtype="int16", always_2d=True)
            if rate != track.rate or audio.shape[0] < track.nb_samples:
                raise ValueError(
                    f"track '{track.name}': ffmpeg decoded {audio.shape[0]} samples at {rate} Hz of {stem} from "
                    f"{track.path}, the container declares {track.nb_samples} at {track.rate} Hz; "
                    "the file is damaged, re-download it"
                )
            stems[stem] = audio
    # The AAC encoder pads the last frame; musdb keeps that padding (its track.audio is the
    # whole decoded stream), and so does the cache, so that scores equal museval's on
    # musdb's tracks. Streams that decode to different lengths are cut to the shortest.
    length = min(audio.shape[0] for audio in stems.values())
    return {stem: audio[:length] for stem, audio in stems.items()}


def read_stem_mixture(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode the mixture stream of a MUSDB18 ``.stem.mp4`` (what ``melunmix separate`` reads).

    Parameters
    ----------
    path : path
        A ``.stem.mp4`` file; the mixture is stream ``stem_ids["mixture"]`` (0) of musdb's
        setup.

    Returns
    -------
    audio : np.ndarray, shape (nb_samples, nb_channels), float32
    rate : int
        Sample rate in Hz.

    Raises
    ------
    ValueError
        ffmpeg cannot decode the file (the message names it).
    """
    with tempfile.TemporaryDirectory(prefix="melunmix-decode-") as tmp:
        out = f"{tmp}/mixture.wav"
        command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                   "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", out]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError as err:
            raise RuntimeError("decoding .stem.mp4 needs the `ffmpeg` program on PATH; install ffmpeg") from err
        if result.returncode != 0:
            raise ValueError(f"{path}: ffmpeg cannot decode its mixture stream ({result.stderr.strip()[-300:]}); "
                             "re-download the file or convert it to WAV")
        audio, rate = sf.read(out, dtype="float32", always_2d=True)
    return audio, int(rate)


def _resample_stems(track: TrackInfo, rate: int) -> dict[str, np.ndarray]:
    import soxr


    stems = {}
    for stem in track.layout.files:
        audio = _check_finite(track, stem, read_frames(track.wav(stem), 0, None))
        stems[stem] = soxr.resample(audio, track.rate, rate, quality="HQ").astype(np.float32, copy=False)
    return stems


def _check_finite(track: TrackInfo, stem: str, audio: np.ndarray) -> np.ndarray:
    if not np.isfinite(audio).all():
        where = track.stems.get(stem, track.path)
        raise ValueError(
            f"track '{track.name}': {stem} ({where}) has NaN or infinite samples; replace the file "
            "(re-convert it, or delete and regenerate a generated dataset)"
        )
    return audio
