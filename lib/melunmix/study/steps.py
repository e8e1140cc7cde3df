"""The study's steps as functions: what each notebook calls, so notebooks stay thin.

A notebook's set-up cell calls :func:`notebook_display` (tables, figures, warnings) and
opens its run with :func:`open_run` (profile + data root + results folder), then calls
one or two functions of this module or of the engine (``train``, ``tune``,
``evaluate``, ``stats``, ``plots``, ``report``) and displays what they return. Every
function reads what earlier steps saved under ``results/<profile>/`` and skips finished
work, so a notebook can be rerun at any time.

A whole profile's training and tuning, as ``melunmix train`` (also under ``torchrun``) and
``melunmix tune`` run them, are :func:`train_profile` and :func:`tune_profile`: they know
profiles and runs, so they live here and the engine (``train``, ``tune``) never imports
this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import __version__
from ..scoring import evaluate
from ..analysis import stats
from ..base.config import RunPaths, Settings, home_dir, load_profile, run_paths
from ..scoring.evaluate import check_method_name
from ..base.files import atomic_path, describe_holder, lock_holder, read_json
from ..base.names import (HALF_SUFFIX, HISTORY_CSV_NAME, HISTORY_JSON_NAME, STEMS, canonical_method,
                          canonical_model_name, method_label, seed_method_name, split_seed)
from ..base.provenance import git_commit
from .report import loss_summary, matched_steps, stop_reason

if TYPE_CHECKING:  # only for the annotations: train and tune are imported when called
    from ..training.train import TrainResult
    from ..training.tune import TuneResult

#: Folder (under the run folder) of the audio excerpts that notebook 06 plots.
EXAMPLES_DIR = "examples"

#: Environment variable giving the resolution (dots per inch) of the figures a notebook
#: shows inline. ``scripts/refresh_notebooks.py`` sets it to :data:`COMMITTED_INLINE_DPI`
#: so that the committed notebooks stay small; interactive sessions and ``melunmix
#: reproduce`` keep matplotlib's own resolution. The PNG files under ``figures/`` always
#: keep :data:`melunmix.analysis.plots.DEFAULT_DPI`.
INLINE_DPI_ENV = "MELUNMIX_INLINE_DPI"
#: The inline resolution of the committed notebooks.
COMMITTED_INLINE_DPI = 72  # a screen's normal resolution: the metric table's numbers stay readable
#: pandas' display options in the notebooks (their tables are compared as text by nbval).
PANDAS_OPTIONS = {"display.width": 160, "display.max_columns": 20}


def notebook_display(inline_dpi: int | None = None) -> None:
    """How the study's notebooks show things: the set-up cell's one call.

    Sets pandas' display width and column count (:data:`PANDAS_OPTIONS`), ignores the
    ``UserWarning`` s that museval, musdb and stempeg print on every track, and, inside a
    Jupyter kernel with the inline backend (``%matplotlib inline``), draws inline figures
    at ``inline_dpi`` dots per inch; the figures saved under ``figures/`` keep their own
    resolution, and a figure's size (its ``<Figure size WxH>`` text) does not change.

    Parameters
    ----------
    inline_dpi : int, optional
        Resolution of the inline PNGs; default ``$MELUNMIX_INLINE_DPI`` when set (the
        committed copies), otherwise matplotlib's figure resolution.
    """
    import warnings

    for option, value in PANDAS_OPTIONS.items():
        pd.set_option(option, value)
    warnings.filterwarnings("ignore", category=UserWarning, module="museval|musdb|stempeg")
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:  # no IPython: nothing is shown inline
        return
    if inline_dpi is None:
        value = os.environ.get(INLINE_DPI_ENV, "").strip()
        if not value:
            return
        try:
            inline_dpi = int(value)
        except ValueError:
            raise ValueError(f"{INLINE_DPI_ENV}={value!r} is not a whole number of dots per inch") from None
    backend = InlineBackend.instance()
    # Updates the PNG formatter of the running shell (when %matplotlib inline set it up)
    # and is kept for a later %matplotlib inline.
    backend.print_figure_kwargs = {**backend.print_figure_kwargs, "dpi": int(inline_dpi)}


@dataclass
class Run:
    """One run of the study: its settings, its folders and its dataset root.

    ``stand_in`` is True when a MUSDB18 profile runs on the generated dataset because the
    user asked for it (``--stand-in``): every output must say so.
    """

    settings: Settings
    paths: RunPaths
    data_root: Path
    stand_in: bool = False

    def describe(self) -> str:
        from ..datasets.roots import is_generated_root  # the data layer (torch) only when a run is described

        s = self.settings
        origin = "generated" if is_generated_root(self.data_root) else "user-provided"
        if self.stand_in:
            origin = "generated STAND-IN for MUSDB18: these numbers are not MUSDB18's"
        commit = git_commit()
        lines = [
            f"profile {s.name!r}: {s.description}",
            f"data: {self.data_root.name} ({origin})",
            f"STFT n_fft={s.stft.n_fft} hop={s.stft.n_hop} at {s.data.sample_rate:g} Hz; "
            f"models {', '.join(s.train.models)} (hidden {s.model.hidden_size}); "
            f"{s.train.epochs} epochs, seeds {s.train.seeds}",
            f"code: melunmix {__version__}" + (f", commit {commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}"
                                               if commit else ""),
            f"results: {_shown_path(self.paths.root)}",
        ]
        if s.name == "smoke":  # what the committed notebooks show
            lines.append("These outputs are the smoke profile's: a check that every step runs, on tiny data and "
                         "models; its numbers mean nothing. The study's results: results/study/REPORT.md; the "
                         "demo's: results/demo/REPORT.md.")
        return "\n".join(lines)


def _shown_path(path: Path) -> str:
    """``path`` relative to the checkout (:func:`melunmix.base.config.home_dir`) when inside it: what
    a notebook prints names no machine's folders."""

    try:
        return str(Path(path).resolve().relative_to(home_dir().resolve()))
    except ValueError:
        return str(path)


def open_run(
    profile: str = "smoke",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
    stand_in: bool = False,
    device: str | None = None,
) -> Run:
    """Load a profile and make sure its dataset exists (the built-in one is generated once).

    Parameters
    ----------
    profile : str
        Profile name (one shipped with the package: smoke, demo, study, poster, umx) or
        YAML path.
    data_root : path, optional
        MUSDB18 / MUSDB18-HQ root; overrides the profile, ``$MUSDB_ROOT`` and ``$MUSDB_PATH``.
    results_dir : path, optional
        Parent of the run folder (default :func:`melunmix.base.config.results_root`: ``results/``
        of the source checkout).
    stand_in : bool
        Run a MUSDB18 profile (``data.needs_musdb``) on the generated dataset when no
        MUSDB18 root is given; without it such a run is refused.
    device : str, optional
        Overrides the profile's ``train.device`` (``cpu``, ``cuda``, ``cuda:N``); default
        ``$MELUNMIX_DEVICE`` when set (``melunmix reproduce --device``), else the profile's.

    Any folder in the MUSDB18 layout is a root (:func:`melunmix.datasets.check_root`):
    it needs songs in ``test/`` at the profile's ``data.sample_rate``; ``train/`` is needed
    by the steps that train (a validation split is derived when the setup file's songs
    are not there).

    Raises
    ------
    FileNotFoundError, ValueError
        A MUSDB18 profile without a MUSDB18 root and without ``stand_in`` (one line that
        says how to give the root); a root the study cannot use (one line naming it and
        the fix).
    """
    from .. import datasets  # the data layer (torch) only when a notebook step reads data

    from ..base.devices import device_overrides  # torch only when a step runs on a device

    overrides = {"data": {"root": str(data_root)}} if data_root else {}
    overrides.update(device_overrides(device) or {})
    settings = load_profile(profile, overrides=overrides or None)
    paths = run_paths(settings, results_dir)
    _warn_if_in_use(paths)
    progress = settings.train.progress if progress is None else progress
    resolved = datasets.resolve_data_root(settings.data.root, settings.data.generated)
    is_stand_in = datasets.check_study_root(resolved, settings.name, settings.data.needs_musdb, bool(stand_in))
    root = datasets.ensure_dataset(settings.data.root, generated=settings.data.generated, progress=progress)
    data = settings.data
    datasets.check_root(root, data.sample_rate, needs_train=False, valid_tracks=data.valid_tracks,
                        is_wav=data.is_wav, profile=settings.name)
    check_external_models(settings)  # a wrong name or path stops notebook 01, not 05 hours later
    return Run(settings, paths, Path(root), stand_in=is_stand_in)


def check_external_models(settings: Settings) -> dict[str, Path]:
    """The models trained elsewhere that ``evaluate.models`` names, checked before any work.

    Returns
    -------
    dict of str to Path
        Name -> absolute path (a relative path is taken from the checkout,
        :func:`melunmix.base.config.home_dir`, where ``make`` and the notebooks' kernels agree).

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        A name the tables would read as one of the study's methods: a model or its alias
        (``umx`` is Open-Unmix, the baseline), an oracle or MIX, a seed or half-training
        suffix; or a name that cannot name a folder.
    """
    found = {}
    for name, path in settings.evaluate.models.items():
        where = f"evaluate.models: {name!r}"
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where} needs the path of a model file or folder, got {path!r}")
        try:
            check_method_name(name)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        taken = canonical_method(name)
        if taken is not None or split_seed(name)[1] is not None or name.lower().endswith(HALF_SUFFIX):
            reads_as = f" (the tables would read it as {taken!r})" if taken else ""
            raise ValueError(f"{where} is a name of the study's own methods{reads_as}: a model, its alias, an "
                             "oracle, MIX, or a seed or -half suffix; give it its own name, e.g. 'umxhq-published'")
        resolved = Path(path).expanduser()
        resolved = (resolved if resolved.is_absolute() else home_dir() / resolved).resolve()
        if not resolved.exists():
            raise FileNotFoundError(f"{where}: {resolved} does not exist; give the path of a model file or folder "
                                    "(a relative path is taken from the checkout)")
        found[name] = resolved
    return found


def _warn_if_in_use(paths: RunPaths) -> None:
    """Warn when a ``melunmix reproduce`` run other than this kernel's own writes the folder.

    Only a warning: a notebook may just read results, and a lock held by a notebook
    kernel would keep every ``reproduce`` out for as long as the kernel lives. Under
    ``reproduce`` the lock holder is the kernel's parent, which is not warned about.
    """
    import socket
    import warnings


    holder = lock_holder(paths.lock)
    if holder is None or (holder.get("pid") == os.getppid() and holder.get("host") == socket.gethostname()):
        return
    warnings.warn(
        f"{paths.root} is being written by a running `melunmix reproduce` ({describe_holder(holder)}); "
        "what this notebook writes there can clash with it: wait for it to finish or use another results_dir",
        UserWarning, stacklevel=3,
    )


def tracks(run: Run, subset: str = "train", split: str | None = None, decoded: bool = True):
    """The run's tracks of one subset/split, WAV-backed (``.stem.mp4`` decoded once) when ``decoded``.

    For the test subset, ``settings.data.nb_test_tracks`` limits the number of tracks.
    Every track is at ``settings.data.sample_rate``, the rate training uses: songs at
    another rate are refused (:func:`melunmix.datasets.check_sample_rate` says why).
    """
    from .. import datasets  # the data layer (torch) only when a notebook step reads data

    data = run.settings.data
    found = datasets.find_tracks(run.data_root, subset, split=split, is_wav=data.is_wav,
                                 valid_tracks=data.valid_tracks)
    if subset == "test" and data.nb_test_tracks:
        found = found[: data.nb_test_tracks]
    datasets.check_sample_rate(found, data.sample_rate, run.settings.name)
    if decoded:
        found = datasets.prepare_tracks(found, progress=run.settings.train.progress)
    return found


def _rms_db(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-10))


def dataset_table(run: Run, active_threshold_db: float = -50.0) -> pd.DataFrame:
    """One row per track: subset, split, duration (s), stem loudness (RMS dBFS), vocal activity.

    ``vocals_active`` is the fraction of 1 s windows whose vocals RMS exceeds
    ``active_threshold_db`` dBFS: museval scores silent windows as NaN, so this tells how
    much of a track the vocal scores describe.
    """
    import soundfile as sf

    rows = []
    for subset in ("train", "test"):
        for track in tracks(run, subset):
            row = {"track": track.name, "subset": subset, "split": track.split or "test",
                   "duration_s": round(track.nb_samples / track.rate, 2)}
            for stem in STEMS:
                audio, rate = sf.read(track.stems[stem], dtype="float32", always_2d=True)
                row[f"{stem}_db"] = round(_rms_db(audio), 2)
                if stem == "vocals":
                    win = int(rate)
                    nb_windows = max(1, len(audio) // win)
                    windows = audio[: nb_windows * win].reshape(nb_windows, win, -1)
                    active = [_rms_db(w) > active_threshold_db for w in windows]
                    row["vocals_active"] = round(float(np.mean(active)), 3)
            rows.append(row)
    return pd.DataFrame(rows)


def load_excerpt(track, start: float = 0.0, duration: float | None = 10.0,
                 stems=("mixture", "vocals")) -> dict[str, np.ndarray]:
    """Stems of a WAV-backed track as ``(nb_channels, nb_samples)`` float32 arrays.

    Parameters
    ----------
    start, duration : float
        Seconds; ``duration=None`` reads to the end.
    """
    from ..datasets import read_chunk  # the data layer (torch) only when a notebook step reads data

    first = int(round(start * track.rate))
    nb = track.nb_samples - first if duration is None else min(int(round(duration * track.rate)), track.nb_samples - first)
    if first < 0 or nb <= 0:
        raise ValueError(f"excerpt start={start} s, duration={duration} s is outside track {track.name!r} "
                         f"({track.nb_samples / track.rate:.1f} s)")
    return {stem: read_chunk(track.stems[stem], first, nb) for stem in stems}


#: Audio players in notebooks: mono, this rate and at most this many seconds, so that the
#: committed notebooks stay small (a player is base64 WAV inside the notebook file).
PREVIEW_RATE = 16000
PREVIEW_SECONDS = 6.0


def audio_player(audio: np.ndarray, rate: float, seconds: float = PREVIEW_SECONDS,
                 preview_rate: int = PREVIEW_RATE):
    """An IPython audio player of a short, mono, low-rate copy of ``audio`` (channels, samples).

    The first ``seconds`` of the channel average, resampled with soxr to ``preview_rate``.
    The figures and files are made from the full audio; only what the notebook embeds is
    reduced.
    """
    import soxr
    from IPython.display import Audio

    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    mono = mono[: int(round(seconds * rate))]
    return Audio(soxr.resample(mono, float(rate), float(preview_rate)), rate=int(preview_rate))


def saved_figure(path: str | os.PathLike):
    """A figure that shows a PNG saved by an earlier step, at its own size, without redrawing it.

    For a notebook that shows a figure another notebook drew and saved (06 shows 04's
    loss curves): the inline backend displays it as any figure, at the notebook's inline
    resolution (:func:`notebook_display`).

    Parameters
    ----------
    path : path-like
        A PNG under ``figures/``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes filling the figure, without ticks; the figure's size in inches is the
        image's pixels over the resolution the PNG records (else
        :data:`melunmix.analysis.plots.DEFAULT_DPI`).

    Raises
    ------
    FileNotFoundError
        No such file (one line: run the step that draws it first).
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..analysis.plots import DEFAULT_DPI  # matplotlib only when drawing

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the notebook that draws it first")
    with Image.open(path) as image:
        dpi = round(float(image.info.get("dpi", (DEFAULT_DPI,))[0])) or DEFAULT_DPI  # PNG stores dots per metre
        pixels = np.asarray(image.convert("RGBA"))
    height, width = pixels.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(pixels, interpolation="antialiased")
    ax.set_axis_off()
    return fig


def feature_transforms(settings: Settings) -> dict:
    """The torch modules of the three representations the poster compares, at the profile's STFT."""
    from ..dsp.features import MFCC, STFT, LogMelSpectrogram  # torch only for notebook 02's features

    sr, n_fft = settings.data.sample_rate, settings.stft.n_fft
    return {
        "stft": STFT(n_fft, settings.stft.n_hop),
        "mel": LogMelSpectrogram(sr, n_fft, n_mels=settings.model.n_mels),
        "mfcc": MFCC(sr, n_fft, n_mfcc=settings.model.n_mfcc, n_mels=settings.model.n_mels),
    }


def feature_table(audio: np.ndarray, settings: Settings, repeats: int = 5) -> pd.DataFrame:
    """Shape of each representation of ``audio`` (channels, samples) and its cost.

    Returns a table with the feature, its output shape (channels, bands, frames) and the
    median time in ms per second of audio over ``repeats`` runs (CPU, one excerpt).
    """
    import torch

    from ..dsp.features import magnitude  # torch only for notebook 02's features

    modules = feature_transforms(settings)
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))[None]
    seconds = x.shape[-1] / settings.data.sample_rate
    rows = []
    with torch.no_grad():
        for name, fn in (("stft", lambda: magnitude(modules["stft"](x))),
                         ("mel", lambda: modules["mel"](magnitude(modules["stft"](x)))),
                         ("mfcc", lambda: modules["mfcc"](magnitude(modules["stft"](x))))):
            out = fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            rows.append({"feature": name, "shape": tuple(out.shape[1:]), "bands": out.shape[-2],
                         "frames": out.shape[-1], "ms_per_s": 1000 * float(np.median(times)) / seconds})
    return pd.DataFrame(rows)


@dataclass
class ModelRun:
    """One trained model of the study: which model, which seed, where, and its method name.

    ``half`` marks the weights of the same run at half training (best up to epoch
    ``epochs // 2``), scored as their own method ``<model>-half[-seed<N>]`` for the
    "more epochs" comparison.
    """

    model: str
    seed: int
    out_dir: Path
    method: str
    target: str = "vocals"
    half: bool = False

    @property
    def weights(self) -> Path:
        # training only when called: `melunmix` commands and notebooks stay light
        from ..training.train import half_weights_name, weights_name

        return self.out_dir / (half_weights_name(self.target) if self.half else weights_name(self.target))


def model_runs(run: Run, half: bool = False) -> list[ModelRun]:
    """Every (model, seed) of the profile, with folder and evaluation method name.

    With one seed a model's method is its name (``openunmix``); with several,
    ``openunmix-seed42`` etc., and the tables report mean and spread across seeds.
    ``half=True`` adds, after them, the half-training weights of each (``openunmix-half``,
    ``openunmix-half-seed42``).
    """

    seeds = list(run.settings.train.seeds)
    several = len(seeds) > 1
    target = str(run.settings.data.targets[0])
    out = []
    for is_half in ((False, True) if half else (False,)):
        for model in run.settings.train.models:
            name = canonical_model_name(model)
            label = name + (HALF_SUFFIX if is_half else "")
            for seed in seeds:
                out.append(ModelRun(name, int(seed), run.paths.model_dir(name, seed if several else None),
                                    seed_method_name(label, seed) if several else label, target, is_half))
    return out


def train_models(run: Run, data=None) -> dict:
    """Train (or resume, or reuse) every model and seed of the profile; method -> TrainResult."""
    # training only when called: `melunmix` commands and notebooks stay light
    from ..training.side_by_side import RunSpec, train_side_by_side
    from ..training.train import prepare_data  # training only when called: `melunmix` commands and notebooks stay light

    if data is None:
        data = prepare_data(run.settings, run.data_root, stats_dir=run.paths.features)
    specs = [RunSpec(item.method, item.model, item.seed, item.out_dir) for item in model_runs(run)]
    return train_side_by_side(specs, run.settings, data, tuning_dir=run.paths.tuning,
                              progress=run.settings.train.progress)


# --------------------------------------------------------------------------- a profile's runs (melunmix train, tune)
def train_profile(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    stand_in: bool = False,
    progress: bool | None = None,
    device: str | None = None,
) -> dict[str, TrainResult]:
    """Train a profile's models and seeds (what notebook 04 trains), in one or several processes.

    Started by ``torchrun`` (``torchrun --nproc_per_node N -m melunmix.training.train --profile X``),
    every process runs this function: it joins the process group
    (:func:`melunmix.training.distributed.init_from_environment`: NCCL on GPUs, gloo on CPUs), rank
    0 prepares the data first (dataset, caches, statistics) and the others then read it,
    and each run of :func:`melunmix.training.train.train` is data parallel. Without ``torchrun`` it
    is one process. Finished runs are skipped and interrupted ones resume from their
    checkpoint, with any number of processes.

    Parameters
    ----------
    profile : str
        Profile name or YAML path.
    data_root, results_dir, stand_in
        As :func:`open_run`.
    models : list of str, optional
        Train only these models of the profile (default: all of ``train.models``).
    seeds : list of int, optional
        Train only these seeds of the profile (default: all of ``train.seeds``).
    progress : bool, optional
        Progress bars (rank 0 only); default ``settings.train.progress``.
    device : str, optional
        Overrides the profile's ``train.device`` (as :func:`open_run`).

    Returns
    -------
    dict of str to TrainResult
        By evaluation method name (``openunmix``, ``melunmix-seed42``, ...).

    Raises
    ------
    ValueError
        A model or seed the profile does not train (the message lists those it does), and
        see :func:`open_run`.
    """
    import torch

    from ..training import distributed  # torch.distributed only when training
    # training only when called: `melunmix` commands and notebooks stay light
    from ..training.side_by_side import RunSpec, train_side_by_side
    from ..training.train import prepare_data, train  # training only when called: `melunmix` commands and notebooks stay light

    from ..base.devices import device_overrides  # torch only when a step runs on a device

    # Bad arguments fail in every process before any joins the group.
    settings = load_profile(profile, overrides=device_overrides(device))
    known_models = [canonical_model_name(m) for m in settings.train.models]
    wanted_models = None if not models else [canonical_model_name(m) for m in models]
    unknown = [m for m in wanted_models or [] if m not in known_models]
    unknown_seeds = [s for s in seeds or [] if int(s) not in [int(x) for x in settings.train.seeds]]
    if unknown or unknown_seeds:
        raise ValueError(
            f"profile {settings.name!r} trains models {known_models} with seeds {list(settings.train.seeds)}; "
            f"{unknown + unknown_seeds} not among them (add them to the profile's train.models / train.seeds)"
        )
    joined = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ranks = distributed.init_from_environment(settings.train.device)
    try:
        show = (settings.train.progress if progress is None else bool(progress)) and ranks.is_main
        with distributed.main_first(ranks):
            run = open_run(profile, data_root, results_dir, progress=show, stand_in=stand_in, device=device)
            data = prepare_data(run.settings, run.data_root, stats_dir=run.paths.features, progress=show)
        specs = [RunSpec(item.method, item.model, item.seed, item.out_dir) for item in model_runs(run)
                 if (wanted_models is None or item.model in wanted_models)
                 and (not seeds or item.seed in [int(s) for s in seeds])]
        if ranks.is_distributed:  # every run data parallel over the group, one after the other
            settings = run.settings.to_dict()
            settings["data"].pop("root", None)  # the same data may sit at another path on each node
            settings["train"].pop("progress", None)
            distributed.agree({"settings": settings, "data": data.fingerprint,
                               "runs": [f"{spec.method}" for spec in specs]}, ranks, "runs to train")
            return {spec.method: train(spec.model, run.settings, data, out_dir=spec.out_dir, seed=spec.seed,
                                       progress=show, tuning_dir=run.paths.tuning) for spec in specs}
        return train_side_by_side(specs, run.settings, data, tuning_dir=run.paths.tuning, progress=show)
    finally:
        if joined:
            distributed.shutdown()


def tune_profile(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    storage: str | None = None,
    stand_in: bool = False,
    progress: bool | None = None,
    device: str | None = None,
) -> dict[str, TuneResult]:
    """One tuning worker: every search of a profile (:func:`melunmix.training.tune.tune_all`) into
    its tuning folder.

    Start one per machine or job on a shared storage (``storage``, or the profile's
    ``tune.storage``): each worker takes trials until the search has
    ``tune.nb_trials``, finishes those of killed workers, and waits for the others' to
    end; then each writes the tables and ``best_params.json`` from the storage. With the
    default storage (the folder's own SQLite file) it is the one process of the search.

    Parameters
    ----------
    profile : str
        Profile name or YAML path.
    data_root, results_dir, stand_in
        As :func:`open_run`.
    storage : str, optional
        Overrides ``tune.storage``: a database URL or a journal file path (see
        :func:`melunmix.training.tune.open_storage`).
    progress : bool, optional
        Progress bars; default ``settings.train.progress``.
    device : str, optional
        Overrides the profile's ``train.device`` for the trials (as :func:`open_run`).

    Returns
    -------
    dict of str to TuneResult
        By canonical model name.
    """
    import contextlib
    import copy

    from ..training.tune import preparing_lock, tune_all  # optuna and training only when tuning

    loaded = load_profile(profile)
    shared = (storage or loaded.tune.storage) is not None
    # Workers started together make the dataset (first use) one at a time.
    lock = preparing_lock(run_paths(loaded, results_dir).tuning) if shared else contextlib.nullcontext()
    with lock:
        run = open_run(profile, data_root, results_dir, progress=progress, stand_in=stand_in, device=device)
    settings = run.settings
    if storage is not None:
        settings = copy.deepcopy(settings)
        settings.tune.storage = str(storage)
    return tune_all(settings, run.data_root, out_dir=run.paths.tuning, progress=progress)


def parameter_table(run: Run) -> pd.DataFrame:
    """Trainable parameters of every trained model (read from the saved weights).

    One row per model (``model``, ``class``, ``feature``, ``parameters``): the seeds of a
    model share its architecture. The control (``linunmix``) must equal the proposed
    model's count; that is the point of it.
    """
    from ..models.networks import load_model, trainable_parameters  # torch only when models are loaded

    rows = {}
    for item in model_runs(run):
        if item.model in rows or not item.weights.exists():
            continue
        model = load_model(item.weights)
        rows[item.model] = {"model": item.model, "class": type(model).__name__,
                            "feature": getattr(model, "feature", "linear spectrogram only"),
                            "parameters": trainable_parameters(model)}
    return pd.DataFrame(list(rows.values()), columns=["model", "class", "feature", "parameters"])


def load_histories(run: Run) -> dict[str, pd.DataFrame]:
    """Per-epoch history (``epoch, train_loss, valid_loss, lr, epoch_time``, ...) of every
    trained model, with ``step``: optimiser steps at the epoch's end (from
    ``history.json``'s ``steps_per_epoch``, when recorded)."""

    histories = {}
    for item in model_runs(run):
        path = item.out_dir / HISTORY_CSV_NAME
        if path.exists():
            history = pd.read_csv(path)
            steps = _steps_per_epoch(item.out_dir)
            if steps:
                history["step"] = history["epoch"] * int(steps)
            histories[item.method] = history
    return histories


def _steps_per_epoch(out_dir: Path) -> int | None:
    """A run's optimiser steps per epoch (``history.json``), None when not recorded."""

    path = out_dir / HISTORY_JSON_NAME
    return (read_json(path) or {}).get("steps_per_epoch") if path.exists() else None


def half_training_step(run: Run) -> int | None:
    """Optimiser steps at the end of the half-training epoch (``train.epochs // 2``), where
    half-trained weights are scored; None when the profile scores none
    (``evaluate.half_training: false``) or before any run recorded its steps per epoch."""
    from ..training.train import half_epoch  # training only when called: `melunmix` commands and notebooks stay light

    if not run.settings.evaluate.half_training:
        return None
    for item in model_runs(run):
        steps = _steps_per_epoch(item.out_dir)
        if steps:
            return half_epoch(run.settings.train.epochs) * int(steps)
    return None


def stop_reasons(run: Run) -> dict[str, str | None]:
    """Why each trained run stopped (``history.json``'s ``stop_reason``), by method."""

    return {item.method: stop_reason(item.out_dir / HISTORY_JSON_NAME) for item in model_runs(run)}


def loss_table(run: Run, histories: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Final and best losses of every trained model, written to ``tables/losses.csv``
    (and the models at matched steps, :func:`melunmix.study.report.matched_steps`, to
    ``tables/matched_steps.csv``).

    Parameters
    ----------
    run : Run
    histories : dict, optional
        Method -> history, as :func:`load_histories` returns (read when not given).

    Returns
    -------
    pandas.DataFrame
        :func:`melunmix.study.report.loss_summary` of the histories (one row per method), the
        table the report shows under "Training".
    """

    histories = load_histories(run) if histories is None else histories
    losses = loss_summary(histories, stop_reasons(run))
    with atomic_path(run.paths.tables / "losses.csv") as tmp:
        losses.to_csv(tmp)
    with atomic_path(run.paths.tables / "matched_steps.csv") as tmp:
        matched_steps(histories).to_csv(tmp)
    return losses


def evaluate_all(run: Run, test_tracks=None) -> pd.DataFrame:
    """Score every trained model, every model of ``evaluate.models`` (trained elsewhere) and
    every oracle of the profile on the test tracks.

    Tracks already scored are skipped. Returns museval's long table of frame scores.
    """
    ev = run.settings.evaluate
    external = check_external_models(run.settings)
    test_tracks = tracks(run, "test") if test_tracks is None else test_tracks
    with evaluate.shared_workers(ev.jobs):  # one pool of scoring workers for every method
        _evaluate_methods(run, test_tracks, external)
    methods = [item.method for item in model_runs(run, half=ev.half_training) if item.weights.exists()]
    methods += list(ev.models) + list(ev.oracles)
    return stats.load_scores(run.paths.eval, methods)


def _evaluate_methods(run: Run, test_tracks, external: dict) -> None:
    ev = run.settings.evaluate
    for item in model_runs(run, half=ev.half_training):
        if item.half and not item.weights.exists():
            continue  # runs shorter than 2 epochs have no half-training weights
        evaluate.evaluate_model(
            {item.target: item.weights}, test_tracks, run.paths.eval, item.method,
            niter=ev.niter, softmask=ev.softmask, residual=ev.residual, wiener_win_len=ev.wiener_win_len,
            jobs=ev.jobs, progress=run.settings.train.progress, win=ev.win, hop=ev.hop,
            expected_model=item.model, n_fft=run.settings.stft.n_fft, n_hop=run.settings.stft.n_hop,
            scorer=ev.scorer, device=run.settings.train.device,
        )
    for name, path in ev.models.items():
        evaluate.evaluate_pretrained(
            external[name], test_tracks, run.paths.eval, name, sample_rate=run.settings.data.sample_rate,
            niter=ev.niter, softmask=ev.softmask, residual=ev.residual, wiener_win_len=ev.wiener_win_len,
            jobs=ev.jobs, progress=run.settings.train.progress, device=run.settings.train.device, win=ev.win,
            hop=ev.hop, scorer=ev.scorer,
        )
    for name in ev.oracles:
        evaluate.evaluate_oracle(name, test_tracks, run.paths.eval, jobs=ev.jobs,
                                 progress=run.settings.train.progress, win=ev.win, hop=ev.hop,
                                 scorer=ev.scorer)


def comparisons(run: Run) -> list[tuple[str, str]]:
    """Pairs (model, baseline) to test per seed: every other model against Open-Unmix."""
    by_seed: dict[int, dict[str, str]] = {}
    for item in model_runs(run):
        by_seed.setdefault(item.seed, {})[item.model] = item.method
    pairs = []
    for methods in by_seed.values():
        baseline = methods.get("openunmix")
        if baseline is not None:
            pairs += [(method, baseline) for model, method in methods.items() if model != "openunmix"]
    return pairs


def save_examples(run: Run, track, start: float = 0.0, duration: float = 10.0) -> Path:
    """Separate an excerpt of ``track`` with every trained model; write the WAVs notebook 06 plots.

    Writes ``examples/<track>/{mixture,vocals}.wav`` (references) and
    ``examples/<track>/<method>_vocals.wav``; existing files are kept.
    """
    import soundfile as sf

    from ..separation.separate import separate  # torch only for the examples

    folder = run.paths.root / EXAMPLES_DIR / track.name
    excerpt = load_excerpt(track, start, duration)
    wanted = {"mixture": excerpt["mixture"], "vocals": excerpt["vocals"]}
    for item in model_runs(run):
        out = folder / f"{item.method}_vocals.wav"
        if out.exists() or not item.weights.exists():
            continue
        estimates = separate(excerpt["mixture"], track.rate, {item.target: item.weights},
                             niter=run.settings.evaluate.niter, softmask=run.settings.evaluate.softmask,
                             wiener_win_len=run.settings.evaluate.wiener_win_len)
        wanted[f"{item.method}_vocals"] = estimates["vocals"]
    for name, audio in wanted.items():
        path = folder / f"{name}.wav"
        if path.exists():
            continue
        with atomic_path(path) as tmp:
            sf.write(tmp, np.asarray(audio).T, int(track.rate), subtype="FLOAT")
    return folder


def load_examples(run: Run) -> tuple[str, dict[str, np.ndarray], int]:
    """The saved excerpt: (track name, title -> audio (channels, samples), rate).

    The mixture, the true vocals and each model's vocals estimate, titled for a reader
    ("Open-Unmix (baseline), seed 1: vocals estimate"); with several seeds, the first
    seed's (the figure shows what a model does, the tables how seeds differ).
    """
    import soundfile as sf


    folders = sorted(p for p in (run.paths.root / EXAMPLES_DIR).glob("*") if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"no examples under {run.paths.root / EXAMPLES_DIR}; run notebook 05 first")
    folder = folders[0]
    order = {"mixture": "Mixture", "vocals": "True vocals"}
    shown_models: set[str] = set()
    for item in model_runs(run):
        if item.model in shown_models:
            continue
        shown_models.add(item.model)
        seed = f", seed {item.seed}" if item.method != item.model else ""
        order[f"{item.method}_vocals"] = f"{method_label(item.model)}{seed}: vocals estimate"
    panels, rate = {}, None
    for name, title in order.items():
        path = folder / f"{name}.wav"
        if path.exists():
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
            panels[title] = audio.T
    return folder.name, panels, rate
