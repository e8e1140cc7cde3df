"""The study's vocabulary, at the bottom of the import graph: a MUSDB18 track's stems and
the targets, the models and oracles (with their display names and colours), the metrics
in their one order, how a method is named (a trained network per seed, a checkpoint at
half training) and in which order methods are shown, what a training run's folder holds,
and where a BSS Eval ratio stops measuring the signal.

Every module that parses or writes these names reads them here (the statistics, the
scorer, the plots, the report, training, tuning), so that none has to import another
for a name. It imports nothing of the package.

Example
-------
>>> from melunmix.base.names import seed_method_name, split_seed
>>> split_seed(seed_method_name("openunmix", 42))
('openunmix', 42)
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

# --------------------------------------------------------------------------- stems and targets
#: A MUSDB18 track's mixture (stream 0 of a ``.stem.mp4``, ``mixture.wav`` in MUSDB18-HQ).
MIXTURE = "mixture"
#: The target of the study (karaoke: the vocals apart from everything else).
VOCALS = "vocals"
#: Everything but the vocals.
ACCOMPANIMENT = "accompaniment"
#: MUSDB18's four sources, in the order of musdb's setup file (``sources``; the streams of a
#: ``.stem.mp4`` are mixture, drums, bass, other, vocals); their sum is the mixture.
SOURCES = (VOCALS, "drums", "bass", "other")
#: A MUSDB18 track's five stems: the mixture, then the sources.
STEMS = (MIXTURE, *SOURCES)
#: The sources summed into the accompaniment (every source but the vocals).
ACCOMPANIMENT_SOURCES = ("drums", "bass", "other")
#: What a model can learn and musdb can score, in musdb's order (``track.targets``): the
#: four sources, then the accompaniment.
TARGETS = (*SOURCES, ACCOMPANIMENT)
#: The study's pair, which every method is scored on (SiSEC's vocals/accompaniment, karaoke).
SCORED_TARGETS = (VOCALS, ACCOMPANIMENT)

# --------------------------------------------------------------------------- models, oracles, metrics
class Style(NamedTuple):
    """How a method shows: its display name (tables, legends, the report's sentences) and
    its colour (the same in every figure)."""

    label: str
    color: str


#: The study's models in the order of tables and figures, each with how it shows. Their
#: networks: :data:`melunmix.models.networks.ARCHITECTURES`. A new model is a line here and one there.
MODELS = {
    "openunmix": Style("Open-Unmix (baseline)", "#1f77b4"),  # blue
    "melunmix": Style("MelUnmix (mel, proposed)", "#d62728"),  # red
    "mfccunmix": Style("MelUnmix (MFCC)", "#ff7f0e"),  # the poster's future work: orange
    # the same two-branch network, its second branch fed a linear-frequency filterbank of
    # as many bands: the proposed model's parameter count without the mel scale
    "linunmix": Style("Control (linear branch)", "#17becf"),  # teal
    # Open-Unmix widened to the proposed model's parameter count, without a second branch
    "wideunmix": Style("Control (width-matched baseline)", "#e6ab02"),  # mustard
}
#: The baseline every model is compared with.
BASELINE = "openunmix"
#: The proposed model (the report's answer sentence is about it).
PROPOSED = "melunmix"
#: The models a profile trains unless it lists its own (``train.models``): the baseline,
#: the proposed model, its MFCC variant and the linear-branch control.
DEFAULT_MODELS = ("openunmix", "melunmix", "mfccunmix", "linunmix")
#: Other names accepted for the models (case-insensitive), besides their own.
MODEL_ALIASES = {
    **{name: name for name in MODELS},
    "baseline": "openunmix", "umx": "openunmix",
    "proposed": "melunmix", "mel": "melunmix",
    "mfcc": "mfccunmix", "control": "linunmix", "linear": "linunmix",
    "wide": "wideunmix", "width": "wideunmix",
}

#: SiSEC 2018's oracles (:mod:`melunmix.separation.oracles`) in the order of the tables, each with how
#: it shows: the ideal masks and the multichannel Wiener filter, then the mixture (MIX).
ORACLES = {
    "IRM1": Style("IRM1 (oracle)", "#2ca02c"),
    "IRM2": Style("IRM2 (oracle)", "#7fbf3f"),
    "IBM": Style("IBM (oracle)", "#9467bd"),
    "MWF": Style("MWF (oracle)", "#8c564b"),
    "MIX": Style("MIX (mixture)", "#7f7f7f"),
}
#: BSS Eval v4's four ratios, in the order the poster and every table report them.
METRICS = ("SDR", "SIR", "ISR", "SAR")


def canonical_model_name(name: str) -> str:
    """The registry name (:data:`MODELS`) of a model name or alias (``"proposed"`` ->
    ``"melunmix"``); an unknown name is a ValueError listing the valid ones."""
    key = MODEL_ALIASES.get(str(name).strip().lower())
    if key is None:
        valid = ", ".join(f"{alias!r}" for alias in MODEL_ALIASES)
        raise ValueError(f"unknown model name {name!r}; valid names: {valid}")
    return key


# --------------------------------------------------------------------------- method names
#: Suffix of a model's checkpoint at half training: ``melunmix-half`` (``-half-seed<N>``).
HALF_SUFFIX = "-half"
#: A method of one training seed, as the evaluation names it: ``<model>-seed<N>``.
SEED_NAME = re.compile(r"^(?P<base>.+)-seed(?P<seed>\d+)$")
#: A seed appended as the evaluation does (``-seed42``), as a model folder (``/seed42``) or ``_seed42``.
ANY_SEED = re.compile(r"^(?P<base>.+?)[-_/]seed(?P<seed>\d+)$")


def seed_method_name(model_name: str, seed: int) -> str:
    """Method name of one training seed of a model, e.g. ``openunmix-seed42``."""
    return f"{model_name}-seed{int(seed)}"


def split_seed(method: str) -> tuple[str, int | None]:
    """``"openunmix-seed42"`` -> ``("openunmix", 42)``; a name without a seed -> ``(name, None)``."""
    match = SEED_NAME.match(method)
    if match is None:
        return method, None
    return match["base"], int(match["seed"])


# --------------------------------------------------------------------------- methods: order and labels
#: Every known method in the order of tables and figures: each model
#: (:data:`melunmix.base.names.MODELS`) followed by its half-training checkpoint, then the
#: oracles and MIX (:data:`melunmix.base.names.ORACLES`).
METHOD_ORDER = tuple(name for model in MODELS for name in (model, model + HALF_SUFFIX)) + tuple(ORACLES)
#: Display names of the methods, for tables, legends and the report's sentences.
METHOD_LABELS = {
    **{name: label for model, style in MODELS.items()
       for name, label in ((model, style.label), (model + HALF_SUFFIX, f"{style.label}, half training"))},
    **{name: style.label for name, style in ORACLES.items()},
}
#: Each known method by its lower-case name (what :func:`canonical_method` looks up).
_METHODS_BY_LOWER = {method.lower(): method for method in METHOD_ORDER}


def canonical_method(name: str) -> str | None:
    """The known method (:data:`METHOD_ORDER`) that ``name`` denotes, or None.

    Seed suffixes (``-seed42``, ``/seed42``, ``_seed42``), case and the models' aliases
    (:data:`MODEL_ALIASES`) are ignored: ``"MelUnmix-half-seed3"`` -> ``"melunmix-half"``,
    ``"baseline"`` -> ``"openunmix"``, ``"my_model"`` -> None.
    """
    name = str(name)
    match = ANY_SEED.match(name)
    for candidate in dict.fromkeys([name, match["base"] if match else name]):
        lower = candidate.lower()
        half = lower.endswith(HALF_SUFFIX)
        stem = lower[: -len(HALF_SUFFIX)] if half else lower
        stem = MODEL_ALIASES.get(stem, stem)
        found = _METHODS_BY_LOWER.get(stem + (HALF_SUFFIX if half else ""))
        if found is not None:
            return found
    return None


def is_study_model(name: str) -> bool:
    """Whether ``name`` (a method or its base) is one of the study's models (:data:`MODELS`)
    or a half-training checkpoint of one; False for the references and for models trained
    elsewhere (``evaluate.models``)."""
    known = canonical_method(name)
    return known is not None and known.removesuffix(HALF_SUFFIX) in MODELS


def method_seed(name: str) -> int | None:
    """Seed number in a method or model-folder name (``-seed42``, ``/seed42``), or None."""
    match = ANY_SEED.match(str(name))
    return int(match["seed"]) if match else None


def method_label(name: str) -> str:
    """Display name of a method (:data:`METHOD_LABELS`); per-seed names keep their seed,
    unknown names are returned as they are."""
    known = canonical_method(name)
    if known is None:
        return str(name)
    seed = method_seed(name)
    return METHOD_LABELS[known] + (f" seed{seed}" if seed is not None else "")


def order_methods(names: Iterable[str]) -> list[str]:
    """Methods in the study's order, duplicates dropped.

    Known models (each followed by its half-training checkpoint), then other methods
    (sorted by name), then the oracles and MIX (:data:`METHOD_ORDER`); the seeds of one
    model by seed number (``seed2`` before ``seed10``).
    """
    rank = {known: i for i, known in enumerate(METHOD_ORDER)}
    first_reference = rank[next(iter(ORACLES))]

    def key(name):
        known = canonical_method(name)
        seed = method_seed(name)
        position = rank[known] if known is not None else first_reference - 0.5
        base = str(name) if known is None else ""
        return (position, base, -1 if seed is None else seed, str(name))

    return sorted(dict.fromkeys(names), key=key)


def is_reference(method: str) -> bool:
    """True for the oracles and MIX (methods that are not trained)."""
    return canonical_method(method) in ORACLES


# --------------------------------------------------------------------------- a training run's folder
#: The resumable state of a run (model, optimiser, schedule, early stopping, random state).
CHECKPOINT_NAME = "checkpoint.pt"
#: The run's history with its stop reason and steps per epoch.
HISTORY_JSON_NAME = "history.json"
#: The run's history, one row per epoch.
HISTORY_CSV_NAME = "history.csv"
#: The settings the run trained with (tuned values, seed, versions, commit).
SETTINGS_JSON_NAME = "settings.json"

# --------------------------------------------------------------------------- a run's figures and tables
#: The figures of a study run (``results/<profile>/figures/<name>.png``), each with the
#: notebook that draws it; the notebooks, the REPORT and the README name them from here.
FIGURES = {
    "stem_loudness": "01", "example_mixture": "01", "example_vocals": "01", "vocal_spectrogram": "01",
    "features": "02", "scaler_statistics": "02",
    "tuning_search_space": "03", "tuning_lr_curves": "03", "tuning_transfer": "03",
    "loss_curves": "04", "learning_curves": "04",
    "metric_table": "06", "boxplots_vocals": "06", "boxplots_accompaniment": "06",
    "paired_differences": "06", "spectrograms": "06", "training_length": "06",
}
#: The figures drawn once per model when tuning searches each model on its own
#: (``<name>_<model>.png``).
PER_MODEL_FIGURES = ("tuning_search_space",)
#: The tables of a study run (``results/<profile>/tables/<name>.csv``, some also ``.md``),
#: each with the notebook that writes it.
TABLES = {
    "losses": "04", "matched_steps": "04",
    "main": "05", "paired_differences": "05", "model_medians": "05", "poster": "05", "per_track": "05",
    "bootstrap_ci": "05", "seeds": "05", "wilcoxon": "05",
}


def figure_file(name: str, part: str | None = None) -> str:
    """The file of a run's figure: ``<name>.png``, or ``<name>_<part>.png`` (one per model).

    Raises
    ------
    KeyError
        ``name`` is not a figure of :data:`FIGURES` (the message lists them).
    """
    if name not in FIGURES:
        raise KeyError(f"{name!r} is not a figure of a run; figures: {', '.join(FIGURES)}")
    if part and name not in PER_MODEL_FIGURES:
        raise KeyError(f"{name!r} is one figure per run, not one per model ({', '.join(PER_MODEL_FIGURES)} are)")
    return f"{name}_{part}.png" if part else f"{name}.png"


def table_file(name: str, suffix: str = ".csv") -> str:
    """The file of a run's table: ``<name>.csv`` (or ``.md``); unknown names are refused."""
    if name not in TABLES:
        raise KeyError(f"{name!r} is not a table of a run; tables: {', '.join(TABLES)}")
    return f"{name}{suffix}"


# --------------------------------------------------------------------------- scores
#: Above this a BSS Eval ratio (dB) measures floating-point residue, not the signal. An
#: estimate that carries no artefacts (the mixture, MIX: it lies exactly in the span of the
#: references, so its SAR divides by the residue of the projection) or that equals its
#: reference scores 140-150 dB in float32 and moves with the CPU's rounding; no signal
#: that went through 16-bit audio can be measured above about 96 dB. Such frames are read
#: as ``+inf`` (:func:`melunmix.analysis.score_frames.mark_residue`): shown as ``inf``, never part of a comparison.
RESIDUE_DB = 100.0
#: The note under every table that shows such a value.
RESIDUE_NOTE = (f"*inf: above {RESIDUE_DB:g} dB, a ratio to floating-point residue, not a measurement "
                "(MIX's SAR: the mixture carries no artefacts); never part of a comparison.*")
