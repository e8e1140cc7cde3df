"""Score separations of the test tracks with museval (BSS Eval v4), as SiSEC 2018 does.

For every test track a method's ``vocals`` and ``accompaniment`` estimates are scored as
a pair by :func:`museval.eval_mus_track` (1 s windows and hops, BSS Eval v4: one
time-invariant distortion filter per track) and museval's JSON is written to
``<eval_dir>/<method>/test/<track>.json``, the names and format that
``museval.EvalStore.add_eval_dir`` and ``museval.MethodStore.add_eval_dir`` read. The
methods are

- trained models (:func:`evaluate_model`): the test mixture separated by
  :func:`melunmix.separate.separate` (model, multichannel Wiener filter, residual
  accompaniment);
- reference methods (:func:`evaluate_oracle`): SiSEC 2018's MIX (the mixture over the
  number of stems) and oracle masks / Wiener filter from the four true stems
  (:mod:`melunmix.oracles`).

Tracks run in parallel in a process pool (``spawn`` workers with one torch and one BLAS
thread each; a serial run uses the same, so both give the same numbers; a script that
calls this with ``jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard). The
workers die with the process that started them, even when it is killed with ``kill -9``,
and Ctrl-C stops them at once. A track whose JSON exists is skipped, and each JSON is
written atomically, so an interrupted evaluation resumes where it stopped.
``<eval_dir>/<method>/evaluation.json`` records how the scores were made (model file
hashes, Wiener settings, museval windows); asking for the same method with other
settings is an error instead of a silent mix of old and new scores.

Aggregation and statistics are in :mod:`melunmix.stats` and re-exported here.

Example
-------
>>> from melunmix.datasets import find_tracks
>>> tracks = find_tracks(root, subset="test")
>>> evaluate_model({"vocals": "results/demo/models/openunmix/vocals.pt"}, tracks,
...                "results/demo/eval", "openunmix")
>>> evaluate_oracle("IRM2", tracks, "results/demo/eval")
>>> poster_table(load_scores("results/demo/eval"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import re
import shutil
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .files import atomic_path, read_json, sha256_file, write_json
from .oracles import DEFINITION, HOP, NPERSEG, ORACLES, SCORED_SOURCES, STEMS, check_oracle_name, oracle_estimates
from .stats import (  # noqa: F401  (re-exported: the evaluation API in one place)
    HALF_SUFFIX,
    METRICS,
    aggregate_seeds,
    bootstrap_ci,
    load_scores,
    paired_wilcoxon,
    poster_table,
    seed_method_name,
    split_seed,
    track_counts,
    track_table,
    write_tables,
)

#: BSS Eval v4 implementations that give museval's numbers (see :func:`score_estimates`).
SCORERS = ("fast", "museval")
#: museval's subset folder that its stores read (``<method>/test/*.json``).
SUBSET = "test"
#: File in ``<eval_dir>/<method>/`` recording the settings the scores were made with.
SETTINGS_FILE = "evaluation.json"

_METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


# --------------------------------------------------------------------------- tracks


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
        The MUSDB18 stems as read (:data:`melunmix.oracles.STEMS` that the track has;
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
        length than the mixture.
    """
    from .datasets.tracks import TrackInfo

    if isinstance(track, TrackInfo):
        return _load_trackinfo(track)
    if hasattr(track, "targets") and hasattr(track, "audio"):  # musdb.MultiTrack
        return _load_musdb_track(track)
    raise TypeError(
        f"cannot read a test track from {type(track).__name__}; pass TrackInfo objects from "
        "melunmix.datasets.find_tracks(root, subset='test') or tracks of musdb.DB"
    )


def _no_stem(name: str, where: Any, stem: str) -> ValueError:
    return ValueError(
        f"test track '{name}' ({where}) has no {stem} stem; scoring needs the true vocals and "
        "accompaniment (drums, bass, other) of every test track: use a MUSDB18-format test set "
        "with vocals.wav, drums.wav, bass.wav and other.wav per track"
    )


def _load_trackinfo(track) -> TrackAudio:
    from .datasets.reading import read_frames

    # TrackInfo.wav explains how to decode a .stem.mp4 track that has no WAV stems yet.
    mixture = read_frames(track.wav("mixture"), 0, None).astype(np.float64)
    if "vocals" not in track.stems:
        raise _no_stem(track.name, track.path, "vocals")
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
    # A track without some of drums / bass / other is still scored for models; the
    # oracles, defined on the four stems, refuse it (OracleSeparation).
    return TrackAudio(track.name, float(track.rate), mixture,
                      {"vocals": stems["vocals"], "accompaniment": accompaniment},
                      {stem: stems[stem] for stem in STEMS if stem in stems}, str(track.path))


def _load_musdb_track(track) -> TrackAudio:
    for target in SCORED_SOURCES:
        if target not in track.targets:
            raise _no_stem(track.name, getattr(track, "path", ""), target)
    mixture = np.asarray(track.audio, dtype=np.float64)
    stems = {stem: np.asarray(track.sources[stem].audio, dtype=np.float64) for stem in STEMS if stem in track.sources}
    references = {target: _musdb_target(track.targets[target], stems) for target in SCORED_SOURCES}
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


def _track_name(track: Any) -> str:
    name = getattr(track, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{track!r} is not a track (it has no name)")
    return name


# --------------------------------------------------------------------------- scoring


def _musdb_track(audio: TrackAudio):
    """An in-memory musdb track (what ``museval.eval_mus_track`` reads) holding ``audio``."""
    import musdb

    track = musdb.MultiTrack(path="", name=audio.name, subset=SUBSET, is_wav=True)
    track.rate = audio.rate
    track.sources, track.targets = {}, {}
    for target, reference in audio.references.items():
        source = musdb.Source(track, name=target, path="")
        source.audio = reference
        track.sources[target] = source
        track.targets[target] = musdb.Target(track, sources=[source], name=target)
    return track


def score_estimates(
    audio: TrackAudio,
    estimates: Mapping[str, np.ndarray],
    win: float = 1.0,
    hop: float = 1.0,
    source: str = "the estimates",
    scorer: str = "fast",
):
    """BSS Eval v4 scores of one track's vocals / accompaniment estimates, as museval gives them.

    Parameters
    ----------
    audio : TrackAudio
        The track (:func:`load_track`).
    estimates : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        ``"vocals"`` and ``"accompaniment"`` with exactly the mixture's shape; museval
        itself would silently pad or cut an estimate of another length.
    win, hop : float
        museval window and hop in seconds (SiSEC: 1 and 1).
    source : str
        What made the estimates (method, model files), named in error messages.
    scorer : {"fast", "museval"}
        ``"fast"``: :mod:`melunmix.bsseval`, museval's numbers to museval's own round-off
        (largest difference measured 3e-5 dB) about 17x faster per core and in ~0.1 GB;
        ``"museval"``: ``museval.eval_mus_track`` itself (the reference).

    Returns
    -------
    museval.TrackStore
        Frame-wise SDR, SIR, ISR, SAR (dB) of both targets; ``.json`` is museval's file.

    Raises
    ------
    ValueError
        A missing target, an estimate of the wrong shape, or NaN / infinite samples.
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}")
    for target in SCORED_SOURCES:
        if target not in estimates:
            raise ValueError(
                f"{source} give no {target!r} estimate for track '{audio.name}' (got {sorted(estimates)}); "
                "vocals and accompaniment are scored as a pair: separate with residual=True or "
                "provide an accompaniment model"
            )
    checked = {}
    for target in SCORED_SOURCES:
        estimate = np.asarray(estimates[target])
        if estimate.shape != audio.mixture.shape:
            raise ValueError(
                f"{source}: the {target} estimate of track '{audio.name}' has shape {estimate.shape}, "
                f"expected the mixture's (nb_samples, nb_channels) = {audio.mixture.shape}; an "
                "estimate must have the input's exact length and channels"
            )
        if not np.all(np.isfinite(estimate)):
            raise ValueError(
                f"{source}: the {target} estimate of track '{audio.name}' has NaN or infinite "
                "samples; the model's output is not finite (diverged training or a corrupt "
                "model file): retrain or check the model file"
            )
        checked[target] = estimate.astype(np.float64, copy=False)
    with warnings.catch_warnings():
        # Silent windows (e.g. vocals that rest) give log10(0) inside bss_eval; museval
        # turns them into NaN frames, which the aggregation skips, as in SiSEC.
        warnings.simplefilter("ignore", RuntimeWarning)
        if scorer == "fast":
            from .bsseval import track_store

            store = track_store(audio.references, checked, audio.rate, win, hop, track_name=audio.name)
        else:
            import museval

            store = museval.eval_mus_track(_musdb_track(audio), checked, output_dir=None, mode="v4",
                                           win=win, hop=hop)
    store.validate()
    return store


def track_json_path(eval_dir: str | os.PathLike, method: str, track_name: str, subset: str = SUBSET) -> Path:
    """``<eval_dir>/<method>/test/<track_name>.json``, museval's layout."""
    return Path(eval_dir) / method / subset / f"{track_name}.json"


def write_track_scores(store, path: str | os.PathLike) -> Path:
    """Write a ``museval.TrackStore`` as museval's JSON, atomically."""
    # Empty suffix: the temporary name must not end in .json, or museval's glob of an
    # interrupted run would read a half-written file as a track.
    with atomic_path(path, suffix="") as tmp:
        tmp.write_text(store.json)
    return Path(path)


def is_scored(path: str | os.PathLike) -> bool:
    """True if ``path`` is a complete museval JSON with vocals and accompaniment frames."""
    import simplejson

    path = Path(path)
    if not path.is_file():
        return False
    try:
        data = simplejson.loads(path.read_text(), allow_nan=True)
        targets = {t["name"]: t["frames"] for t in data["targets"]}
    except (ValueError, KeyError, TypeError):
        return False
    return all(isinstance(targets.get(t), list) and targets[t] for t in SCORED_SOURCES)


# --------------------------------------------------------------------------- separations


@dataclass(frozen=True)
class ModelSeparation:
    """A trained model's separation of a track (picklable: worker processes rebuild it).

    Attributes
    ----------
    model_paths : tuple of (str, str)
        ``(target, model file)`` pairs.
    niter, softmask, residual, wiener_win_len, device
        As :func:`melunmix.separate.separate`.
    """

    model_paths: tuple[tuple[str, str], ...]
    niter: int = 1
    softmask: bool = False
    residual: bool = True
    wiener_win_len: int | None = 300
    device: str | None = None

    def describe(self) -> str:
        return "models " + ", ".join(f"{t}={p}" for t, p in self.model_paths)

    def __call__(self, audio: TrackAudio) -> dict[str, np.ndarray]:
        from .separate import separate

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
    """An oracle's (or MIX's) separation of a track, as SiSEC 2018 (see :mod:`melunmix.oracles`).

    Picklable: worker processes get it. Its STFT is SiSEC's, fixed (no settings).
    """

    name: str

    def describe(self) -> str:
        return f"oracle {self.name}"

    def __call__(self, audio: TrackAudio) -> dict[str, np.ndarray]:
        missing = [stem for stem in STEMS if stem not in audio.stems]
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
    from .devices import resolve_device
    from .models import load_model

    key = tuple(
        (target, path, os.stat(path).st_size, os.stat(path).st_mtime_ns, separation.device)
        for target, path in separation.model_paths
    )
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        device = resolve_device(separation.device)  # where separate() runs them
        _MODEL_CACHE[key] = {target: load_model(path, map_location=device)
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
        Target name -> model file (from :func:`melunmix.models.save_model`).
    expected_model : str, optional
        Model name the files must hold (``"openunmix"``, ``"melunmix"`` or an alias).
    n_fft, n_hop, sample_rate : optional
        STFT settings and rate the files must have been trained with (the profile's).

    Returns
    -------
    dict of str to dict
        Target -> :func:`melunmix.models.load_model_info` of its file.

    Raises
    ------
    FileNotFoundError
        A missing file.
    ValueError
        An unreadable file, another model's file (other class, or saved for another
        target), or STFT settings / sample rate that differ between the files or from
        the expected ones.
    """
    from .models import MODELS, canonical_model_name, load_model_info

    if not model_paths:
        raise ValueError("model_paths is empty; pass {'vocals': <model file>}")
    expected_class, expected_fixed = None, {}
    if expected_model is not None:
        cls, expected_fixed = MODELS[canonical_model_name(expected_model)]
        expected_class = cls.__name__.lower()
    infos, first = {}, None
    for target, path in model_paths.items():
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"model file for target {target!r} not found: {path}; train the model first "
                "(melunmix.train) or fix the path"
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


def _init_worker(parent_pid: int) -> None:
    """Initializer of the scoring pool's workers.

    A worker dies with the process that started the pool, however that process ends
    (``kill -9`` included: :func:`melunmix.processes.die_with_parent`), so no idle worker
    is left behind. Ctrl-C is the parent's to handle (it stops the workers, see
    :func:`_stop_workers`), so the workers ignore SIGINT: an interrupt sent to the whole
    process group (a terminal, a Jupyter kernel interrupt) gives no traceback per worker.
    """
    from .processes import die_with_parent

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads()


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start processes with SIGINT ignored from their first instruction (main thread only).

    An ignored SIGINT is inherited through fork and exec and Python keeps it ignored, so
    a Ctrl-C that reaches a worker while it is still importing (before its initializer
    runs) does not print a traceback either. A SIGINT that arrives in this process during
    these few milliseconds is lost.
    """
    import threading

    # Outside the main thread signals cannot be set; a handler installed from C cannot be
    # put back (getsignal gives None): leave those alone.
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (Ctrl-C, SystemExit): a running track is redone on rerun."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


def _limit_threads() -> None:
    """One torch thread and one BLAS/OpenMP thread: what every track is scored with.

    With as many workers as cores, multi-threaded pools in every worker would
    oversubscribe the cores (museval's time goes into numpy's linear solves), and a
    LAPACK solve can round differently with another thread count, so the serial run uses
    the workers' setting too: scores do not depend on ``jobs``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


@contextlib.contextmanager
def _serial_threads() -> Iterator[None]:
    """:func:`_limit_threads` for the duration of a serial run in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def _nb_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _check_method_name(method: str) -> str:
    if not isinstance(method, str) or not _METHOD_NAME.fullmatch(method):
        raise ValueError(
            f"method name {method!r} must start with a letter or digit and hold only letters, "
            "digits and . _ + - (it names a folder and museval's method)"
        )
    return method


def _prepare_method_dir(method_dir: Path, settings: dict, overwrite: bool, subset: str = SUBSET) -> None:
    """Record the settings; refuse (or, with ``overwrite``, delete) scores made otherwise."""
    settings_path = method_dir / SETTINGS_FILE
    previous = read_json(settings_path) if settings_path.is_file() else None
    # The scorer is left out: both give museval's numbers (to 1e-4 dB), so switching
    # scorers continues a folder instead of rescoring it.
    ignored = ("files", "scorer")
    comparable = {k: v for k, v in settings.items() if k not in ignored}
    stale = previous is not None and {k: v for k, v in previous.items() if k not in ignored} != comparable
    if stale and not overwrite:
        changed = sorted(k for k in comparable if previous.get(k) != comparable[k])
        raise ValueError(
            f"{method_dir} holds scores made with other settings ({', '.join(changed)} differ, see "
            f"{settings_path}); pass overwrite=True to rescore, or use another method name"
        )
    if overwrite or stale:
        shutil.rmtree(method_dir / subset, ignore_errors=True)
    write_json(settings_path, settings)


def _decode_stem_tracks(todo: list[_TrackJob], progress: bool) -> None:
    """Give ``.stem.mp4`` TrackInfo jobs WAV stems (decoded once into the dataset's cache)."""
    from .datasets.tracks import TrackInfo

    undecoded = [i for i, job in enumerate(todo) if isinstance(job.track, TrackInfo) and not job.track.stems]
    if not undecoded:
        return
    from .datasets import prepare_tracks

    decoded = prepare_tracks([todo[i].track for i in undecoded], progress=progress)
    for i, track in zip(undecoded, decoded):
        todo[i] = dataclasses.replace(todo[i], track=track)


def _evaluate(
    separation, method: str, tracks: Sequence[Any], eval_dir, settings: dict,
    jobs: int | None, progress: bool, overwrite: bool, win: float, hop: float, scorer: str = "fast",
    subset: str = SUBSET,
) -> list[Path]:
    from tqdm import tqdm

    _check_method_name(method)
    tracks = list(tracks)
    if not tracks:
        raise ValueError("no test tracks to evaluate (tracks is empty)")
    names = [_track_name(t) for t in tracks]
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
    _prepare_method_dir(method_dir, settings, overwrite, subset)
    paths = [track_json_path(eval_dir, method, name, subset) for name in names]
    todo = [
        _TrackJob(track, name, path, separation, float(win), float(hop), scorer)
        for track, name, path in zip(tracks, names, paths)
        if not is_scored(path)
    ]
    _decode_stem_tracks(todo, progress)
    nb_workers = min(int(jobs or _nb_cores()), len(todo))
    bar = tqdm(total=len(tracks), initial=len(tracks) - len(todo), desc=f"evaluate {method}",
               unit="track", disable=not progress)
    try:
        if nb_workers <= 1:
            with _serial_threads():
                for job in todo:
                    _score_track(job)
                    bar.update()
        else:
            # spawn: a forked child of a process that already ran torch's OpenMP pool can
            # hang, and CUDA cannot be used after fork.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(nb_workers, mp_context=context, initializer=_init_worker,
                                     initargs=(os.getpid(),)) as pool:
                with _workers_ignore_sigint():  # submit starts the workers
                    futures = [pool.submit(_score_track, job) for job in todo]
                try:
                    for future in as_completed(futures):
                        future.result()
                        bar.update()
                except BaseException as err:
                    for future in futures:
                        future.cancel()
                    if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: stop now
                        _stop_workers(pool)
                    raise
    finally:
        bar.close()
        _MODEL_CACHE.clear()
    return paths


def evaluate_model(
    model_paths: Mapping[str, str | os.PathLike],
    tracks: Sequence[Any],
    eval_dir: str | os.PathLike,
    method_name: str,
    niter: int = 1,
    softmask: bool = False,
    residual: bool = True,
    wiener_win_len: int | None = 300,
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
        Wiener filter settings of :func:`melunmix.separate.separate` (the profile's
        ``evaluate`` section).
    jobs : int, optional
        Worker processes (default: all cores); 1 runs in this process. Scores do not
        depend on it.
    progress : bool
        Show a progress bar over tracks.
    device : str, optional
        Torch device for the models (default: CUDA when present, else CPU;
        :func:`melunmix.devices.resolve_device`).
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
        BSS Eval v4 implementation (:func:`score_estimates`); the same numbers.

    Returns
    -------
    list of Path
        The JSON file of every track, in the order of ``tracks``.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`check_model_files`, :func:`load_track`, :func:`score_estimates`; the
        message names the file or the track.

    Notes
    -----
    With ``scorer="museval"``, scoring dominates time and memory: about 2.5 GB and 20-40 s
    of one core per 2-minute stereo track at 44.1 kHz, per worker; the fast scorer needs
    about 0.1 GB beyond the audio and 1.5 s for such a track, so separation dominates.
    """
    from .models import MODEL_ALIASES

    _check_method_name(method_name)
    # "<model>-half[-seed<N>]" holds the half-training weights of <model>.
    base = split_seed(method_name)[0].removesuffix(HALF_SUFFIX)
    if expected_model is None and base.lower() in MODEL_ALIASES:
        expected_model = base
    check_model_files(model_paths, expected_model, n_fft, n_hop, sample_rate)
    missing = [t for t in SCORED_SOURCES if t not in model_paths]
    if missing and not (residual and missing == ["accompaniment"]):
        raise ValueError(
            f"method {method_name!r} has models for {sorted(model_paths)} but vocals and accompaniment are "
            "scored as a pair: pass a vocals model, and an accompaniment model or residual=True"
        )
    resolved = tuple((target, str(Path(path).resolve())) for target, path in model_paths.items())
    separation = ModelSeparation(resolved, int(niter), bool(softmask), bool(residual),
                                 None if wiener_win_len is None else int(wiener_win_len), device)
    settings = {
        "kind": "model",
        "models": {target: sha256_file(path) for target, path in resolved},
        "separation": {"niter": int(niter), "softmask": bool(softmask), "residual": bool(residual),
                       "wiener_win_len": separation.wiener_win_len},
        "museval": {"mode": "v4", "win": float(win), "hop": float(hop)},
        "files": dict(resolved),
    }
    return _evaluate(separation, method_name, tracks, eval_dir, settings, jobs, progress,
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

    The estimates are sigsep-mus-oracle's (:mod:`melunmix.oracles`: the four MUSDB18
    stems, SiSEC's fixed STFT), so the medians can be set beside SiSEC 2018's.

    Parameters
    ----------
    name : str
        Oracle name (:data:`melunmix.oracles.ORACLES`); also the method folder name.
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
        BSS Eval v4 implementation (:func:`score_estimates`); the same numbers.

    Returns
    -------
    list of Path
        The JSON file of every track, in the order of ``tracks``.

    Raises
    ------
    ValueError
        An unknown oracle, a test track without all four stems (named with the missing
        files), scores of ``name`` in ``eval_dir`` made otherwise (e.g. by the earlier
        two-source oracles; pass ``overwrite=True``), and see :func:`load_track`.
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
    return _evaluate(separation, name, tracks, eval_dir, settings, jobs, progress, overwrite, win, hop, scorer)


__all__ = [
    "ORACLES", "SCORED_SOURCES", "METRICS", "TrackAudio", "load_track", "score_estimates",
    "track_json_path", "write_track_scores", "is_scored", "check_model_files",
    "ModelSeparation", "OracleSeparation", "evaluate_model", "evaluate_oracle",
    "load_scores", "poster_table", "track_table", "paired_wilcoxon", "bootstrap_ci",
    "aggregate_seeds", "track_counts", "write_tables", "seed_method_name", "split_seed",
]
