"""Fast WAV reads: a chunk of a file with one seek and one read, no ffmpeg.

musdb reads every chunk through an ffmpeg subprocess, even from WAV (hundreds of ms per
training item). A soundfile partial read costs a fraction of a millisecond. 16-bit files
(MUSDB18-HQ) are read as integers and scaled in numpy, which is several times faster
than libsndfile's own int-to-float conversion and gives the same values.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

#: Scale that maps integer PCM read as int16 / int32 to [-1, 1), as libsndfile does.
_INT_SCALE = {"int16": np.float32(1.0 / 32768.0), "int32": np.float32(1.0 / 2147483648.0)}
#: PCM subtypes read as integers (24-bit samples arrive left-aligned in int32).
_INT_SUBTYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32"}


def read_native(
    path: str | os.PathLike, start: int, nb_samples: int | None, pad: bool = False
) -> tuple[np.ndarray, np.float32]:
    """Read samples (per channel) in the file's own sample type, with the scale that maps them to float.

    The caller multiplies by ``scale`` (and any gain) in one pass, which is where the
    time of a training item goes.

    Parameters
    ----------
    path : path
        An audio file libsndfile reads (WAV, FLAC, ...).
    start : int
        First frame (sample index), >= 0.
    nb_samples : int or None
        Samples per channel (soundfile's "frames"); ``None`` reads to the end.
    pad : bool
        Zero-fill samples past the end of the file instead of raising ``ValueError``.

    Returns
    -------
    samples : np.ndarray, shape (nb_samples, nb_channels)
        int16 / int32 for PCM files, float32 otherwise.
    scale : np.float32
        ``samples * scale`` is the audio in [-1, 1] (1 for float files).
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start} (reading {path})")
    if nb_samples is not None and nb_samples < 0:
        raise ValueError(f"nb_samples must be >= 0, got {nb_samples} (reading {path})")
    with sf.SoundFile(str(path)) as fh:
        total = fh.frames
        if nb_samples is None:
            nb_samples = max(total - start, 0)
        available = min(max(total - start, 0), nb_samples)
        if available < nb_samples and not pad:
            raise ValueError(
                f"cannot read samples [{start}, {start + nb_samples}) from {path}: it has {total}; "
                "read a shorter chunk or pass pad=True"
            )
        dtype = _INT_SUBTYPES.get(fh.subtype, "float32")
        samples = np.zeros((nb_samples, fh.channels), dtype=dtype) if available < nb_samples else None
        if available:
            fh.seek(start)
            if samples is None:
                samples = fh.read(available, dtype=dtype, always_2d=True)
            else:
                fh.read(available, dtype=dtype, always_2d=True, out=samples[:available])
    return samples, _INT_SCALE.get(dtype, np.float32(1.0))


def read_frames(path: str | os.PathLike, start: int, nb_samples: int | None, pad: bool = False) -> np.ndarray:
    """Read ``nb_samples`` samples per channel from ``start`` as float32, in file layout.

    Parameters
    ----------
    path, start, nb_samples, pad
        As :func:`read_native`.

    Returns
    -------
    np.ndarray, shape (nb_samples, nb_channels), float32
        Samples in [-1, 1] for PCM files.
    """
    samples, scale = read_native(path, start, nb_samples, pad=pad)
    if samples.dtype == np.float32:
        return samples
    audio = samples.astype(np.float32)
    audio *= scale
    return audio


def read_chunk(path: str | os.PathLike, start: int, nb_samples: int | None, pad: bool = False) -> np.ndarray:
    """Read a chunk of an audio file, channels first.

    Parameters
    ----------
    path : path
        A WAV file (or any format libsndfile reads).
    start : int
        First frame (sample index), >= 0.
    nb_samples : int or None
        Samples per channel; ``None`` reads to the end.
    pad : bool
        Zero-fill past the end of the file instead of raising ``ValueError``.

    Returns
    -------
    np.ndarray, shape (nb_channels, nb_samples), float32
        C-contiguous.
    """
    return np.ascontiguousarray(read_frames(path, start, nb_samples, pad=pad).T)
