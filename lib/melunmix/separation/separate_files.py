"""The ``melunmix separate`` command: audio files in, one WAV per target and song out.

:func:`read_audio` reads any soundfile format or a MUSDB18 ``.stem.mp4`` mixture,
:func:`song_name` names a song's output folder (the name ``melunmix score`` looks up) and
:func:`separate_files` separates a list of files with :class:`melunmix.separation.separate.Separator`,
one error line per song that fails while the others go on.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..base.devices import resolve_device
from ..base.files import atomic_path, remove_stale_temporaries
from .separate import PathLike, Separator, separate_with

__all__ = ["read_audio", "song_name", "separate_files"]

#: What a folder given as songs stands for: the audio files in it (not in sub-folders).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".opus", ".stem.mp4")
#: Sample formats by file type, the default first.
SUBTYPES = {"wav": ("FLOAT", "PCM_16", "PCM_24"), "flac": ("PCM_24", "PCM_16")}


def read_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read an audio file for separation.

    Parameters
    ----------
    path : str or PathLike
        Any file soundfile reads (WAV, FLAC, OGG, ...); a MUSDB18 ``.stem.mp4``, whose
        mixture stream is decoded with ffmpeg; or any other file ffmpeg decodes (its first
        audio stream: ``.m4a``, ``.aac``...), when ffmpeg is installed.

    Returns
    -------
    audio : numpy.ndarray, shape (nb_channels, nb_samples), float32
    rate : int
        Sample rate in Hz.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        soundfile cannot decode it, or it has no samples, or NaN / infinite samples.
    """
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder without audio files (looked for {', '.join(AUDIO_SUFFIXES)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.name.endswith(".stem.mp4"):  # a MUSDB18 song: its mixture stream
            from ..datasets import read_stem_mixture  # the data layer only for .stem.mp4 and ffmpeg inputs

            data, rate = read_stem_mixture(path)
        else:
            try:
                data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            except sf.LibsndfileError as err:
                if shutil.which("ffmpeg") is None:
                    raise
                from ..datasets import read_stem_mixture  # any format ffmpeg decodes: its first audio stream

                try:
                    data, rate = read_stem_mixture(path)
                except ValueError:
                    raise ValueError(f"{path}: cannot read audio: neither soundfile ({err}) nor ffmpeg decodes "
                                     "it; if the file is intact, convert it to WAV") from None
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: cannot read audio ({err}); soundfile reads WAV, FLAC, OGG and "
                         "(libsndfile >= 1.1) MP3, and ffmpeg (when installed) most other formats: if "
                         "the file is intact, install ffmpeg or convert it first, e.g. ffmpeg -i INPUT "
                         "OUTPUT.wav") from err
    if data.size == 0:
        raise ValueError(f"{path}: the file contains no audio samples")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: the file contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), rate


def _models_at(path: Path, device: torch.device) -> list:
    """(target, model) pairs of one --model (:func:`melunmix.models.model_files.models_at`)."""
    from ..models.model_files import models_at  # model files read only when separating

    found = models_at(path, map_location=device)
    if any(target is None for target, _ in found):
        raise ValueError(f"model file {path} does not name its target; save it with "
                         "melunmix.models.networks.save_model(model, path, target='vocals')")
    return found


def _load_target_models(model_paths: Sequence[PathLike], device: torch.device) -> dict:
    models = {}
    for path in model_paths:
        for target, model in _models_at(Path(path), device):
            if target in models:
                raise ValueError(f"two models are for target {target!r} ({path} and an earlier --model); "
                                 "give one per target")
            models[target] = model
    return models


def _expand_songs(paths: list) -> list:
    """Songs as given, a folder replaced by its audio files (sorted); a MUSDB18-HQ track
    folder (holding ``mixture.wav``) is its mixture, not its stems. A folder without audio
    stays in the list, to fail on its own (:func:`read_audio` names it)."""
    songs = []
    for path in paths:
        folder = Path(path)
        if folder.is_dir() and (folder / "mixture.wav").is_file():
            songs.append(folder / "mixture.wav")
        elif folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(AUDIO_SUFFIXES))
            songs.extend(found or [path])
        else:
            songs.append(path)
    return songs


def _check_format(ext: str, subtype: Optional[str]) -> str:
    if ext not in SUBTYPES:
        raise ValueError(f"output type {ext!r} is not one of {sorted(SUBTYPES)}")
    subtype = (subtype or SUBTYPES[ext][0]).upper()
    if subtype not in SUBTYPES[ext]:
        raise ValueError(f"sample format {subtype!r} is not one of {list(SUBTYPES[ext])} for {ext}")
    return subtype


def song_name(path: PathLike) -> str:
    """Name of a song's output folder: the file stem, or the track folder for ``mixture.*``.

    A MUSDB18 ``<track>.stem.mp4`` gives ``<track>``, the name ``melunmix score`` looks up.
    """
    path = Path(path)
    if path.name.endswith(".stem.mp4"):
        return path.name[: -len(".stem.mp4")]
    return path.parent.resolve().name if path.stem == "mixture" and path.parent.resolve().name else path.stem


def _write_estimates(song, song_dir: Path, estimates: dict, rate: int, ext: str, subtype: str) -> dict:
    """Write one song's estimates (``<song_dir>/<target>.<ext>``, each file atomically);
    integer formats clip above full scale, with a warning. Target -> path written."""
    from tqdm import tqdm

    import soundfile as sf


    if subtype != "FLOAT":  # integer samples: above full scale would wrap or fail
        peak = max(float(np.max(np.abs(e))) for e in estimates.values())
        if peak > 1.0:
            tqdm.write(f"warning: {song}: estimates reach {20 * np.log10(peak):+.1f} dBFS; clipped to "
                       f"full scale for {subtype} (--subtype FLOAT keeps them)", file=sys.stderr)
            estimates = {t: np.clip(e, -1.0, 1.0) for t, e in estimates.items()}
    written = {}
    for target, estimate in estimates.items():
        wav = song_dir / f"{target}.{ext}"
        remove_stale_temporaries(wav)  # a hidden partial file of a killed run
        try:
            with atomic_path(wav) as tmp:
                sf.write(str(tmp), estimate.T, rate, subtype=subtype, format=ext.upper())
        except (RuntimeError, OSError) as err:  # libsndfile says only "System error."
            free = shutil.disk_usage(song_dir).free if song_dir.exists() else None
            hint = "the disk is full" if free is not None and free < estimate.nbytes else \
                "check that the folder is writable and the disk not full"
            raise OSError(f"cannot write {wav}: {err} ({hint})") from None
        written[target] = str(wav)
    return written


def separate_files(paths: Union[PathLike, Iterable[PathLike]],
                   model_paths: Union[PathLike, Iterable[PathLike]], out_dir: PathLike,
                   niter: int = 1, softmask: bool = False, progress: bool = True,
                   device=None, targets: Optional[Sequence[str]] = None, ext: str = "wav",
                   subtype: Optional[str] = None) -> dict:
    """Separate audio files and write one file per target and song.

    Writes ``<out_dir>/<song>/<target>.<ext>`` (e.g. ``vocals.wav`` and
    ``accompaniment.wav``) at the song's sample rate and length, 32-bit float WAV by
    default; ``<song>`` is the file name without extension, or the folder name for a
    MUSDB18-HQ-layout ``<track>/mixture.wav``. One line per song written goes to stdout.
    A song that cannot be read, is empty or holds NaN / infinite samples gets one error
    line on stderr naming the file, and the remaining songs are still processed.

    Parameters
    ----------
    paths : path or iterable of paths
        Songs in any format soundfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1)
        or, through ffmpeg, any other it decodes (``.m4a``, ``.stem.mp4``...); a folder
        stands for the audio files in it (:data:`AUDIO_SUFFIXES`).
    model_paths : path or iterable of paths
        Model files written by :func:`melunmix.models.networks.save_model` with a ``target``
        (e.g. ``target="vocals"``), folders of them, Open-Unmix model folders or
        Open-Unmix weights files (:mod:`melunmix.models.umx_files`); one model per target.
    targets : sequence of str, optional
        Separate only these of the models' targets (the residual ``accompaniment`` is
        always written); default all.
    ext : {"wav", "flac"}
    subtype : str, optional
        Sample format: ``FLOAT``, ``PCM_16`` or ``PCM_24`` (WAV; default ``FLOAT``),
        ``PCM_16`` or ``PCM_24`` (FLAC; default ``PCM_24``).
    out_dir : path
        Output folder (created).
    niter, softmask
        Wiener EM iterations and soft-mask initialisation, as :class:`Separator`.
    progress : bool
        Show a tqdm progress bar over the songs.
    device : str or torch.device, optional
        Default CUDA when available, else CPU (:func:`melunmix.base.devices.resolve_device`).

    Returns
    -------
    dict
        ``{"written": {song: {target: wav path}}, "failed": {song: error message}}``
        with songs as given (strings).

    Raises
    ------
    FileNotFoundError, ValueError
        For model files (missing, unreadable, without target) and bad settings: these
        concern every song, so nothing is processed.
    """
    from tqdm import tqdm

    paths = _expand_songs([paths] if isinstance(paths, (str, os.PathLike)) else list(paths))
    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    model_paths = list(model_paths)
    if not model_paths:
        raise ValueError("no model file given; pass at least one (e.g. --model vocals.pt)")
    subtype = _check_format(ext, subtype)
    device = resolve_device(device)
    loaded = _load_target_models(model_paths, device)
    if targets:
        absent = [t for t in targets if t not in loaded]
        if absent:
            raise ValueError(f"no model for target(s) {absent}: the models given are for {sorted(loaded)}")
        loaded = {t: loaded[t] for t in targets}
    separator = Separator(loaded, niter=niter, softmask=softmask).to(device)
    out_dir = Path(out_dir)

    report = {"written": {}, "failed": {}}
    used_folders: Dict[Path, str] = {}
    for song in tqdm(paths, desc="separating", unit="song", disable=not progress, file=sys.stderr):
        song_dir = out_dir / song_name(song)
        try:
            if song_dir in used_folders:
                raise ValueError(f"{song}: its output folder {song_dir} is already used by "
                                 f"{used_folders[song_dir]}; rename one of the files")
            audio, rate = read_audio(song)
            estimates = separate_with(separator, audio, rate)
            written = _write_estimates(song, song_dir, estimates, rate, ext, subtype)
            used_folders[song_dir] = str(song)
            report["written"][str(song)] = written
            tqdm.write(f"{song} -> {song_dir}{os.sep} ({', '.join(written)})", file=sys.stdout)
        except Exception as err:  # one bad song must not stop the others
            message = str(err) if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: {err}"
            if str(song) not in message:  # every line names the song it is about
                message = f"{song}: {message}"
            report["failed"][str(song)] = message
            tqdm.write(f"error: {message}", file=sys.stderr)
    return report
