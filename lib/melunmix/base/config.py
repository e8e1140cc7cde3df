"""Profiles: one YAML file per study configuration -> typed settings, and the paths of a run.

A profile (``<name>.yaml`` in the package's ``profiles/`` folder, or any YAML file) is the
single source of truth for every setting the notebooks, the engine and the CLI use, so
values that must agree across notebooks cannot drift. Sections map one-to-one onto the
dataclasses below; keys that are not known raise, so a typo in a profile is an error and
not a silently ignored setting.

Where files go never depends on where the package is installed (:func:`home_dir`):
results under ``$MELUNMIX_RESULTS_DIR``, else ``<home>/results``; generated datasets
under ``$MELUNMIX_DATA_DIR``, else ``<home>/data/generated``; the decode/resample cache
under ``$MELUNMIX_CACHE_DIR``, else ``<home>/data/cache``. ``<home>`` is
``$MELUNMIX_HOME``, else the source checkout that holds the working directory (a
notebook's folder counts: its checkout is found above it), else the working directory.

Example
-------
>>> from melunmix.base.config import load_profile
>>> settings = load_profile("smoke")
>>> settings.stft.n_fft
1024
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .names import DEFAULT_MODELS, ORACLES

#: The profiles shipped with the package (package data: read, never written).
PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"

#: Environment variables that place what a run writes (see :func:`home_dir`).
HOME_ENV = "MELUNMIX_HOME"
RESULTS_ENV = "MELUNMIX_RESULTS_DIR"
DATA_ENV = "MELUNMIX_DATA_DIR"
CACHE_ENV = "MELUNMIX_CACHE_DIR"


def is_checkout(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a melunmix source checkout (its ``pyproject.toml`` and ``notebooks/``)."""
    folder = Path(folder)
    try:
        text = (folder / "pyproject.toml").read_text()
    except OSError:
        return False
    return (folder / "notebooks").is_dir() and re.search(r'^name\s*=\s*"melunmix"\s*$', text, re.M) is not None


def find_checkout(start: str | os.PathLike | None = None) -> Path | None:
    """The melunmix source checkout holding ``start`` (default: the working directory), or None.

    ``start`` itself or its nearest parent that :func:`is_checkout`; so a notebook kernel,
    whose working directory is ``notebooks/``, finds the same checkout as a command run
    from the repository root. The package's own location is never consulted: an
    installed copy has no checkout.
    """
    folder = Path(start if start is not None else Path.cwd()).expanduser().resolve()
    for candidate in (folder, *folder.parents):
        if is_checkout(candidate):
            return candidate
    return None


def home_dir() -> Path:
    """The folder under which results, generated data and the cache go by default.

    ``$MELUNMIX_HOME``; else the source checkout holding the working directory
    (:func:`find_checkout`), so a checkout keeps ``results/`` and ``data/`` at its root;
    else the working directory. Read at every call: a process that changes its working
    directory or environment gets the new answer.
    """
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    return find_checkout() or Path.cwd().resolve()


def results_root() -> Path:
    """Parent of the run folders: ``$MELUNMIX_RESULTS_DIR``, else ``<home>/results`` (:func:`home_dir`)."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser().resolve()
    return home_dir() / "results"


def generated_data_root() -> Path:
    """Parent of the generated datasets: ``$MELUNMIX_DATA_DIR``, else ``<home>/data/generated``."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser().resolve()
    return home_dir() / "data" / "generated"


def cache_root() -> Path:
    """Parent of the decode/resample caches: ``$MELUNMIX_CACHE_DIR``, else ``<home>/data/cache``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    return home_dir() / "data" / "cache"


@dataclass
class GeneratedData:
    """Parameters of the built-in dataset, used when no MUSDB18 root is given."""

    nb_train: int = 8
    nb_valid: int = 2
    nb_test: int = 4
    duration: float = 30.0  # seconds per song
    seed: int = 0
    # Hz the songs are rendered at (MUSDB18's 44100); a profile that trains and scores at
    # another rate (data.sample_rate) renders its songs at that rate.
    sample_rate: int = 44100


@dataclass
class DataSettings:
    """Where the tracks come from and how training items are drawn."""

    root: str | None = None  # None -> $MUSDB_ROOT, $MUSDB_PATH, else data/generated
    is_wav: bool | None = None  # None -> detect (.wav folders vs .stem.mp4 files)
    generated: GeneratedData = field(default_factory=GeneratedData)
    sample_rate: float = 44100.0
    targets: list[str] = field(default_factory=lambda: ["vocals"])
    seq_dur: float = 6.0  # seconds per training item
    samples_per_track: int = 64
    valid_seq_dur: float | None = None  # None -> full validation tracks
    nb_workers: int = 0
    nb_test_tracks: int | None = None  # None -> every test track
    # A study on MUSDB18 (poster, umx): refuse to run on the generated data unless the
    # run asks for a stand-in explicitly (--stand-in), so no result is mistaken for MUSDB18's.
    needs_musdb: bool = False
    # Validation songs by name (songs of <root>/train), instead of the setup file's list
    # (musdb's 14 for MUSDB18) or the split derived when none of those is in the root
    # (melunmix.datasets.validation_split); None -> those.
    valid_tracks: list[str] | None = None

    def __post_init__(self):
        if isinstance(self.valid_tracks, list):
            if not self.valid_tracks:
                raise ValueError("data.valid_tracks is empty; list validation songs of <root>/train by name, "
                                 "or remove the key to use the setup file's list or a derived split")
            repeated = sorted({n for n in self.valid_tracks if self.valid_tracks.count(n) > 1})
            if repeated:
                raise ValueError(f"data.valid_tracks lists {repeated} more than once; list each song once")


@dataclass
class STFTSettings:
    n_fft: int = 4096
    n_hop: int = 1024
    bandwidth: float = 16000.0  # Hz; bins above are not fed to the network


@dataclass
class ModelSettings:
    """Architecture shared by the baseline and the proposed model."""

    hidden_size: int = 512
    nb_layers: int = 3
    unidirectional: bool = False
    n_mels: int = 64  # two-branch models: bands of the second branch (mel, or linear for the control)
    n_mfcc: int = 20  # mfccunmix: coefficients kept


@dataclass
class TrainSettings:
    """The Open-Unmix training recipe (Adam, MSE, a learning-rate schedule, early stopping).

    Two learning-rate schedules (``lr_schedule``):

    - ``"plateau"``: Open-Unmix's ``ReduceLROnPlateau`` on the validation loss; the rate is
      multiplied by ``lr_decay_gamma`` after ``lr_decay_patience`` epochs without
      improvement, then waits ``lr_decay_cooldown`` epochs. With Open-Unmix's patience (80)
      it never fires in a 20-epoch run. The defaults are Open-Unmix's.
    - ``"exponential"``: the rate is multiplied by ``lr_decay_gamma`` after every epoch
      (torch's ``ExponentialLR``), so epoch ``e`` trains at ``lr * lr_decay_gamma**(e - 1)``;
      a decay that acts within a short run and within a tuning trial. The study profiles
      use it; ``lr_decay_patience`` and ``lr_decay_cooldown`` are then unused.

    ``weight_decay`` is Adam's (an L2 penalty on the weights), the other reading of the
    poster's "decay rate"; the tuner searches both.
    """

    # baseline, proposed (mel), proposed with MFCCs, capacity-matched control (linear bands)
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5  # Adam's weight decay
    lr_schedule: str = "plateau"  # "plateau" (Open-Unmix) or "exponential" (per epoch)
    lr_decay_gamma: float = 0.3  # plateau: factor on a plateau; exponential: factor per epoch
    lr_decay_patience: int = 80  # plateau only
    lr_decay_cooldown: int = 10  # plateau only
    patience: int = 140  # early stopping, epochs without improvement
    seeds: list[int] = field(default_factory=lambda: [42])
    device: str = "auto"  # "auto" -> CUDA when present
    # Runs (models x seeds) trained at once on a CPU, each in its own process on one
    # thread (melunmix.training.side_by_side); null: one per core. 1: one after the other.
    jobs: int | None = 1
    progress: bool = True
    use_tuned: bool = True  # read the tuned lr / decays from the tuning folder when present
    # Every N epochs (and at the last), separate the validation songs with the current
    # model and record their median vocals SDR (dB, BSS Eval v4 via melunmix.dsp.bsseval) in
    # the history (column valid_sdr) and the loss figure; 0: never. Does not change training.
    valid_sdr_every: int = 0
    # Start from trained weights instead of random ones (fine-tuning): a melunmix model file,
    # an Open-Unmix model folder or weights file (melunmix.models.umx_files). Every tensor whose
    # name and shape match is copied, so a two-branch model starts its shared layers (the
    # baseline's) from an Open-Unmix model and its second branch from scratch.
    init_weights: str | None = None

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"train.lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )


#: The learning-rate schedules of :class:`TrainSettings`.
LR_SCHEDULES = ("plateau", "exponential")


@dataclass
class TuneSettings:
    """The poster's search of the learning rate and decay at a lower sample rate.

    ``model`` is the model searched with (the proposed one, as the poster tuned "with our
    proposed model"); with ``per_model`` every model of ``train.models`` is searched
    separately (``tuning/<model>/``) and each trains with its own best values, or with
    ``shared_recipe`` all with one recipe that the searches show suits each. The trials
    run at ``sample_rate`` with the profile's STFT scaled to that rate (see
    :func:`melunmix.training.tune.trial_settings`). ``transfer_epochs`` > 0 adds a check at the
    data's full rate: that many epochs with the tuned values beside the untuned ones
    (:func:`melunmix.training.tune.transfer_check`); 0 skips it.
    """

    enabled: bool = True
    sample_rate: float = 16000.0
    model: str = "melunmix"
    per_model: bool = False
    # With per_model: every model trains with one shared recipe, the values that do best on
    # average (each model's loss over its own best) among those every model's search tried
    # (the sampler's seeded start-up draws), instead of each with its own best
    # (melunmix.training.hyperparameters.shared_recipe; how far it is from each model's own best is
    # in tuning/recipe_fit.csv).
    shared_recipe: bool = False
    nb_trials: int = 8
    # Random trials before the sampler's model of the earlier trials chooses (Optuna's
    # TPE default, 10); a search of nb_trials <= startup_trials is a random search.
    startup_trials: int = 10
    epochs: int = 3
    samples_per_track: int = 16
    seed: int = 0
    transfer_epochs: int = 0
    # Where the trials are kept: None -> the search folder's own SQLite file (one process
    # at a time); a database URL (postgresql://..., mysql://...) or a journal file path on
    # a shared filesystem -> several workers join one search (melunmix.training.tune.open_storage).
    storage: str | None = None
    heartbeat_interval: float = 60.0  # shared storage: seconds between a running trial's heartbeats
    grace_period: float = 300.0  # shared storage: seconds without one before its worker is taken for dead
    # name -> [low, high, "log" | "linear"]; the names are TrainSettings fields.
    space: dict[str, list[Any]] = field(
        default_factory=lambda: {
            "lr": [1e-4, 1e-2, "log"],
            "weight_decay": [1e-7, 1e-3, "log"],
            "lr_decay_gamma": [0.5, 1.0, "linear"],
        }
    )


#: Frames per block of the multichannel Wiener filter (Open-Unmix's default, ``wiener_win_len``):
#: the one default of the profiles, ``separate`` and ``evaluate``.
WIENER_WIN_LEN = 300


@dataclass
class EvalSettings:
    niter: int = 1
    softmask: bool = False
    residual: bool = True
    wiener_win_len: int = WIENER_WIN_LEN
    jobs: int | None = None  # None -> number of cores
    oracles: list[str] = field(default_factory=lambda: list(ORACLES))  # melunmix.base.names, table order
    half_training: bool = True  # also score each run's best weights up to epoch epochs // 2
    # Models trained elsewhere scored as more methods: name -> model file or folder
    # (Open-Unmix's published weights or train.py folder, another run's vocals model);
    # melunmix.scoring.evaluate.evaluate_pretrained. E.g. {umxhq: /models/umxhq}.
    models: dict[str, str] = field(default_factory=dict)
    # BSS Eval v4 implementation: "fast" (melunmix.dsp.bsseval) or "museval" (the reference);
    # both give museval's numbers (largest difference measured: 3e-5 dB).
    scorer: str = "fast"

    def __post_init__(self):
        if self.scorer not in ("fast", "museval"):
            raise ValueError(f"evaluate.scorer must be 'fast' or 'museval', got {self.scorer!r}")
    bootstrap: int = 1000
    win: float = 1.0  # museval window and hop, seconds
    hop: float = 1.0


@dataclass
class Settings:
    """A whole profile."""

    name: str = "custom"
    description: str = ""
    data: DataSettings = field(default_factory=DataSettings)
    stft: STFTSettings = field(default_factory=STFTSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)
    evaluate: EvalSettings = field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-native dict (what papermill can carry and what a run folder records)."""
        return dataclasses.asdict(self)


def _build(cls, values: dict[str, Any] | None, where: str):
    """Instantiate dataclass ``cls`` from ``values``, recursing into nested dataclasses."""
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: unknown setting(s) {unknown}; valid keys are {sorted(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        default = known[name].default_factory() if known[name].default_factory is not dataclasses.MISSING else known[name].default
        if dataclasses.is_dataclass(default):
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{where}.{name}: expected a mapping, got {value!r}")
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = value
    instance = cls(**kwargs)
    _check_values(instance, where)
    return instance


#: Value ranges checked when a profile loads (before any work): field name -> rule.
_POSITIVE = {"epochs", "batch_size", "lr", "lr_decay_gamma", "patience", "n_fft", "n_hop", "bandwidth",
             "hidden_size", "nb_layers", "n_mels", "n_mfcc", "sample_rate", "seq_dur", "valid_seq_dur",
             "samples_per_track", "nb_trials", "startup_trials", "nb_train", "nb_test", "duration", "wiener_win_len",
             "jobs", "bootstrap", "win", "hop", "nb_test_tracks", "heartbeat_interval", "grace_period"}
_NON_NEGATIVE = {"weight_decay", "lr_decay_patience", "lr_decay_cooldown", "valid_sdr_every", "nb_workers",
                 "nb_valid", "transfer_epochs", "niter", "seed"}


#: Lists a run cannot do without (an empty one would train or score nothing, silently).
_NON_EMPTY = {
    "models": "list at least one model to train (e.g. [openunmix, melunmix])",
    "seeds": "list at least one training seed (e.g. [42])",
    "targets": "list at least one target (e.g. [vocals])",
}


def _type_name(hint) -> str:
    import typing

    if typing.get_origin(hint) is None and hasattr(hint, "__name__"):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _matches(value: Any, hint) -> bool:
    """Whether a YAML value has the annotated type (ints are accepted as floats, never bools)."""
    import typing

    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _check_values(instance, where: str) -> None:
    """Types and ranges of a built section: a wrong profile fails when it loads, naming the key."""
    import typing

    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            continue
        if not _matches(value, hints[f.name]):
            raise ValueError(f"{where}.{f.name}: expected {_type_name(hints[f.name])}, got {value!r}")
        if f.name in _NON_EMPTY and isinstance(value, (list, tuple)) and not value:
            raise ValueError(f"{where}.{f.name} is empty: {_NON_EMPTY[f.name]}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if f.name in _POSITIVE and not value > 0:
            raise ValueError(f"{where}.{f.name} must be positive, got {value!r}")
        if f.name in _NON_NEGATIVE and not value >= 0:
            raise ValueError(f"{where}.{f.name} must be zero or positive, got {value!r}")


def settings_from_dict(values: dict[str, Any], where: str = "profile") -> Settings:
    """Typed :class:`Settings` from a (possibly partial) nested dict; unknown keys raise."""
    return _build(Settings, values, where)


def flat_keys(values: Any, prefix: str = "") -> dict[str, Any]:
    """A nested settings dict as dotted keys: ``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``
    (what differs between two runs' records is then named by its profile key)."""
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(flat_keys(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: values}


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def profile_path(name_or_path: str | os.PathLike) -> Path:
    """Path of a profile given its name (``smoke``: one shipped in :data:`PROFILES_DIR`) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise FileNotFoundError(f"profile file {path} does not exist")
        return path
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise FileNotFoundError(
            f"no profile named {name_or_path!r} ({path} missing); available: {names}, "
            "or pass the path of a YAML file"
        )
    return path


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (line numbers named)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(f"{key!r} is given twice (lines {seen[key]} and {line})")
                seen[key] = line
            except TypeError:  # an unhashable key: the base loader says why
                break
        return super().construct_mapping(node, deep=deep)


def load_profile(name_or_path: str | os.PathLike, overrides: dict | None = None) -> Settings:
    """Load a profile by name or path, optionally deep-merging ``overrides`` on top.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"smoke"``, ``"demo"``, ``"poster"``, ``"umx"`` or a YAML file.
    overrides : dict, optional
        Nested dict of settings that win over the file, e.g. ``{"data": {"root": "/musdb"}}``.
    """
    path = profile_path(name_or_path)
    try:
        with open(path) as fh:
            values = yaml.load(fh, Loader=_UniqueKeyLoader) or {}
    except _DuplicateKey as err:
        raise ValueError(f"{path}: {err}; keep one of them (YAML lets the last win silently, a profile "
                         "does not)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ValueError(f"{path} is not valid YAML{where}: {problem}; fix the profile file") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a profile must be a YAML mapping")
    values.setdefault("name", path.stem)
    return settings_from_dict(_deep_merge(values, overrides or {}), where=str(path))


def run_dir(settings_or_name: Settings | str, results_dir: str | os.PathLike | None = None) -> Path:
    """``<results>/<profile>/``: every artifact of a run lives below it.

    ``results_dir`` defaults to :func:`results_root` (``results/`` of the checkout).
    """
    name = settings_or_name.name if isinstance(settings_or_name, Settings) else str(settings_or_name)
    return Path(results_dir or results_root()) / name


@dataclass
class RunPaths:
    """The folders and files of one run (see DESIGN.md, "A run's artifacts")."""

    root: Path

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def tuning(self) -> Path:
        return self.root / "tuning"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_dir(self, model_name: str, seed: int | None = None) -> Path:
        """``models/<name>/`` or ``models/<name>/seed<seed>/`` when a profile has several seeds."""
        base = self.models / model_name
        return base if seed is None else base / f"seed{seed}"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def lock(self) -> Path:
        """Locked by the ``melunmix reproduce`` run writing this folder (:func:`melunmix.base.files.hold_lock`)."""
        return self.root / "run.lock"

    @property
    def report(self) -> Path:
        return self.root / "REPORT.md"


def run_paths(settings_or_name: Settings | str, results_dir: str | os.PathLike | None = None) -> RunPaths:
    return RunPaths(run_dir(settings_or_name, results_dir))
