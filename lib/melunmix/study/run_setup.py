"""A notebook's run: profile, data root and results folder opened, its tracks, its model runs.

A notebook's set-up cell calls :func:`melunmix.study.presentation.notebook_display` and
opens its run with :func:`open_run` (profile + data root + results folder), then calls
the study's steps (:mod:`melunmix.study`'s other modules) and displays what they return.
Every step reads what earlier steps saved under ``results/<profile>/`` and skips finished
work, so a notebook can be rerun at any time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..base.config import RunPaths, Settings, home_dir, load_profile, run_paths
from ..scoring.evaluate import check_method_name
from ..base.files import describe_holder, lock_holder
from ..base.names import HALF_SUFFIX, canonical_method, canonical_model_name, seed_method_name, split_seed
from ..base.provenance import git_commit


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
        from ..training.run_files import half_weights_name, weights_name

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
