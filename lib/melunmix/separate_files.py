"""The ``melunmix separate`` command: audio files in, one WAV per target and song out.

:func:`read_audio` reads any soundfile format or a MUSDB18 ``.stem.mp4`` mixture,
:func:`song_name` names a song's output folder (the name ``melunmix score`` looks up) and
:func:`separate_files` separates a list of files with :class:`melunmix.separate.Separator`,
one error line per song that fails while the others go on.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, Iterable, Sequence, Tuple, Union

import numpy as np
import torch

from .devices import resolve_device
from .separate import PathLike, Separator, _separate_with

__all__ = ["read_audio", "song_name", "separate_files"]


def read_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read an audio file for separation.

    Parameters
    ----------
    path : str or PathLike
        Any file soundfile reads (WAV, FLAC, OGG, ...), or a MUSDB18 ``.stem.mp4``, whose
        mixture stream is decoded with ffmpeg.

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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.name.endswith(".stem.mp4"):  # a MUSDB18 song: its mixture stream
            from .datasets import read_stem_mixture

            data, rate = read_stem_mixture(path)
        else:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: cannot read audio ({err}); soundfile reads WAV, FLAC, OGG and "
                         "(libsndfile >= 1.1) MP3: if the file is intact but in another format, "
                         "convert it first, e.g. ffmpeg -i INPUT OUTPUT.wav") from err
    if data.size == 0:
        raise ValueError(f"{path}: the file contains no audio samples")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: the file contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), rate


def _load_target_models(model_paths: Sequence[PathLike], device: torch.device) -> dict:
    from .models import load_model, load_model_info

    models = {}
    for path in model_paths:
        info = load_model_info(path)
        target = (info.get("extra") or {}).get("target")
        if not target:
            raise ValueError(f"model file {path} does not name its target; save it with "
                             "melunmix.models.save_model(model, path, target='vocals')")
        if target in models:
            raise ValueError(f"two model files are for target {target!r}; give one per target")
        models[target] = load_model(path, map_location=device)
    return models


def song_name(path: PathLike) -> str:
    """Name of a song's output folder: the file stem, or the track folder for ``mixture.*``.

    A MUSDB18 ``<track>.stem.mp4`` gives ``<track>``, the name ``melunmix score`` looks up.
    """
    path = Path(path)
    if path.name.endswith(".stem.mp4"):
        return path.name[: -len(".stem.mp4")]
    return path.parent.resolve().name if path.stem == "mixture" and path.parent.resolve().name else path.stem


def separate_files(paths: Union[PathLike, Iterable[PathLike]],
                   model_paths: Union[PathLike, Iterable[PathLike]], out_dir: PathLike,
                   niter: int = 1, softmask: bool = False, progress: bool = True,
                   device=None) -> dict:
    """Separate audio files and write one WAV per target and song.

    Writes ``<out_dir>/<song>/<target>.wav`` (e.g. ``vocals.wav`` and
    ``accompaniment.wav``) as 32-bit float WAV at the song's sample rate and length;
    ``<song>`` is the file name without extension, or the folder name for a
    MUSDB18-HQ-layout ``<track>/mixture.wav``.
    A song that cannot be read, is empty or holds NaN / infinite samples gets one error
    line on stderr naming the file, and the remaining songs are still processed.

    Parameters
    ----------
    paths : path or iterable of paths
        Songs in any format soundfile reads (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1).
    model_paths : path or iterable of paths
        Model files written by :func:`melunmix.models.save_model` with a ``target``
        (e.g. ``target="vocals"``), one per target.
    out_dir : path
        Output folder (created).
    niter, softmask
        Wiener EM iterations and soft-mask initialisation, as :class:`Separator`.
    progress : bool
        Show a tqdm progress bar over the songs.
    device : str or torch.device, optional
        Default CUDA when available, else CPU (:func:`melunmix.devices.resolve_device`).

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

    import soundfile as sf

    from .files import atomic_path, remove_stale_temporaries

    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    model_paths = list(model_paths)
    if not model_paths:
        raise ValueError("no model file given; pass at least one (e.g. --model vocals.pt)")
    device = resolve_device(device)
    separator = Separator(_load_target_models(model_paths, device), niter=niter,
                          softmask=softmask).to(device)
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
            estimates = _separate_with(separator, audio, rate)
            written = {}
            for target, estimate in estimates.items():
                wav = song_dir / f"{target}.wav"
                remove_stale_temporaries(wav)  # a hidden partial file of a killed run
                try:
                    with atomic_path(wav) as tmp:
                        sf.write(str(tmp), estimate.T, rate, subtype="FLOAT", format="WAV")
                except (RuntimeError, OSError) as err:  # libsndfile says only "System error."
                    free = shutil.disk_usage(song_dir).free if song_dir.exists() else None
                    hint = "the disk is full" if free is not None and free < estimate.nbytes else \
                        "check that the folder is writable and the disk not full"
                    raise OSError(f"cannot write {wav}: {err} ({hint})") from None
                written[target] = str(wav)
            used_folders[song_dir] = str(song)
            report["written"][str(song)] = written
        except Exception as err:  # one bad song must not stop the others
            message = str(err) if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: {err}"
            if str(song) not in message:  # every line names the song it is about
                message = f"{song}: {message}"
            report["failed"][str(song)] = message
            tqdm.write(f"error: {message}", file=sys.stderr)
    return report
