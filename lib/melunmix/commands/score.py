"""Scoring estimates made by any system: ``melunmix score``, as museval's own command line.

A folder of estimates in musdb's estimates layout, ``ESTIMATES/<track>/<target>.wav``
(``vocals`` and ``accompaniment`` at least), is scored against the true sources of a
MUSDB18-format root with BSS Eval v4 (1 s windows, vocals and accompaniment as a pair),
and every track's scores are written as museval JSON to ``EVAL/<subset>/<track>.json``:
museval's ``EvalStore`` / ``MethodStore`` read them as they read museval's own. The
median table (median over frames, then over tracks) is returned for printing, and the
tables of :func:`melunmix.analysis.result_tables.write_tables` are written to ``EVAL/tables/``.

On a cluster the songs are scored in shards, one job each (``--shard I/N``, or
``--shard slurm`` in a Slurm array job): shard I scores every N-th song from the I-th,
sorted by name, into the same JSON files; ``--aggregate`` then makes the tables from all
of them, and refuses (naming the songs) while one is missing.

Example
-------
>>> from melunmix.commands.score import score_folder
>>> table = score_folder("estimates/", "data/musdb18hq", "eval/mysystem")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..scoring.evaluate import evaluate_separation
from ..scoring.museval_scores import is_scored, track_json_path
from ..base.names import SCORED_TARGETS

logger = logging.getLogger(__name__)

#: Folder of the method folder that receives the tables (``<out>/tables/``).
TABLES_DIR_NAME = "tables"


#: Estimate file names per target: musdb's, and demucs' two-stem ``no_vocals`` for the
#: accompaniment.
ESTIMATE_FILES = {"vocals": ("vocals",), "drums": ("drums",), "bass": ("bass",), "other": ("other",),
                  "accompaniment": ("accompaniment", "no_vocals")}
NEEDED = ("vocals.wav and accompaniment.wav (or no_vocals.wav), or at least two of vocals.wav, drums.wav, "
          "bass.wav, other.wav and accompaniment.wav")


def estimate_targets(folder: str | os.PathLike) -> dict[str, Path]:
    """The estimate files of one track folder, by target (:data:`ESTIMATE_FILES`)."""
    folder = Path(folder)
    found = {}
    for target, names in ESTIMATE_FILES.items():
        paths = [folder / f"{name}.wav" for name in names if (folder / f"{name}.wav").is_file()]
        if len(paths) > 1:
            raise ValueError(f"{folder} holds both {paths[0].name} and {paths[1].name} for the {target}; keep one")
        if paths:
            found[target] = paths[0]
    return found


def scorable(targets) -> bool:
    """Whether ``museval.eval_mus_track`` scores these targets: vocals with accompaniment
    (a pair), or any two targets (e.g. drums with the accompaniment)."""
    return all(t in targets for t in SCORED_TARGETS) or len(list(targets)) >= 2


@dataclass(frozen=True)
class EstimateFiles:
    """Estimates read from ``<folder>/<track>/<target>.wav`` (picklable, for the workers).

    Every target found is read (:func:`estimate_targets`): vocals, drums, bass, other and
    accompaniment (or demucs' ``no_vocals``). An estimate longer or shorter than the
    mixture is cut or zero-padded to the mixture's length, as ``museval.eval_mus_track``
    does; another sample rate or channel count is an error naming the file.
    """

    folder: str

    def describe(self) -> str:
        return f"estimates in {self.folder}"

    def __call__(self, audio) -> dict[str, np.ndarray]:
        import soundfile as sf

        folder = Path(self.folder) / audio.name
        files = estimate_targets(folder)
        if not scorable(files):
            held = sorted(p.name for p in folder.glob("*.wav")) if folder.is_dir() else []
            raise FileNotFoundError(
                f"no estimates to score for track '{audio.name}': {folder} holds {held or 'nothing'}; it needs "
                f"{NEEDED}"
            )
        out = {}
        for target, path in files.items():
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
            if len(estimate) == 0:
                raise ValueError(f"{path} holds no samples (track '{audio.name}' has {nb_samples}); write the "
                                 "separated audio into it, or leave the file out")
            if estimate.shape[1] != nb_channels:
                raise ValueError(
                    f"{path} has {estimate.shape[1]} channel(s) but track '{audio.name}' has {nb_channels}"
                )
            if len(estimate) < nb_samples:
                estimate = np.pad(estimate, ((0, nb_samples - len(estimate)), (0, 0)))
            out[target] = estimate[:nb_samples]
        return out


def estimates_root(estimates_dir: Path, subset: str) -> Path:
    """museval's layout ``<estimates>/<subset>/<track>/`` or the flat ``<estimates>/<track>/``."""
    nested = estimates_dir / subset
    if nested.is_dir() and any(p.is_dir() for p in nested.iterdir()):
        return nested
    return estimates_dir


def score_folder(
    estimates_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    scorer: str = "fast",
    jobs: int | None = None,
    subset: str = "test",
    progress: bool = True,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
    aggregate_only: bool = False,
    method: str | None = None,
    tracks: list[str] | None = None,
    warn=None,
):
    """Score a folder of estimates against a MUSDB18-format root; write museval JSON and tables.

    Parameters
    ----------
    estimates_dir : path
        ``<estimates_dir>/<track>/<target>.wav`` or museval's
        ``<estimates_dir>/<subset>/<track>/<target>.wav``: vocals and accompaniment (or
        demucs' ``no_vocals``), drums, bass, other, whichever are there (at least the pair
        or two stems; :class:`EstimateFiles`). Tracks without a folder are skipped with one
        warning naming them, as museval scores what is there.
    data_root : path
        Any MUSDB18-format root (``.stem.mp4``, decoded once to the cache, or WAV folders)
        with the true stems; only ``<data_root>/<subset>`` is read (no ``train/`` needed
        for the test songs).
    out_dir : path
        Receives ``<out_dir>/<subset>/<track>.json`` and a ``settings.json``.
    scorer : {"fast", "museval"}
        BSS Eval v4 implementation (:func:`melunmix.scoring.museval_scores.score_estimates`).
    jobs : int, optional
        Worker processes (default: all cores).
    subset : {"test", "train"}
        Which tracks of the root the estimates are for.
    overwrite : bool
        Rescore tracks already scored in ``out_dir``.
    shard : (int, int), optional
        ``(index, count)``: score only the tracks ``index, index + count, ...`` of the
        subset sorted by name (:func:`shard_tracks`; one job of an array, e.g.
        ``melunmix score --shard slurm``), write their JSON and return None: the tables
        wait for every shard.
    aggregate_only : bool
        Score nothing; make the tables from the JSON the shards wrote.
    method : str, optional
        The method's name in the tables (default: the last part of ``out_dir``).
    tracks : list of str, optional
        Score only these tracks of the subset (default: every track with estimates).
    warn : callable, optional
        Receives the line naming skipped tracks (default: this module's logger).

    Returns
    -------
    pandas.DataFrame or None
        Median over frames, then over tracks, per target and metric (dB); None for a shard.
        Unless ``shard`` is given, the tables of :func:`melunmix.analysis.result_tables.write_tables` are
        written to ``<out_dir>/tables/`` (the same bytes however the tracks were sharded).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing estimates folder, estimate file or dataset (the message names it); for
        the tables, a track of the subset without its JSON (named, see
        :func:`melunmix.analysis.score_frames.require_tracks`); ``overwrite`` with ``shard`` (one shard
        would delete the others' scores).
    """
    from .. import datasets  # the data layer (torch) only when tracks are read

    estimates_dir, out_dir = Path(estimates_dir), Path(out_dir)
    if not estimates_dir.is_dir():
        raise FileNotFoundError(f"estimates folder {estimates_dir} does not exist")
    if subset not in ("test", "train"):
        raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")
    if shard is not None and overwrite:
        raise ValueError(
            f"overwrite with a shard would delete the other shards' scores in {out_dir / subset}: delete that "
            "folder once, then run the shards without --overwrite"
        )
    found = sorted(datasets.find_tracks(Path(data_root).expanduser().resolve(), subset), key=lambda t: t.name)
    if tracks:
        unknown = sorted(set(tracks) - {t.name for t in found})
        if unknown:
            raise ValueError(f"--tracks {unknown} are not {subset} tracks of {data_root}")
        found = [t for t in found if t.name in set(tracks)]
    root = estimates_root(estimates_dir, subset)
    present = [t for t in found if (root / t.name).is_dir()]
    absent = [t.name for t in found if t not in present]
    if not present:
        raise FileNotFoundError(
            f"no estimates for any {subset} track in {root}: it needs one folder per track, named as the track "
            f"(e.g. {root / (found[0].name if found else '<track>')}/), holding {NEEDED}"
        )
    if absent and not aggregate_only:
        (warn or logger.warning)(f"no estimates for {len(absent)} of the {len(found)} {subset} tracks in {root}, "
                                 f"skipped: {', '.join(absent)}")
    if not aggregate_only:
        targets = sorted({target for t in present for target in estimate_targets(root / t.name)})
        mine = shard_tracks(present, *shard) if shard is not None else present
        if mine:
            # Decoded once to the cache and checked: a mixture that is not the sum of its stems
            # gets a warning line, as in the study.
            mine = datasets.prepare_tracks(mine, progress=progress)
            settings = {"kind": "estimates", "estimates": str(root.resolve()), "targets": targets,
                        "bss_eval": scorer, "museval": {"mode": "v4", "win": 1.0, "hop": 1.0}}
            evaluate_separation(EstimateFiles(str(root.resolve())), out_dir.name, mine, out_dir.parent, settings,
                      jobs, progress, overwrite, 1.0, 1.0, scorer, subset=subset,
                      rescore_hint="pass --overwrite to rescore, or choose another --out")
        if shard is not None:
            return None
    return aggregate(out_dir, [t.name for t in present], subset, method=method)


def aggregate(out_dir: str | os.PathLike, tracks: list[str], subset: str = "test", method: str | None = None):
    """Tables of one method's scores, refused while a track has no JSON.

    Parameters
    ----------
    out_dir : path
        The method folder (``<out_dir>/<subset>/<track>.json``); tables go to
        ``<out_dir>/tables/``.
    tracks : list of str
        Every track of the subset.
    subset : str
    method : str, optional
        The method's name in the tables (default: the last part of ``out_dir``).

    Returns
    -------
    pandas.DataFrame
        The median table (:func:`melunmix.analysis.result_tables.poster_table`).
    """
    import pandas as pd

    from ..analysis import result_tables, score_frames# pandas only for the tables

    out_dir = Path(out_dir)
    # A JSON cut short by a killed job counts as missing, so its shard is rerun.
    scored = [name for name in tracks if is_scored(track_json_path(out_dir.parent, out_dir.name, name, subset))]
    scores = (score_frames.load_scores(out_dir.parent, [out_dir.name], subset=subset) if scored
              else pd.DataFrame(columns=["method", "track", "target", "metric", "time", "score"]))
    scores = scores[scores["track"].isin(scored)]
    if method:
        scores = scores.assign(method=method)
    result_tables.write_tables(scores, out_dir / TABLES_DIR_NAME, methods=[method or out_dir.name], tracks=tracks)
    return result_tables.poster_table(scores)


def shard_tracks(tracks: list, index: int, count: int) -> list:
    """Shard ``index`` of ``count``: every ``count``-th track from the ``index``-th, by name."""
    if not (isinstance(count, int) and isinstance(index, int) and count >= 1 and 0 <= index < count):
        raise ValueError(f"shard {index}/{count}: need 0 <= I < N (I counts from 0), e.g. 0/4 ... 3/4")
    return sorted(tracks, key=lambda t: t.name)[index::count]


def parse_shard(text: str, environ: dict | None = None) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``; ``"slurm"`` -> this Slurm array task's index and the task count.

    With ``"slurm"``, ``I = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP``
    and ``N = SLURM_ARRAY_TASK_COUNT``, so ``--array=0-3``, ``--array=1-4`` and
    ``--array=0-12:4`` all give the shards 0..3 of 4.

    Raises
    ------
    ValueError
        A malformed value, or ``"slurm"`` outside an array job (the message names the
        missing variable).
    """
    environ = os.environ if environ is None else environ
    text = str(text).strip()
    if text.lower() == "slurm":
        names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise ValueError(f"--shard slurm: {', '.join(missing)} not set; run it as a Slurm array job "
                             "(sbatch --array=0-3 ...) or give --shard I/N")
        task, count = int(environ["SLURM_ARRAY_TASK_ID"]), int(environ["SLURM_ARRAY_TASK_COUNT"])
        first, step = int(environ.get("SLURM_ARRAY_TASK_MIN", 0)), int(environ.get("SLURM_ARRAY_TASK_STEP") or 1)
        if (task - first) % step:
            raise ValueError(f"--shard slurm: task {task} is not on the array's grid (min {first}, step {step}); "
                             "use a regular array (--array=0-N) or --shard I/N")
        index = (task - first) // step
    else:
        match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
        if not match:
            raise ValueError(f"--shard {text!r}: expected I/N (e.g. 0/4: the first of 4 shards) or 'slurm'")
        index, count = int(match.group(1)), int(match.group(2))
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"--shard {text!r}: need 0 <= I < N (I counts from 0), got shard {index} of {count}")
    return index, count
