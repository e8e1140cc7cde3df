"""Score separations of the test tracks with museval (BSS Eval v4), as SiSEC 2018 does.

For every test track a method's ``vocals`` and ``accompaniment`` estimates are scored as
a pair by :func:`museval.eval_mus_track` (1 s windows and hops, BSS Eval v4: one
time-invariant distortion filter per track) and museval's JSON is written to
``<eval_dir>/<method>/test/<track>.json``, the names and format that
``museval.EvalStore.add_eval_dir`` and ``museval.MethodStore.add_eval_dir`` read. The
methods are

- trained models (:func:`evaluate_model`): the test mixture separated by
  :func:`melunmix.separation.separate.separate` (model, multichannel Wiener filter, residual
  accompaniment);
- reference methods (:func:`evaluate_oracle`): SiSEC 2018's MIX (the mixture over the
  number of stems) and oracle masks / Wiener filter from the four true stems
  (:mod:`melunmix.separation.oracles`).

Tracks run in parallel in a process pool (``spawn`` workers with one torch and one BLAS
thread each; a serial run uses the same, so both give the same numbers; a script that
calls this with ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard). The
workers die with the process that started them, even when it is killed with ``kill -9``,
and Ctrl-C stops them at once. A track whose JSON exists is skipped, and each JSON is
written atomically, so an interrupted evaluation resumes where it stopped.
``<eval_dir>/<method>/evaluation.json`` records how the scores were made (model file
hashes, Wiener settings, museval windows); asking for the same method with other
settings is an error instead of a silent mix of old and new scores.

This module keeps the method folders' bookkeeping and the two entry points; a track is
read by :mod:`melunmix.scoring.track_audio`, scored and written by :mod:`melunmix.scoring.museval_scores`,
and the pool's workers are set up by :mod:`melunmix.base.processes`. Aggregation and
statistics are in :mod:`melunmix.analysis.stats`.

Example
-------
>>> from melunmix.datasets import find_tracks
>>> tracks = find_tracks(root, subset="test")
>>> evaluate_model({"vocals": "results/demo/models/openunmix/vocals.pt"}, tracks,
...                "results/demo/eval", "openunmix")
>>> evaluate_oracle("IRM2", tracks, "results/demo/eval")
>>> from melunmix.analysis.score_frames import load_scores
>>> from melunmix.analysis.result_tables import poster_table
>>> poster_table(load_scores("results/demo/eval"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import inspect
import re
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..base.config import WIENER_WIN_LEN
from ..base.files import read_json, sha256_file, write_json
from .museval_scores import SCORERS, SUBSET, is_scored, score_estimates, track_json_path, write_track_scores
from ..base.names import HALF_SUFFIX, MODEL_ALIASES, SCORED_TARGETS, SOURCES, canonical_model_name, split_seed
from ..separation.oracles import DEFINITION, HOP, NPERSEG, check_oracle_name, oracle_estimates
from ..base.processes import children_ignore_sigint, init_pool_worker, kill_pool_workers, one_thread, usable_cores
from .track_audio import TrackAudio, load_track, track_name

#: File in ``<eval_dir>/<method>/`` recording the settings the scores were made with.
SETTINGS_FILE = "evaluation.json"

_METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


# --------------------------------------------------------------------------- separations


@dataclass(frozen=True)
class ModelSeparation:
    """A trained model's separation of a track (picklable: worker processes rebuild it).

    Attributes
    ----------
    model_paths : tuple of (str, str)
        ``(target, model file)`` pairs.
    niter, softmask, residual, wiener_win_len, device
        As :func:`melunmix.separation.separate.separate`.
    """

    model_paths: tuple[tuple[str, str], ...]
    niter: int = 1
    softmask: bool = False
    residual: bool = True
    wiener_win_len: int | None = WIENER_WIN_LEN
    device: str | None = None

    def describe(self) -> str:
        return "models " + ", ".join(f"{t}={p}" for t, p in self.model_paths)

    def __call__(self, audio: TrackAudio) -> dict[str, np.ndarray]:
        from ..separation.separate import separate  # torch only for models: oracle and `score` workers start without it

        try:
            outputs = separate(
                np.ascontiguousarray(audio.mixture.T, dtype=np.float32), audio.rate, _loaded_models(self),
                niter=self.niter, softmask=self.softmask, residual=self.residual,
                wiener_win_len=self.wiener_win_len, device=self.device,
            )
        except ValueError as err:
            # e.g. NaN model outputs caught by the Wiener filter: name the files and track.
            raise ValueError(f"{self.describe()}: cannot separate track '{audio.name}': {err}") from err
        # separate gives (nb_channels, nb_samples); museval wants time first.
        return {target: np.asarray(y).T for target, y in outputs.items()}


@dataclass(frozen=True)
class OracleSeparation:
    """An oracle's (or MIX's) separation of a track, as SiSEC 2018 (see :mod:`melunmix.separation.oracles`).

    Picklable: worker processes get it. Its STFT is SiSEC's, fixed (no settings).
    """

    name: str

    def describe(self) -> str:
        return f"oracle {self.name}"

    def __call__(self, audio: TrackAudio) -> dict[str, np.ndarray]:
        missing = [stem for stem in SOURCES if stem not in audio.stems]
        if missing:
            where = f" ({audio.location})" if audio.location else ""
            raise ValueError(
                f"the oracle {self.name} is defined on the four MUSDB18 stems, but test track "
                f"'{audio.name}'{where} has no {', '.join(f'{stem}.wav' for stem in missing)}; add the "
                "missing stem files (a MUSDB18-format track), or score only models on this test set"
            )
        return oracle_estimates(self.name, audio.mixture, audio.stems)


# Models loaded in this process, keyed by file, size and mtime (a retrained file reloads).
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def _loaded_models(separation: ModelSeparation) -> dict[str, Any]:
    from ..base.devices import resolve_device  # torch only for models: oracle and `score` workers start without it
    from ..models.model_files import models_at  # torch only for models: oracle and `score` workers start without it

    key = tuple(
        (target, path, os.stat(path).st_size, os.stat(path).st_mtime_ns, separation.device)
        for target, path in separation.model_paths
    )
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        device = resolve_device(separation.device)  # where separate() runs them
        # A model file, or a folder (Open-Unmix's, a run's) read for this target.
        _MODEL_CACHE[key] = {target: models_at(path, targets=[target], map_location=device)[0][1]
                             for target, path in separation.model_paths}
    return _MODEL_CACHE[key]


def check_model_files(
    model_paths: Mapping[str, str | os.PathLike],
    expected_model: str | None = None,
    n_fft: int | None = None,
    n_hop: int | None = None,
    sample_rate: float | None = None,
) -> dict[str, dict]:
    """Check that the model files of one method exist and belong together.

    Parameters
    ----------
    model_paths : dict of str to path
        Target name -> model file (from :func:`melunmix.models.networks.save_model`).
    expected_model : str, optional
        Model name the files must hold (``"openunmix"``, ``"melunmix"`` or an alias).
    n_fft, n_hop, sample_rate : optional
        STFT settings and rate the files must have been trained with (the profile's).

    Returns
    -------
    dict of str to dict
        Target -> :func:`melunmix.models.networks.load_model_info` of its file.

    Raises
    ------
    FileNotFoundError
        A missing file.
    ValueError
        An unreadable file, another model's file (other class, or saved for another
        target), or STFT settings / sample rate that differ between the files or from
        the expected ones.
    """
    # torch only for models: oracle and `score` workers start without it
    from ..models.networks import ARCHITECTURES, load_model_info

    if not model_paths:
        raise ValueError("model_paths is empty; pass {'vocals': <model file>}")
    expected_class, expected_fixed = None, {}
    if expected_model is not None:
        cls, fixed = ARCHITECTURES[canonical_model_name(expected_model)]
        expected_class = cls.__name__.lower()
        # Only what the class is built with; ``width_of`` says how a width-matched
        # control's hidden size was derived, and its file holds that hidden size.
        expected_fixed = {k: v for k, v in fixed.items() if k in inspect.signature(cls).parameters}
    infos, first = {}, None
    for target, path in model_paths.items():
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"model file for target {target!r} not found: {path}; train the model first "
                "(melunmix.training.train) or fix the path"
            )
        info = load_model_info(path)
        saved_target = (info.get("extra") or {}).get("target")
        if saved_target is not None and saved_target != target:
            raise ValueError(
                f"{path} holds a model of target {saved_target!r}, not {target!r}: another model's "
                f"file; pass the {target} model's file"
            )
        differs = {k: v for k, v in expected_fixed.items() if (info.get("kwargs") or {}).get(k) != v}
        if expected_class is not None and (info["class_name"].lower() != expected_class or differs):
            raise ValueError(
                f"{path} holds a {info['class_name']} model, not {expected_model!r}: another model's "
                f"file; pass the {expected_model} model's weights"
            )
        stft = {"sample_rate": float(info["sample_rate"]), "n_fft": int(info["n_fft"]),
                "n_hop": int(info["n_hop"])}
        wanted = {"sample_rate": sample_rate, "n_fft": n_fft, "n_hop": n_hop}
        for key, value in wanted.items():
            if value is not None and float(value) != stft[key]:
                raise ValueError(
                    f"{path} was trained with {key}={stft[key]:g} but the settings ask for {value:g}; "
                    "retrain it with the profile's STFT settings or use a matching profile"
                )
        if first is None:
            first = (path, stft)
        elif stft != first[1]:
            raise ValueError(
                f"{path} has STFT settings {stft} but {first[0]} has {first[1]}; all models of one "
                "method must share sample rate, n_fft and n_hop"
            )
        infos[target] = info
    return infos



# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class _TrackJob:
    track: Any
    name: str
    path: Path
    separation: Any
    win: float
    hop: float
    scorer: str = "fast"


def _score_track(job: _TrackJob) -> str:
    """Worker: separate one track, score it, write its JSON."""
    try:
        audio = load_track(job.track)
        estimates = job.separation(audio)
        store = score_estimates(audio, estimates, job.win, job.hop, source=job.separation.describe(),
                                scorer=job.scorer)
        write_track_scores(store, job.path)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(f"while scoring track '{job.name}' with {job.separation.describe()}")
        raise
    return job.name


def check_method_name(method: str) -> str:
    """``method`` when it can name a method's folder and museval's method, else ValueError."""
    if not isinstance(method, str) or not _METHOD_NAME.fullmatch(method):
        raise ValueError(
            f"method name {method!r} must start with a letter or digit and hold only letters, "
            "digits and . _ + - (it names a folder and museval's method)"
        )
    return method


def _prepare_method_dir(method_dir: Path, settings: dict, overwrite: bool, subset: str = SUBSET,
                        rescore_hint: str = "pass overwrite=True to rescore, or use another method name") -> None:
    """Record the settings; refuse (or, with ``overwrite``, delete) scores made otherwise.

    Settings left by a run that scored nothing (it failed first) protect nothing and are
    replaced."""
    settings_path = method_dir / SETTINGS_FILE
    previous = read_json(settings_path) if settings_path.is_file() else None
    # The scorer is left out: both give museval's numbers (to 1e-4 dB), so switching
    # scorers continues a folder instead of rescoring it (melunmix score records it
    # under another key to rescore or refuse).
    ignored = ("files", "scorer")
    comparable = {k: v for k, v in settings.items() if k not in ignored}
    stale = previous is not None and {k: v for k, v in previous.items() if k not in ignored} != comparable
    if stale and not any((method_dir / subset).glob("*.json")):
        stale = False  # nothing scored under the old settings
    if stale and not overwrite:
        changed = sorted(k for k in comparable if previous.get(k) != comparable[k])
        raise ValueError(
            f"{method_dir} holds scores made with other settings ({', '.join(changed)} differ, see "
            f"{settings_path}); {rescore_hint}"
        )
    if overwrite or stale:
        shutil.rmtree(method_dir / subset, ignore_errors=True)
    write_json(settings_path, settings)


def _decode_stem_tracks(todo: list[_TrackJob], progress: bool) -> None:
    """Give ``.stem.mp4`` TrackInfo jobs WAV stems (decoded once into the dataset's cache)."""
    from ..datasets.tracks import TrackInfo  # the data layer (torch) only for .stem.mp4 tracks

    undecoded = [i for i, job in enumerate(todo) if isinstance(job.track, TrackInfo) and not job.track.stems]
    if not undecoded:
        return
    from ..datasets import prepare_tracks  # the data layer (torch) only for .stem.mp4 tracks

    decoded = prepare_tracks([todo[i].track for i in undecoded], progress=progress)
    for i, track in zip(undecoded, decoded):
        todo[i] = dataclasses.replace(todo[i], track=track)


def evaluate_separation(
    separation, method: str, tracks: Sequence[Any], eval_dir, settings: dict,
    jobs: int | None, progress: bool, overwrite: bool, win: float, hop: float, scorer: str = "fast",
    subset: str = SUBSET, rescore_hint: str | None = None,
) -> list[Path]:
    """Score what ``separation`` (a picklable callable: track audio -> estimates) gives for
    every track into ``<eval_dir>/<method>/<subset>/<track>.json``, in ``jobs`` worker
    processes, skipping tracks already scored with the same ``settings`` (refused, or with
    ``overwrite`` deleted, when they differ). What :func:`evaluate_model`,
    :func:`evaluate_pretrained`, :func:`evaluate_oracle` and ``melunmix score`` share."""
    from tqdm import tqdm

    check_method_name(method)
    tracks = list(tracks)
    if not tracks:
        raise ValueError("no test tracks to evaluate (tracks is empty)")
    names = [track_name(t) for t in tracks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate test track names {duplicates}: each track is scored into <name>.json")
    if jobs is not None and (isinstance(jobs, bool) or int(jobs) < 1):
        raise ValueError(f"jobs must be a positive number of processes or None (all cores), got {jobs!r}")
    if not (win > 0 and hop > 0):
        raise ValueError(f"museval win and hop must be positive seconds, got win={win}, hop={hop}")
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}")
    settings = {**settings, "scorer": scorer}

    method_dir = Path(eval_dir) / method
    _prepare_method_dir(method_dir, settings, overwrite, subset,
                        **({"rescore_hint": rescore_hint} if rescore_hint else {}))
    paths = [track_json_path(eval_dir, method, name, subset) for name in names]
    todo = [
        _TrackJob(track, name, path, separation, float(win), float(hop), scorer)
        for track, name, path in zip(tracks, names, paths)
        if not is_scored(path)
    ]
    _decode_stem_tracks(todo, progress)
    nb_workers = min(int(jobs or usable_cores()), len(todo))
    bar = tqdm(total=len(tracks), initial=len(tracks) - len(todo), desc=f"evaluate {method}",
               unit="track", disable=not progress)
    try:
        if nb_workers <= 1:
            with one_thread():
                for job in todo:
                    _score_track(job)
                    bar.update()
        elif _SHARED:  # inside shared_workers(): the block's pool, started once
            _score_in_pool(_SHARED[-1].pool(), todo, bar)
        else:
            with _start_pool(nb_workers) as pool:
                _score_in_pool(pool, todo, bar)
    finally:
        bar.close()
        _MODEL_CACHE.clear()
    return paths


def _start_pool(nb_workers: int) -> ProcessPoolExecutor:
    # spawn: a forked child of a process that already ran torch's OpenMP pool can hang,
    # and CUDA cannot be used after fork.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(nb_workers, mp_context=context, initializer=init_pool_worker,
                               initargs=(os.getpid(),))


def _score_in_pool(pool: ProcessPoolExecutor, todo: list, bar) -> None:
    with children_ignore_sigint():  # submit starts the workers
        futures = [pool.submit(_score_track, job) for job in todo]
    try:
        for future in as_completed(futures):
            future.result()
            bar.update()
    except BaseException as err:
        for future in futures:
            future.cancel()
        if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: stop now
            kill_pool_workers(pool)
        raise


class _SharedWorkers:
    """The scoring workers of a :func:`shared_workers` block, started at the first use."""

    def __init__(self, jobs: int | None):
        self.nb_workers = int(jobs or usable_cores())
        self.executor: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self.executor is None:
            self.executor = _start_pool(self.nb_workers)
        return self.executor


#: The active :func:`shared_workers` blocks, innermost last.
_SHARED: list[_SharedWorkers] = []


@contextlib.contextmanager
def shared_workers(jobs: int | None = None) -> Iterator[None]:
    """Let the evaluations inside the block (:func:`evaluate_model`, :func:`evaluate_oracle`,
    :func:`evaluate_pretrained`, :func:`evaluate_separation`) share one pool of ``jobs``
    scoring workers (None: every usable core), started when the first of them needs it,
    instead of starting a pool per method: a worker imports torch and the package once
    (seconds), not once per method. Workers hold one method's models at a time.

    >>> with shared_workers(jobs=2):  # doctest: +SKIP
    ...     for name in ("IRM1", "MIX"):
    ...         evaluate_oracle(name, tracks, "results/eval", jobs=2)
    """
    block = _SharedWorkers(jobs)
    _SHARED.append(block)
    try:
        yield
    finally:
        _SHARED.remove(block)
        if block.executor is not None:
            block.executor.shutdown(wait=True, cancel_futures=True)


def evaluate_model(
    model_paths: Mapping[str, str | os.PathLike],
    tracks: Sequence[Any],
    eval_dir: str | os.PathLike,
    method_name: str,
    niter: int = 1,
    softmask: bool = False,
    residual: bool = True,
    wiener_win_len: int | None = WIENER_WIN_LEN,
    jobs: int | None = None,
    progress: bool = True,
    device: str | None = None,
    win: float = 1.0,
    hop: float = 1.0,
    expected_model: str | None = None,
    n_fft: int | None = None,
    n_hop: int | None = None,
    sample_rate: float | None = None,
    overwrite: bool = False,
    scorer: str = "fast",
) -> list[Path]:
    """Separate every test track with trained models and score it with BSS Eval v4 (museval's).

    Parameters
    ----------
    model_paths : dict of str to path
        Target -> model file, e.g. ``{"vocals": "models/openunmix/vocals.pt"}``; with
        ``residual=True`` the accompaniment is the mixture minus the modelled targets.
    tracks : sequence of TrackInfo or musdb.MultiTrack
        The test tracks (:func:`melunmix.datasets.find_tracks` ``(root, "test")``).
    eval_dir : path
        ``results/<profile>/eval``; scores go to ``<eval_dir>/<method_name>/test/``.
    method_name : str
        Method (folder) name, e.g. ``"openunmix"`` or ``"melunmix-seed42"``.
    niter, softmask, residual, wiener_win_len
        Wiener filter settings of :func:`melunmix.separation.separate.separate` (the profile's
        ``evaluate`` section).
    jobs : int, optional
        Worker processes (default: all cores); 1 runs in this process. Scores do not
        depend on it.
    progress : bool
        Show a progress bar over tracks.
    device : str, optional
        Torch device for the models (default: CUDA when present, else CPU;
        :func:`melunmix.base.devices.resolve_device`).
    win, hop : float
        museval window and hop in seconds (SiSEC: 1 s each).
    expected_model : str, optional
        Model name the files must hold; default: inferred from ``method_name`` when it is
        a model name, optionally with ``-seed<N>`` (``"openunmix-seed42"`` -> openunmix).
    n_fft, n_hop, sample_rate : optional
        STFT settings the files must have been trained with (the profile's).
    overwrite : bool
        Delete the method's existing scores (every track, also those not in ``tracks``)
        and score again; needed to replace scores made with other settings or models.
    scorer : {"fast", "museval"}
        BSS Eval v4 implementation (:func:`melunmix.scoring.museval_scores.score_estimates`); the
        same numbers.

    Returns
    -------
    list of Path
        The JSON file of every track, in the order of ``tracks``.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`check_model_files`, :func:`melunmix.scoring.track_audio.load_track`,
        :func:`melunmix.scoring.museval_scores.score_estimates`; the message names the file or the track.

    Notes
    -----
    With ``scorer="museval"``, scoring dominates time and memory: about 2.5 GB and 20-40 s
    of one core per 2-minute stereo track at 44.1 kHz, per worker; the fast scorer needs
    about 0.1 GB beyond the audio and 1.5 s for such a track, so separation dominates.
    """

    check_method_name(method_name)
    # "<model>-half[-seed<N>]" holds the half-training weights of <model>.
    base = split_seed(method_name)[0].removesuffix(HALF_SUFFIX)
    if expected_model is None and base.lower() in MODEL_ALIASES:
        expected_model = base
    check_model_files(model_paths, expected_model, n_fft, n_hop, sample_rate)
    missing = [t for t in SCORED_TARGETS if t not in model_paths]
    if missing and not (residual and missing == ["accompaniment"]):
        raise ValueError(
            f"method {method_name!r} has models for {sorted(model_paths)} but vocals and accompaniment are "
            "scored as a pair: pass a vocals model, and an accompaniment model or residual=True"
        )
    resolved = tuple((target, str(Path(path).resolve())) for target, path in model_paths.items())
    separation = ModelSeparation(resolved, int(niter), bool(softmask), bool(residual),
                                 None if wiener_win_len is None else int(wiener_win_len), device)
    settings = _model_settings("model", {target: sha256_file(path) for target, path in resolved}, dict(resolved),
                               separation, win, hop)
    return evaluate_separation(separation, method_name, tracks, eval_dir, settings, jobs, progress,
                     overwrite, win, hop, scorer)


def _model_settings(kind: str, fingerprints: dict, files: dict, separation: ModelSeparation, win: float,
                    hop: float) -> dict:
    """What a model method's scores depend on (its settings file): the weights' fingerprints,
    the Wiener settings and museval's framing; ``files`` says where the weights were."""
    return {
        "kind": kind,
        "models": fingerprints,
        "separation": {"niter": separation.niter, "softmask": separation.softmask, "residual": separation.residual,
                       "wiener_win_len": separation.wiener_win_len},
        "museval": {"mode": "v4", "win": float(win), "hop": float(hop)},
        "files": files,
    }


def evaluate_pretrained(
    path: str | os.PathLike,
    tracks: Sequence[Any],
    eval_dir: str | os.PathLike,
    method_name: str,
    sample_rate: float | None = None,
    niter: int = 1,
    softmask: bool = False,
    residual: bool = True,
    wiener_win_len: int | None = WIENER_WIN_LEN,
    jobs: int | None = None,
    progress: bool = True,
    device: str | None = None,
    win: float = 1.0,
    hop: float = 1.0,
    overwrite: bool = False,
    scorer: str = "fast",
) -> list[Path]:
    """Score a vocals model trained elsewhere as one more method: Open-Unmix's published
    weights, an Open-Unmix ``train.py`` folder, another run's model file or folder
    (:func:`melunmix.models.model_files.models_at`); a profile's ``evaluate.models``.

    Its vocals model separates each test track (the accompaniment is the residual, as for
    the study's models, with the same Wiener settings) and is scored as
    :func:`evaluate_model` scores; the settings record the weights' fingerprint, so other
    weights under the same name are refused (or rescored with ``overwrite``).

    Parameters
    ----------
    path : path
        What holds the model (a file or a folder); it needs a vocals model.
    method_name : str
        Its name in the tables, e.g. ``"umxhq"``.
    sample_rate : float, optional
        The test songs' rate: a model made for another rate is refused (melunmix does not
        resample for scoring).
    tracks, eval_dir, niter, softmask, residual, wiener_win_len, jobs, progress, device, win, hop, overwrite, scorer
        As :func:`evaluate_model`.

    Raises
    ------
    FileNotFoundError, ValueError
        No such path, no vocals model in it, another rate than the songs'; the message
        names the method and the path.
    """
    # torch only for models: oracle and `score` workers start without it
    from ..models.model_files import model_fingerprint, models_at

    check_method_name(method_name)
    path = Path(path).expanduser().resolve()
    what = f"model {method_name!r} ({path})"
    try:
        found = models_at(path)
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"{what}: {err}") from None
    targets = [target for target, _ in found]
    if "vocals" not in targets and not (len(found) == 1 and targets == [None]):
        raise ValueError(f"{what} holds no vocals model (it has {targets}); the study scores vocals and the "
                         "accompaniment (the mixture minus the vocals)")
    if not residual:
        raise ValueError(f"{what}: vocals and accompaniment are scored as a pair and only its vocals model is used; "
                         "the accompaniment is the residual (evaluate.residual: true)")
    model = dict(found).get("vocals", found[0][1])
    rate = getattr(model, "sample_rate", None)
    if sample_rate is not None and rate is not None and float(rate) != float(sample_rate):
        raise ValueError(f"{what} separates at {float(rate):g} Hz, the test songs are at {float(sample_rate):g} Hz; "
                         "score it on a dataset at its rate (the profile's data.sample_rate)")
    separation = ModelSeparation((("vocals", str(path)),), int(niter), bool(softmask), bool(residual),
                                 None if wiener_win_len is None else int(wiener_win_len), device)
    settings = _model_settings("pretrained", {"vocals": model_fingerprint(path)}, {"vocals": str(path)},
                               separation, win, hop)
    return evaluate_separation(separation, method_name, tracks, eval_dir, settings, jobs, progress,
                     overwrite, win, hop, scorer)


def evaluate_oracle(
    name: str,
    tracks: Sequence[Any],
    eval_dir: str | os.PathLike,
    jobs: int | None = None,
    progress: bool = True,
    win: float = 1.0,
    hop: float = 1.0,
    overwrite: bool = False,
    scorer: str = "fast",
) -> list[Path]:
    """Score a reference method (MIX, IRM1, IRM2, IBM, MWF) on the test tracks, as SiSEC 2018.

    The estimates are sigsep-mus-oracle's (:mod:`melunmix.separation.oracles`: the four MUSDB18
    stems, SiSEC's fixed STFT), so the medians can be set beside SiSEC 2018's.

    Parameters
    ----------
    name : str
        Oracle name (:data:`melunmix.base.names.ORACLES`); also the method folder name.
    tracks : sequence of TrackInfo or musdb.MultiTrack
        The test tracks.
    eval_dir : path
        Scores go to ``<eval_dir>/<name>/test/<track>.json``.
    jobs : int, optional
        Worker processes (default: all cores); 1 runs in this process.
    progress : bool
        Show a progress bar over tracks.
    win, hop : float
        museval window and hop in seconds.
    overwrite : bool
        Delete the method's existing scores and score again.
    scorer : {"fast", "museval"}
        BSS Eval v4 implementation (:func:`melunmix.scoring.museval_scores.score_estimates`); the
        same numbers.

    Returns
    -------
    list of Path
        The JSON file of every track, in the order of ``tracks``.

    Raises
    ------
    ValueError
        An unknown oracle, a test track without all four stems (named with the missing
        files), scores of ``name`` in ``eval_dir`` made otherwise (e.g. by the earlier
        two-source oracles; pass ``overwrite=True``), and see
        :func:`melunmix.scoring.track_audio.load_track`.
    """
    check_oracle_name(name)
    separation = OracleSeparation(name)
    # "definition" tells these scores from those of the earlier two-source oracles on the
    # models' STFT, which are refused rather than mixed in.
    settings = {
        "kind": "oracle",
        "oracle": name,
        "definition": DEFINITION,
        "stft": {"nperseg": NPERSEG, "hop": HOP} if name != "MIX" else None,
        "museval": {"mode": "v4", "win": float(win), "hop": float(hop)},
    }
    return evaluate_separation(separation, name, tracks, eval_dir, settings, jobs, progress, overwrite, win, hop, scorer)


__all__ = [
    "SETTINGS_FILE", "check_model_files", "ModelSeparation", "OracleSeparation", "evaluate_model",
    "evaluate_oracle", "evaluate_pretrained", "evaluate_separation",
]
