"""The run report: ``results/<profile>/REPORT.md``, tables and figures of a run, linked.

:func:`write_report` renders sections that the caller assembles; :func:`build_study_report`
assembles the study's report from what a run folder holds. It opens with the answer
(:func:`study_answer`: each model against the baseline, from
``tables/paired_differences.csv``), then the main table, the paired differences, and the
parts listed in :data:`STUDY_PARTS`, each naming the files it shows; the settings, the
provenance and the list of files come last. Tables are rendered by :func:`markdown_table`
(pandas' ``to_markdown`` needs the optional ``tabulate`` package, which the study does not
depend on). Images and files are linked by paths relative to the run folder, so the report
renders wherever the folder is copied or committed; a file that does not exist is never
linked.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd
import yaml

from ..base.files import read_json, write_text
from ..base.markdown import escape, format_cell
from ..base.markdown import markdown_table as markdown_table  # noqa: F401  (re-exported: the report's API)
from ..base.names import (BASELINE, HALF_SUFFIX, HISTORY_CSV_NAME, PROPOSED, figure_file, order_methods, split_seed,
                          table_file)
from ..analysis.sentences import answer_sentence
from ..analysis.plateau import at_plateau, last_quarter_gain

__all__ = ["Section", "StudyPart", "STUDY_PARTS", "LINKED_ONLY", "markdown_table", "read_table",
           "write_report", "build_study_report", "study_answer", "loss_summary", "NOT_RUN",
           "STAND_IN_WARNING"]

NOT_RUN = "*not run*"

#: Settings shown in the report's summary table, as (section, key) of a profile.
SUMMARY_SETTINGS = (
    ("data", "root"), ("data", "sample_rate"), ("data", "targets"), ("data", "seq_dur"),
    ("data", "samples_per_track"), ("stft", "n_fft"), ("stft", "n_hop"), ("stft", "bandwidth"),
    ("model", "hidden_size"), ("model", "nb_layers"), ("model", "n_mels"), ("model", "n_mfcc"),
    ("train", "models"), ("train", "epochs"), ("train", "batch_size"), ("train", "lr"),
    ("train", "weight_decay"), ("train", "lr_schedule"), ("train", "lr_decay_gamma"), ("train", "seeds"),
    ("tune", "enabled"), ("tune", "model"), ("tune", "sample_rate"), ("tune", "nb_trials"),
    ("evaluate", "niter"), ("evaluate", "oracles"),
)


# --------------------------------------------------------------------------- tables


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV table written by the study, including two-row headers.

    A frame with MultiIndex columns (the poster table: ``(target, metric)``) is written
    by pandas as two header rows and a row holding the index name; that layout is
    detected and read back as MultiIndex columns. Other CSVs are read as they are.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table {path} does not exist")
    with open(path, newline="") as fh:
        head = [fh.readline() for _ in range(3)]
    rows = list(csv.reader([line for line in head if line]))
    if len(rows) == 3 and rows[2] and rows[2][0] and not any(rows[2][1:]) and len(rows[2]) > 1:
        return pd.read_csv(path, header=[0, 1], index_col=0)
    return pd.read_csv(path)


# --------------------------------------------------------------------------- report
@dataclass
class Section:
    """One part of a report.

    Attributes
    ----------
    heading : str
        ``## heading``.
    text : str
        Markdown paragraph(s) under the heading.
    tables : list
        DataFrames, or ``(caption, DataFrame)`` pairs, rendered with :func:`markdown_table`.
    images : list
        Image paths (relative to the run folder, or absolute inside it), or ``(caption,
        path)`` pairs. Missing files are listed as missing, never linked.
    files : list
        Other files to link (CSV, JSON), same forms as ``images``.
    floatfmt : str
        Number format of this section's tables.
    max_rows : int
        Longer tables are cut, with a note giving the number of rows left out.
    """

    heading: str
    text: str = ""
    tables: list = field(default_factory=list)
    images: list = field(default_factory=list)
    files: list = field(default_factory=list)
    floatfmt: str = ".2f"
    max_rows: int = 60


def _as_section(section: Section | Mapping[str, Any]) -> Section:
    if isinstance(section, Section):
        return section
    if isinstance(section, Mapping):
        values = dict(section)
        if "table" in values:  # convenience: one table
            table = values.pop("table")
            values.setdefault("tables", [])
            values["tables"] = ([table] if table is not None else []) + list(values["tables"])
        known = {f.name for f in dataclasses.fields(Section)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"section keys {unknown} are not known; use {sorted(known | {'table'})}")
        if "heading" not in values:
            raise ValueError("a section needs a 'heading'")
        return Section(**values)
    raise ValueError(f"a section must be a Section or a dict, got {type(section).__name__}")


def _captioned(item) -> tuple[str | None, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item
    return None, item


def _link_target(run_dir: Path, path: str | os.PathLike) -> tuple[str, bool]:
    """(link relative to ``run_dir`` with forward slashes and URL-quoting, exists?)."""
    path = Path(path)
    full = path if path.is_absolute() else run_dir / path
    relative = Path(os.path.relpath(full, run_dir)).as_posix()
    return quote(relative), full.is_file()


def _settings_dict(settings) -> dict | None:
    if settings is None:
        return None
    if dataclasses.is_dataclass(settings):
        return dataclasses.asdict(settings)
    if isinstance(settings, Mapping):
        return dict(settings)
    raise ValueError(f"settings must be a Settings object or a dict, got {type(settings).__name__}")


def _settings_markdown(settings: dict | None) -> str:
    if not settings:
        return "Settings: not recorded (no settings given and no manifest.json).\n"
    rows = []
    for section, key in SUMMARY_SETTINGS:
        values = settings.get(section)
        if isinstance(values, Mapping) and key in values:
            # None means "resolved at run time" (data root from the environment, ...)
            rows.append({"setting": f"{section}.{key}", "value": format_cell(values[key], "g", "auto")})
    text = ""
    if settings.get("description"):
        text += f"{settings['description']}\n\n"
    text += markdown_table(pd.DataFrame(rows), index=False)
    full = yaml.safe_dump(settings, sort_keys=False, default_flow_style=None)
    text += f"\n<details><summary>All settings</summary>\n\n```yaml\n{full}```\n\n</details>\n"
    return text


def _render_section(section: Section, run_dir: Path) -> str:
    out = [f"## {section.heading}\n"]
    if section.text:
        out.append(section.text.rstrip() + "\n")
    for item in section.tables:
        caption, table = _captioned(item)
        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"section {section.heading!r}: tables must be DataFrames, got "
                             f"{type(table).__name__}")
        if caption:
            out.append(f"**{caption}**\n")
        shown = table.head(section.max_rows)
        out.append(markdown_table(shown, floatfmt=section.floatfmt))
        if len(table) > len(shown):
            out.append(f"*{len(table) - len(shown)} more rows not shown.*\n")
    links = []
    for kind, items in (("image", section.images), ("file", section.files)):
        for item in items:
            caption, path = _captioned(item)
            target, exists = _link_target(run_dir, path)
            name = escape(caption or Path(path).stem.replace("_", " "))
            if not exists:
                out.append(f"*{kind} not produced: `{Path(path).as_posix()}`*\n")
            elif kind == "image":
                out.append(f"![{name}]({target})\n")
            else:
                links.append(f"- [{name}]({target})")
    if links:  # a section of nothing but links needs no label
        label = "Files:\n\n" if len(out) > 1 else ""
        out.append(label + "\n".join(links) + "\n")
    return "\n".join(out)


def write_report(run_dir: str | os.PathLike, title: str,
                 sections: Sequence[Section | Mapping[str, Any]], settings=None,
                 filename: str = "REPORT.md", lead: str = "",
                 appendix: Sequence[Section | Mapping[str, Any]] = ()) -> Path:
    """Write ``<run_dir>/REPORT.md`` atomically.

    Layout: ``# title``, ``lead``, the ``sections``, ``## Settings``, the ``appendix``.

    Parameters
    ----------
    run_dir : path-like
        The run folder (``results/<profile>``); every link is relative to it.
    title : str
        ``# title``.
    sections : sequence of Section or dict
        In order. A dict takes :class:`Section`'s fields, plus ``table`` for a single
        DataFrame.
    settings : Settings or dict, optional
        Summarised after the sections (a table of the main settings and, folded, all of
        them). Default: the ``settings`` recorded in ``run_dir/manifest.json``, if any.
    filename : str
        Name of the report inside ``run_dir``.
    lead : str
        Markdown right under the title (the answer of the study).
    appendix : sequence of Section or dict
        Sections after the settings (provenance, list of files).

    Returns
    -------
    Path
        The report's path.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; run the study first")
    sections = [_as_section(s) for s in sections]
    appendix = [_as_section(s) for s in appendix]
    settings_dict = _settings_dict(settings)
    if settings_dict is None and (run_dir / "manifest.json").is_file():
        settings_dict = read_json(run_dir / "manifest.json").get("settings")
    parts = [f"# {title}\n"]
    if lead.strip():
        parts.append(lead.rstrip() + "\n")
    parts += [_render_section(section, run_dir) for section in sections]
    parts += ["## Settings\n", _settings_markdown(settings_dict)]
    parts += [_render_section(section, run_dir) for section in appendix]
    return write_text(run_dir / filename, "\n".join(parts))


# --------------------------------------------------------------------------- the study
def _history_files(run_dir: Path) -> dict[str, Path]:
    """Model name (``openunmix`` or ``openunmix/seed42``) -> its history CSV."""

    models = run_dir / "models"
    found = {}
    for path in sorted(models.glob(f"*/{HISTORY_CSV_NAME}")) + sorted(models.glob(f"*/*/{HISTORY_CSV_NAME}")):
        found[path.parent.relative_to(models).as_posix()] = path
    return found


def stop_reason(history_json: Path) -> str | None:
    """Why a training run stopped: its ``history.json``'s ``stop_reason`` (None when the file
    is missing, unreadable or says nothing)."""
    try:
        data = read_json(history_json)
    except (OSError, ValueError):
        return None
    return data.get("stop_reason") if isinstance(data, Mapping) else None


def loss_summary(histories: Mapping[str, pd.DataFrame],
                 stop_reasons: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Final and best losses per model, from training histories, and whether each run
    reached its plateau (:func:`melunmix.analysis.plateau.at_plateau`).

    Parameters
    ----------
    histories : dict of str -> DataFrame
        Columns ``epoch``, ``train_loss``, ``valid_loss`` (as ``models/<name>/history.csv``).
    stop_reasons : dict of str -> str, optional
        Why each run stopped (``history.json``'s ``stop_reason``: ``"early_stopping"``,
        ``"epochs"``...); an early-stopped run is at its plateau.

    Returns
    -------
    DataFrame
        Index model; columns ``epochs``, ``final train loss``, ``final valid loss``,
        ``best valid loss``, ``best epoch``, ``last quarter gain`` (fraction of the best
        validation loss its last quarter of epochs gained), ``plateau`` (bool).
    """
    stop_reasons = stop_reasons or {}
    rows = {}
    for name, df in histories.items():
        missing = [c for c in ("epoch", "train_loss", "valid_loss") if c not in df.columns]
        if missing:
            raise ValueError(f"history of {name!r} is missing column(s) {missing}")
        df = df.sort_values("epoch")
        valid = df["valid_loss"].astype(float)
        best = valid.idxmin() if valid.notna().any() else None
        rows[name] = {
            "epochs": int(len(df)),
            "final train loss": float(df["train_loss"].iloc[-1]),
            "final valid loss": float(valid.iloc[-1]),
            "best valid loss": float(valid.min()) if best is not None else float("nan"),
            "best epoch": int(df.loc[best, "epoch"]) if best is not None else None,
            "last quarter gain": last_quarter_gain(valid),
            "plateau": at_plateau(valid, stop_reasons.get(name)),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


def matched_steps(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The models side by side at matched optimiser steps, from their validation histories.

    At the first four epochs with a validation vocals SDR (``valid_sdr``) that every run
    reached, and at each run's best validation loss (its plateau), the mean ± sd over a model's
    runs (seeds). All runs of a study see the same data, so an epoch is the same number of
    steps for each; the column names give the steps where ``step`` is recorded.

    Parameters
    ----------
    histories : dict of str -> DataFrame
        Method (``<model>-seed<N>`` or ``<model>``) -> history with ``epoch``,
        ``valid_loss`` and optionally ``valid_sdr`` and ``step``.

    Returns
    -------
    DataFrame
        Index model; columns ``valid SDR at step <n> (dB)`` for each matched epoch, then
        ``best valid loss`` and ``runs``. Empty without histories.
    """
    histories = {method: df for method, df in histories.items() if len(df)}
    if not histories:
        return pd.DataFrame()
    reached = min(int(df["epoch"].max()) for df in histories.values())
    epochs = None
    for df in histories.values():
        if "valid_sdr" not in df.columns:
            epochs = set()
            break
        recorded = set(df.loc[df["valid_sdr"].notna() & (df["epoch"] <= reached), "epoch"].astype(int))
        epochs = recorded if epochs is None else epochs & recorded
    by_model: dict[str, list[pd.DataFrame]] = {}
    for method, df in histories.items():
        by_model.setdefault(split_seed(str(method))[0], []).append(df.sort_values("epoch"))

    def spread(values: list[float], digits: int) -> str:
        values = np.asarray(values, dtype=float)
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        return f"{values.mean():.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")

    matched = sorted(epochs or ())[:4]  # early in training: the first four matched points
    # one label per epoch for every model: the steps where any run recorded them
    steps = {}
    for df in histories.values():
        if "step" in df.columns:
            for epoch, step in zip(df["epoch"], df["step"]):
                if int(epoch) in matched and np.isfinite(step):
                    steps.setdefault(int(epoch), int(step))
    labels = {e: f"valid SDR at {'step ' + str(steps[e]) if e in steps else 'epoch ' + str(e)} (dB)" for e in matched}
    rows = {}
    for model in order_methods(list(by_model)):
        runs = by_model[model]
        row = {}
        for epoch in matched:
            at = [df.loc[df["epoch"] == epoch].iloc[0] for df in runs]
            row[labels[epoch]] = spread([a["valid_sdr"] for a in at], 2)
        row["best valid loss"] = spread([df["valid_loss"].min() for df in runs], 3)
        row["runs"] = len(runs)
        rows[model] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


#: First line of a report on generated stand-in data (manifest ``"stand_in": true``).
STAND_IN_WARNING = ("**Stand-in data: every number in this report is on generated stand-in "
                    "data, not MUSDB18.**")


@dataclass(frozen=True)
class StudyPart:
    """One section of the study report and the files it shows, in order.

    Attributes
    ----------
    heading : str
        ``## heading``.
    items : tuple of str
        ``"figures/<name>.png"`` (shown as an image), ``"tables/<name>"`` (the Markdown
        ``tables/<name>.md`` that the run wrote, else ``tables/<name>.csv`` rendered),
        ``"tuning"`` (trials and best parameters of ``tuning/``) or ``"losses"`` (the
        run's ``tables/losses.csv``, else a summary of ``models/*/history.csv``).
    text : str
        Markdown shown first, when the part has something on disk.
    """

    heading: str
    items: tuple[str, ...]
    text: str = ""
    #: ``(setting, text)``: shown instead of "not run" when the run's ``section.name``
    #: setting is false (the profile chose not to produce this part).
    off: tuple[str, str] | None = None


def _figure(name: str) -> str:
    """A report item of a registered figure (:data:`melunmix.base.names.FIGURES`)."""
    return f"figures/{figure_file(name)}"


def _table(name: str) -> str:
    """A report item of a registered table (:data:`melunmix.base.names.TABLES`)."""
    return f"tables/{table_file(name, '')}"


#: The study report after its opening answer, section by section, naming every file it
#: shows. A figure or table of the run that no part names is shown under "Other figures
#: and tables" (and every file is linked under "Files" at the end).
STUDY_PARTS = (
    StudyPart("Main table", (_table("main"),),
              "Median over frames, then over songs (dB), per training seed; mean ± sd over "
              "seeds. params: trainable parameters."),
    StudyPart("Paired differences", (_figure("paired_differences"), _table("paired_differences")),
              "Each model minus the baseline, and the proposed model minus each control, song "
              "by song (same seed paired): median over songs, bootstrap interval resampling songs "
              "and seeds (crossed), Wilcoxon p over songs, a t-test over seeds, Holm over the "
              "full-training rows, and the verdict with its equivalence test at ±0.2 dB."),
    StudyPart("Training", ("losses", _table("matched_steps"), _figure("learning_curves"),
                           _figure("loss_curves")),
              "Learning curves: validation loss and SDR against optimiser steps, each seed a thin "
              "line, the median over seeds a thick one. Matched steps: the models' validation "
              "vocals SDR at the same optimiser steps early in training, and their best validation "
              "loss (the plateau), mean ± sd over seeds."),
    StudyPart("Scores per method and seed",
              (_figure("boxplots_vocals"), _figure("boxplots_accompaniment"),
               _figure("metric_table"), _table("poster"), _table("seeds"), _table("wilcoxon"),
               _table("per_track"))),
    StudyPart("Training length: half against full training",
              (_figure("training_length"), _table("model_medians")),
              off=("evaluate.half_training",
                   "*Not run by this profile (`evaluate.half_training: false`): the models are "
                   "compared early in training at matched optimiser steps on their validation "
                   "curves (Training), not by scoring half-trained weights on the test songs.*")),
    StudyPart("Tuning", ("tuning", _figure("tuning_search_space"), _figure("tuning_lr_curves"),
                         _figure("tuning_transfer"))),
    StudyPart("Data", (_figure("example_mixture"), _figure("example_vocals"),
                       _figure("stem_loudness"), _figure("vocal_spectrogram"))),
    StudyPart("Features", (_figure("features"), _figure("scaler_statistics"))),
    StudyPart("Separation examples", (_figure("spectrograms"),)),
)

#: Tables only linked under "Files" (one row per method, target and metric: too long to show).
LINKED_ONLY = (_table("bootstrap_ci"),)


def _per_track_view(table: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """Per-track scores (museval's long format) as tracks x models: vocals SDR, seed mean."""
    rows = table[(table["target"] == "vocals") & (table["metric"] == "SDR")]
    if rows.empty:
        return None
    rows = rows.assign(model=[split_seed(m)[0] for m in rows["method"]])
    several = (rows.groupby("model")["method"].nunique() > 1).any()
    wide = rows.pivot_table(index="track", columns="model", values="score", aggfunc="mean")
    wide = wide[order_methods(wide.columns)]
    wide.columns.name = None
    return ("per track: vocals SDR (dB), median over frames"
            + (", mean over seeds" if several else "")), wide


def _training_length_view(table: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """Model medians of the models that have a half-training checkpoint, vocals SDR."""
    rows = table[(table["target"] == "vocals") & (table["metric"] == "SDR")].set_index("model")
    halves = [m for m in rows.index if str(m).endswith(HALF_SUFFIX)
              and str(m)[: -len(HALF_SUFFIX)] in rows.index]
    if not halves:
        return None
    models = order_methods(halves + [m[: -len(HALF_SUFFIX)] for m in halves])
    columns = ["n_songs", "n_seeds", "median", "ci_low", "ci_high"]
    return ("vocals SDR (dB): median over songs of seed-mean per-track medians, bootstrap "
            "interval over songs and seeds"), rows.loc[models, columns]


#: Tables shown through a view of their own instead of as written: name -> view.
_TABLE_VIEWS = {_table("per_track"): _per_track_view, _table("model_medians"): _training_length_view}


def study_answer(run_dir: str | os.PathLike, target: str = "vocals", metric: str = "SDR",
                 stand_in: bool | None = None) -> str:
    """The opening of the study report: each model against the baseline, in words.

    Read from ``tables/paired_differences.csv`` (:func:`melunmix.analysis.result_tables.write_tables`):
    the proposed model's sentence (:func:`melunmix.analysis.sentences.answer_sentence`) first, then one
    bullet per other model, then one per control the proposed model was compared with. Preceded by :data:`STAND_IN_WARNING` when ``stand_in`` is
    True, or, when it is None, when ``manifest.json`` says ``"stand_in": true``.
    """
    run_dir = Path(run_dir)
    if stand_in is None:
        manifest_path = run_dir / "manifest.json"
        manifest = read_json(manifest_path) if manifest_path.is_file() else {}
        stand_in = isinstance(manifest, Mapping) and manifest.get("stand_in") is True
    lines = []
    if stand_in:
        lines.append(STAND_IN_WARNING + "\n")
    path = run_dir / "tables" / table_file("paired_differences")
    if not path.is_file():
        lines.append("**Answer:** *not available: no `tables/paired_differences.csv` (notebook 05 "
                     "writes it with `result_tables.write_tables` once the baseline and another model "
                     "are scored).*\n")
        return "\n".join(lines)
    paired = pd.read_csv(path)
    rows = paired[(paired["target"] == target) & (paired["metric"] == metric)]
    models = order_methods(rows["model"].unique())
    if not models:
        lines.append(f"**Answer:** *not available: no {target} {metric} rows in `{path.name}`.*\n")
        return "\n".join(lines)
    first = PROPOSED if PROPOSED in models else models[0]
    baseline = str(rows["baseline"].iloc[0]) if "baseline" in rows.columns else BASELINE
    controls = list(dict.fromkeys(str(b) for m, b in zip(rows["model"], rows["baseline"])
                                  if m == first and b != baseline))
    lines.append("**Answer:** " + answer_sentence(paired, first, baseline, target, metric) + "\n")
    # Fully trained models here; the half-training weights answer another question (does
    # longer training change the comparison?) in the "Training length" section.
    others = [m for m in models if m != first and not str(m).endswith(HALF_SUFFIX)]
    if others:
        lines.append("\n".join("- " + answer_sentence(paired, m, baseline, target, metric)
                               for m in others) + "\n")
    if controls:  # the proposed model against each control: what the second branch adds
        lines.append("\n".join("- " + answer_sentence(paired, first, control, target, metric)
                               for control in controls) + "\n")
    if any(str(m).endswith(HALF_SUFFIX) for m in models):
        lines.append("Half against full training: see *Training length* below.\n")
    return "\n".join(lines)


def _image(run_dir: Path, relative: str) -> str:
    target, _ = _link_target(run_dir, relative)
    return f"![{escape(Path(relative).stem.replace('_', ' '))}]({target})\n"


def _table_markdown(run_dir: Path, name: str, floatfmt: str = ".2f") -> str | None:
    """``tables/<name>`` for the report: its view (:data:`_TABLE_VIEWS`), else the Markdown
    ``tables/<name>.md`` that the run wrote, else ``tables/<name>.csv`` rendered."""
    md_path, csv_path = run_dir / f"{name}.md", run_dir / f"{name}.csv"
    caption = Path(name).name.replace("_", " ")
    if name in _TABLE_VIEWS:
        view = _TABLE_VIEWS[name](read_table(csv_path)) if csv_path.is_file() else None
        if view is None:
            return None
        caption, table = view
    elif md_path.is_file():
        return f"**{caption}**\n\n{md_path.read_text().strip()}\n"
    elif csv_path.is_file():
        table = read_table(csv_path)
    else:
        return None
    return f"**{caption}**\n\n" + _limited_table(table, floatfmt)


def _limited_table(table: pd.DataFrame, floatfmt: str, max_rows: int = 60) -> str:
    text = markdown_table(table.head(max_rows), floatfmt=floatfmt)
    if len(table) > max_rows:
        text += f"\n*{len(table) - max_rows} more rows not shown.*\n"
    return text


def _values_used(run_dir: Path) -> pd.DataFrame | None:
    """What each model trained with (its runs' ``settings.json``): lr, decay, weight decay
    and where the values came from; one row per model when its seeds agree."""
    rows = []
    for path in sorted((run_dir / "models").glob("**/settings.json")):
        try:
            saved = read_json(path)
        except (OSError, ValueError):
            continue
        train = saved.get("train") or {}
        tuned_file = Path(saved["tuned_from"]) if saved.get("tuned_from") else None
        tuned_from = tuned_file.parent if tuned_file is not None else None
        source = "profile" if tuned_from is None else f"tuning/{tuned_file.name}" \
            if tuned_file.name == "shared_recipe.json" else "tuning" if tuned_from.name == "tuning" \
            else f"tuning/{tuned_from.name}"
        rows.append({
            "model": saved.get("model"), "seed": saved.get("seed"),
            "lr": train.get("lr"), "lr_decay_gamma": train.get("lr_decay_gamma"),
            "weight_decay": train.get("weight_decay"),
            "from": source,
        })
    if not rows:
        return None
    table = pd.DataFrame(rows)
    values = ["lr", "lr_decay_gamma", "weight_decay", "from"]
    grouped = table.groupby("model", sort=False).agg(
        seeds=("seed", "count"), **{name: (name, lambda v: v.iloc[0] if v.nunique() == 1 else "differ")
                                     for name in values})
    return grouped.loc[[m for m in order_methods(grouped.index) if m in grouped.index]]


def _tuning_markdown(run_dir: Path) -> str | None:
    tuning = run_dir / "tuning"
    out = []
    used = _values_used(run_dir)
    if used is not None:
        out.append("**values training used** (from each run's settings.json; *from*: the search "
                   "folder they were tuned in, or the profile)\n\n" + markdown_table(used, floatfmt=".3g"))
    trials = tuning / "trials.csv"
    if trials.is_file():  # the per-epoch histories of every trial are only linked
        out.append("**trials**\n\n" + _limited_table(pd.read_csv(trials), ".3g"))
    per_model = [path for path in sorted(tuning.glob("*/trials.csv"))
                 if path.parent.name not in ("trials", "transfer", "features")]
    if per_model:
        frames = [pd.read_csv(path).assign(model=path.parent.name) for path in per_model]
        table = pd.concat(frames, ignore_index=True).set_index(["model", "trial"])
        out.append("**trials of each model's search** (*sampler*: a random start-up draw or chosen by "
                   "TPE from the trials before)\n\n" + _limited_table(table, ".3g", max_rows=100))
    shared = tuning / "shared_recipe.json"
    fit = tuning / "recipe_fit.csv"
    if shared.is_file() and fit.is_file():
        recipe = read_json(shared)
        values = ", ".join(f"{k} = {v:.3g}" for k, v in recipe.items() if isinstance(v, (int, float)))
        out.append(f"**one recipe for every model** ({values}): {recipe['search']['rule']} "
                   f"({recipe['search']['candidates']} candidates). How it suits each model: its "
                   "validation loss against the model's own best (*gap*, %) and its rank among the "
                   "model's finished trials.\n\n"
                   + markdown_table(pd.read_csv(fit).set_index("model"), floatfmt=".3g"))
    for figure in sorted((run_dir / "figures").glob("tuning_search_space_*.png")):
        out.append(_image(run_dir, f"figures/{figure.name}"))
    best = tuning / "best_params.json"
    if best.is_file():
        params = read_json(best)
        if isinstance(params, Mapping):
            flat = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}
            table = pd.DataFrame({"value": pd.Series(flat, dtype=object)}).rename_axis("parameter")
            # learning rates: 0.003, not 0.00
            out.append("**best parameters**\n\n" + markdown_table(table, floatfmt=".3g"))
    return "\n".join(out) or None


def _losses_markdown(run_dir: Path) -> str | None:
    saved = _table_markdown(run_dir, _table("losses"), ".4g")
    if saved is not None:  # the run's own loss table wins over the summary made here
        return saved
    files = _history_files(run_dir)
    histories = {name: pd.read_csv(path) for name, path in files.items()}
    if not histories:
        return None
    # history.json beside history.csv: why each run stopped
    summary = loss_summary(histories, {name: stop_reason(path.with_suffix(".json"))
                                       for name, path in files.items()})
    return "**losses (MSE)**\n\n" + markdown_table(summary.loc[order_methods(summary.index)],
                                                 floatfmt=".4g")


def _render_item(run_dir: Path, item: str) -> str | None:
    if item == "tuning":
        return _tuning_markdown(run_dir)
    if item == "losses":
        return _losses_markdown(run_dir)
    if item.startswith("figures/"):
        return _image(run_dir, item) if (run_dir / item).is_file() else None
    if item.startswith("tables/"):
        return _table_markdown(run_dir, item)
    raise ValueError(f"study report item {item!r} is not figures/<name>.png, tables/<name>, "
                     "'tuning' or 'losses'")


def _shown_files(parts: Sequence[StudyPart]) -> set[str]:
    shown = set(LINKED_ONLY) | {_table("losses")}
    for part in parts:
        shown.update(item for item in part.items if "/" in item)
    return shown


def _other_files(run_dir: Path, parts: Sequence[StudyPart]) -> list[str]:
    """Figures and tables of the run that no part names (``figures/x.png``, ``tables/y``)."""
    shown = _shown_files(parts)
    figures = [f"figures/{p.name}" for p in sorted((run_dir / "figures").glob("*.png"))]
    tables = list(dict.fromkeys(f"tables/{p.stem}" for p in sorted((run_dir / "tables").glob("*"))
                                if p.suffix in (".csv", ".md")))
    return [item for item in figures + tables
            if item not in shown and not item.startswith("figures/tuning_search_space_")]


def _file_list(run_dir: Path) -> list[tuple[str, Path]]:
    files = []
    for folder in ("tables", "figures", "tuning"):
        files += sorted(p for p in (run_dir / folder).glob("*") if p.is_file()
                        and not p.name.startswith("."))
    histories = _history_files(run_dir)
    files += [histories[name] for name in order_methods(histories)]
    if (run_dir / "manifest.json").is_file():
        files.append(run_dir / "manifest.json")
    return [(p.relative_to(run_dir).as_posix(), p.relative_to(run_dir)) for p in files]


def _provenance(manifest: Mapping) -> Section:
    provenance = Section(heading="Provenance")
    if not manifest:
        provenance.text = "*no manifest.json: run the study with `melunmix reproduce`*"
        return provenance
    facts = {k: manifest.get(k) for k in ("profile", "stand_in", "git_commit", "total_seconds")
             if manifest.get(k) is not None}
    fingerprint = manifest.get("data_fingerprint")
    if isinstance(fingerprint, Mapping):
        facts.update({f"data {k}": v for k, v in fingerprint.items()})
    rerendered = manifest.get("rerendered")
    if isinstance(rerendered, Mapping):  # scripts/rerender_tables.py: tables re-derived later
        facts.update({f"re-derived {k}": v for k, v in rerendered.items()
                      if k in ("git_commit", "date", "from", "note")})
    machine = manifest.get("machine")
    if isinstance(machine, Mapping):  # training's numbers depend on it (README, Testing)
        facts.update({f"machine {k}": v for k, v in machine.items() if v is not None})
    if facts:
        provenance.tables.append(
            ("run", pd.DataFrame({"value": pd.Series(facts, dtype=object)}).rename_axis("item")))
    notebooks = manifest.get("notebooks") or {}
    if notebooks:
        provenance.tables.append(
            ("notebooks", pd.DataFrame.from_dict(notebooks, orient="index").rename_axis("notebook")))
    packages = manifest.get("packages") or {}
    if packages:
        provenance.tables.append(
            ("packages", pd.DataFrame({"version": pd.Series(packages, dtype=object)})
             .rename_axis("package")))
    provenance.floatfmt = ".1f"
    return provenance


def _not_run(part: StudyPart, settings: Mapping | None) -> str:
    """What a part with no files says: why, when the profile turned it off."""
    if part.off is not None and settings:
        section, name = part.off[0].split(".")
        if (settings.get(section) or {}).get(name) is False:
            return part.off[1]
    return NOT_RUN


def build_study_report(run_dir: str | os.PathLike, settings=None,
                       title: str | None = None, stand_in: bool | None = None) -> Path:
    """Write the study's REPORT.md from what exists under ``run_dir``.

    Layout, top to bottom:

    1. the title and :func:`study_answer` (the stand-in warning first when the manifest
       says ``"stand_in": true``, then each model against the baseline in words);
    2. the parts of :data:`STUDY_PARTS` in order (main table, paired differences,
       training, scores per method and seed, half against full training, tuning, data,
       features, separation examples), each showing the files it names that exist;
       a part with none says "not run";
    3. "Other figures and tables": files under ``figures/`` and ``tables/`` that no part
       names (so a new figure is never lost, only unplaced);
    4. the settings (summary and, folded, all of them), the provenance of
       ``manifest.json`` (commit, time per notebook, packages) and the list of every file.

    Parameters
    ----------
    run_dir : path-like
        ``results/<profile>``.
    settings : Settings or dict, optional
        Default: those recorded in ``manifest.json``.
    title : str, optional
        Default: ``melunmix study: <profile>``.
    stand_in : bool, optional
        The run used generated stand-in data where MUSDB18 was expected (``Run.stand_in``);
        default: ``"stand_in"`` of ``manifest.json``.

    Returns
    -------
    Path
        ``run_dir/REPORT.md``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; run the study first")
    manifest = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
    settings_dict = _settings_dict(settings) or manifest.get("settings")
    profile = (settings_dict or {}).get("name") or manifest.get("profile") or run_dir.name

    sections = []
    for part in STUDY_PARTS:
        rendered = [text for text in (_render_item(run_dir, item) for item in part.items) if text]
        if rendered and part.text:
            rendered.insert(0, part.text + "\n")
        sections.append(Section(heading=part.heading, text="\n".join(rendered) or _not_run(part, settings_dict)))
    others = _other_files(run_dir, STUDY_PARTS)
    if others:
        rendered = [_render_item(run_dir, item) for item in others]
        sections.append(Section(heading="Other figures and tables",
                                text="\n".join(text for text in rendered if text)))

    files = Section(heading="Files", files=_file_list(run_dir))
    if not files.files:
        files.text = "*no files yet*"
    return write_report(run_dir, title or f"melunmix study: {profile}", sections,
                        settings=settings_dict, lead=study_answer(run_dir, stand_in=stand_in),
                        appendix=[_provenance(manifest), files])
