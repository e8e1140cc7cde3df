"""Scoring estimates made by any system: ``melunmix score``, as museval's own command line.

A folder of estimates in musdb's estimates layout, ``ESTIMATES/<track>/<target>.wav``
(``vocals`` and ``accompaniment`` at least), is scored against the true sources of a
MUSDB18-format root with BSS Eval v4 (1 s windows, vocals and accompaniment as a pair),
and every track's scores are written as museval JSON to ``EVAL/<subset>/<track>.json``:
museval's ``EvalStore`` / ``MethodStore`` read them as they read museval's own. The
median table (median over frames, then over tracks) is returned for printing.

Example
-------
>>> from melunmix.score import score_folder
>>> table = score_folder("estimates/", "data/musdb18hq", "eval/mysystem")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .oracles import SOURCES

#: What an estimate folder must hold per track: the pair that is scored.
REQUIRED_TARGETS = SOURCES


@dataclass(frozen=True)
class EstimateFiles:
    """Estimates read from ``<folder>/<track>/<target>.wav`` (picklable, for the workers).

    An estimate longer or shorter than the mixture is cut or zero-padded to the
    mixture's length, as ``museval.eval_mus_track`` does; another sample rate or channel
    count is an error naming the file.
    """

    folder: str

    def describe(self) -> str:
        return f"estimates in {self.folder}"

    def __call__(self, audio) -> dict[str, np.ndarray]:
        import soundfile as sf

        out = {}
        for target in REQUIRED_TARGETS:
            path = Path(self.folder) / audio.name / f"{target}.wav"
            if not path.is_file():
                raise FileNotFoundError(
                    f"no {target} estimate for track '{audio.name}': {path} is missing; the estimates "
                    f"folder needs <track>/{'.wav and <track>/'.join(REQUIRED_TARGETS)}.wav per test track"
                )
            try:
                estimate, rate = sf.read(path, dtype="float64", always_2d=True)
            except (RuntimeError, sf.LibsndfileError) as err:
                raise ValueError(f"cannot read {path}: {err}; write the estimate as a WAV file") from None
            if float(rate) != float(audio.rate):
                raise ValueError(
                    f"{path} is at {rate} Hz but track '{audio.name}' at {audio.rate:g} Hz; write the "
                    "estimates at the track's rate"
                )
            nb_samples, nb_channels = audio.mixture.shape
            if estimate.shape[1] != nb_channels:
                raise ValueError(
                    f"{path} has {estimate.shape[1]} channel(s) but track '{audio.name}' has {nb_channels}"
                )
            if len(estimate) < nb_samples:
                estimate = np.pad(estimate, ((0, nb_samples - len(estimate)), (0, 0)))
            out[target] = estimate[:nb_samples]
        return out


def score_folder(
    estimates_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    scorer: str = "fast",
    jobs: int | None = None,
    subset: str = "test",
    progress: bool = True,
    overwrite: bool = False,
):
    """Score a folder of estimates against a MUSDB18-format root; write museval JSON.

    Parameters
    ----------
    estimates_dir : path
        ``<estimates_dir>/<track>/{vocals,accompaniment}.wav``, one folder per track of
        ``subset`` (musdb's estimates layout).
    data_root : path
        MUSDB18 (``.stem.mp4``, decoded once to the cache) or MUSDB18-HQ / WAV root with
        the true stems.
    out_dir : path
        Receives ``<out_dir>/<subset>/<track>.json`` and a ``settings.json``.
    scorer : {"fast", "museval"}
        BSS Eval v4 implementation (:func:`melunmix.evaluate.score_estimates`).
    jobs : int, optional
        Worker processes (default: all cores).
    subset : {"test", "train"}
        Which tracks of the root the estimates are for.
    overwrite : bool
        Rescore tracks already scored in ``out_dir``.

    Returns
    -------
    pandas.DataFrame
        Median over frames, then over tracks, per target and metric (dB).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing estimates folder, estimate file or dataset (the message names it).
    """
    from . import datasets, stats
    from .evaluate import _evaluate

    estimates_dir, out_dir = Path(estimates_dir), Path(out_dir)
    if not estimates_dir.is_dir():
        raise FileNotFoundError(f"estimates folder {estimates_dir} does not exist")
    if subset not in ("test", "train"):
        raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")
    tracks = datasets.find_tracks(Path(data_root).expanduser().resolve(), subset)
    if not tracks:
        raise ValueError(f"{data_root} has no {subset} tracks to score")
    settings = {"kind": "estimates", "estimates": str(estimates_dir.resolve()),
                "museval": {"mode": "v4", "win": 1.0, "hop": 1.0}}
    _evaluate(EstimateFiles(str(estimates_dir.resolve())), out_dir.name, tracks, out_dir.parent, settings,
              jobs, progress, overwrite, 1.0, 1.0, scorer, subset=subset)
    scores = stats.load_scores(out_dir.parent, [out_dir.name], subset=subset)
    return stats.poster_table(scores)
