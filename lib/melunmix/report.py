"""The run report: ``results/<profile>/REPORT.md``, tables and figures of a run, linked.

:func:`write_report` renders sections that the caller assembles; :func:`build_study_report`
assembles the study's standard sections (Data, Features, Tuning, Training, Evaluation,
Figures) from whatever a run folder holds and marks the missing parts "not run". Tables
are rendered by :func:`markdown_table` (pandas' ``to_markdown`` needs the optional
``tabulate`` package, which the study does not depend on). Images and files are linked by
paths relative to the run folder, so the report renders wherever the folder is copied or
committed; a file that does not exist is never linked.
"""

from __future__ import annotations

import csv
import dataclasses
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd
import yaml

from .files import read_json, write_text
from .plots import order_methods

__all__ = ["Section", "markdown_table", "read_table", "write_report", "build_study_report",
           "loss_summary", "NOT_RUN"]

NOT_RUN = "*not run*"

#: Settings shown in the report's summary table, as (section, key) of a profile.
SUMMARY_SETTINGS = (
    ("data", "root"), ("data", "sample_rate"), ("data", "targets"), ("data", "seq_dur"),
    ("data", "samples_per_track"), ("stft", "n_fft"), ("stft", "n_hop"), ("stft", "bandwidth"),
    ("model", "hidden_size"), ("model", "nb_layers"), ("model", "feature"), ("model", "n_mels"),
    ("train", "models"), ("train", "epochs"), ("train", "batch_size"), ("train", "lr"),
    ("train", "lr_decay_gamma"), ("train", "seeds"), ("tune", "enabled"), ("tune", "sample_rate"),
    ("tune", "nb_trials"), ("evaluate", "niter"), ("evaluate", "oracles"),
)


# --------------------------------------------------------------------------- tables
def _escape(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def _format_cell(value: Any, floatfmt: str, na_rep: str) -> str:
    if isinstance(value, (list, tuple)):
        return _escape(", ".join(str(v) for v in value))
    if isinstance(value, Mapping):
        return _escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return na_rep
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), floatfmt)
    return _escape(value)


def _label(key: Any) -> str:
    """Column or index label; tuples of a MultiIndex joined by a space (``vocals SDR``)."""
    if isinstance(key, tuple):
        return " ".join(str(k) for k in key if str(k) != "")
    return "" if key is None else str(key)


def markdown_table(df: pd.DataFrame, floatfmt: str = ".2f", index: bool | None = None,
                   na_rep: str = "n/a") -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    df : DataFrame
        Any frame; MultiIndex columns (e.g. ``(target, metric)``) are joined with a space,
        so ``("vocals", "SDR")`` becomes the header ``vocals SDR``.
    floatfmt : str
        Format spec of real numbers (``".2f"``: dB with 2 decimals); integers are written
        without decimals, booleans as ``True``/``False``.
    index : bool, optional
        Include the index as the first column. Default: yes unless it is the default
        ``0..n-1`` range.
    na_rep : str
        Text of missing values (NaN, None).

    Returns
    -------
    str
        Header, alignment row (numbers right-aligned) and one line per row, ending in a
        newline. Pipes and newlines inside cells are escaped.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"markdown_table needs a pandas DataFrame, got {type(df).__name__}")
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
    header = [_escape(_label(c)) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df.iloc[:, j]) and
               not pd.api.types.is_bool_dtype(df.iloc[:, j]) for j in range(df.shape[1])]
    rows = [[_format_cell(v, floatfmt, na_rep) for v in row]
            for row in df.itertuples(index=False, name=None)]
    if index:
        names = [n for n in df.index.names if n is not None]
        header = [_escape(" / ".join(map(str, names)))] + header
        numeric = [False] + numeric
        rows = [[_escape(_label(key))] + row for key, row in zip(df.index, rows)]
    align = ["---:" if is_number else ":---" for is_number in numeric]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
            rows.append({"setting": f"{section}.{key}", "value": _format_cell(values[key], "g", "auto")})
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
            name = _escape(caption or Path(path).stem.replace("_", " "))
            if not exists:
                out.append(f"*{kind} not produced: `{Path(path).as_posix()}`*\n")
            elif kind == "image":
                out.append(f"![{name}]({target})\n")
            else:
                links.append(f"- [{name}]({target})")
    if links:
        out.append("Files:\n\n" + "\n".join(links) + "\n")
    return "\n".join(out)


def write_report(run_dir: str | os.PathLike, title: str,
                 sections: Sequence[Section | Mapping[str, Any]], settings=None,
                 filename: str = "REPORT.md") -> Path:
    """Write ``<run_dir>/REPORT.md`` atomically.

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
        Summarised under the title (a table of the main settings and, folded, all of
        them). Default: the ``settings`` recorded in ``run_dir/manifest.json``, if any.
    filename : str
        Name of the report inside ``run_dir``.

    Returns
    -------
    Path
        The report's path.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; run the study first")
    sections = [_as_section(s) for s in sections]
    settings_dict = _settings_dict(settings)
    if settings_dict is None and (run_dir / "manifest.json").is_file():
        settings_dict = read_json(run_dir / "manifest.json").get("settings")
    parts = [f"# {title}\n", "## Settings\n", _settings_markdown(settings_dict)]
    parts += [_render_section(section, run_dir) for section in sections]
    return write_text(run_dir / filename, "\n".join(parts))


# --------------------------------------------------------------------------- the study
def _history_files(run_dir: Path) -> dict[str, Path]:
    """Model name (``openunmix`` or ``openunmix/seed42``) -> its history CSV."""
    models = run_dir / "models"
    found = {}
    for path in sorted(models.glob("*/history.csv")) + sorted(models.glob("*/*/history.csv")):
        found[path.parent.relative_to(models).as_posix()] = path
    return found


def loss_summary(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Final and best losses per model, from training histories.

    Parameters
    ----------
    histories : dict of str -> DataFrame
        Columns ``epoch``, ``train_loss``, ``valid_loss`` (as ``models/<name>/history.csv``).

    Returns
    -------
    DataFrame
        Index model; columns ``epochs``, ``final train loss``, ``final valid loss``,
        ``best valid loss``, ``best epoch``.
    """
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
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


#: Which files (by keywords in their names) belong to which standard section; checked in
#: this order, so ``per_track_scores`` is Evaluation although it mentions tracks.
_SECTION_KEYWORDS = {
    "Evaluation": ("poster", "metric", "median", "score", "per_track", "significance",
                   "wilcoxon", "bootstrap", "box", "eval", "oracle"),
    "Tuning": ("trial", "tuning", "search", "tune", "best_param"),
    "Data": ("dataset", "tracks", "stem", "loudness", "waveform", "duration", "split", "example"),
    "Features": ("feature", "scaler", "mfcc", "mel_", "extraction", "timing"),
    "Training": ("loss", "history", "epoch", "training"),
}


def _classify(path: Path) -> str | None:
    name = path.stem.lower()
    for section, keywords in _SECTION_KEYWORDS.items():
        if any(k in name for k in keywords):
            return section
    return None


_SCORE_COLUMNS = {"method", "track", "target", "metric", "score"}


def _table_for_report(csv_path: Path) -> tuple[str, pd.DataFrame]:
    """(caption, table) of a CSV; per-track scores in museval's long format become one
    readable table, tracks x methods, of the first target's SDR."""
    table = read_table(csv_path)
    caption = csv_path.stem.replace("_", " ")
    if not isinstance(table.columns, pd.MultiIndex) and _SCORE_COLUMNS <= set(table.columns):
        targets = list(table["target"].unique())
        target = "vocals" if "vocals" in targets else targets[0] if targets else None
        rows = table[(table["target"] == target) & (table["metric"] == "SDR")]
        if not rows.empty:
            wide = rows.pivot_table(index="track", columns="method", values="score", aggfunc="median")
            wide = wide[order_methods(wide.columns)]
            wide.columns.name = None
            return f"{caption}: {target} SDR (dB), median over frames", wide
    return caption, table


def build_study_report(run_dir: str | os.PathLike, settings=None,
                       title: str | None = None) -> Path:
    """Write the study's REPORT.md from what exists under ``run_dir``.

    Gathers ``tables/*.csv`` (rendered; a Markdown table ``tables/<name>.md`` written by
    the evaluation is used as is when present), ``figures/*.png``,
    ``models/*/history.csv`` (a loss table, unless ``tables/`` holds one), ``tuning/`` (trials table and best
    parameters) and ``manifest.json`` (provenance and time per notebook) into the
    sections Data, Features, Tuning, Training, Evaluation and Figures. Tables and
    figures go to the section their file name points at (``loss_curves.png`` ->
    Training, ``poster_table.csv`` -> Evaluation, ...); figures that match none go to
    Figures. A section with nothing on disk says "not run".

    Parameters
    ----------
    run_dir : path-like
        ``results/<profile>``.
    settings : Settings or dict, optional
        Default: those recorded in ``manifest.json``.
    title : str, optional
        Default: ``melunmix study: <profile>``.

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

    order = ["Data", "Features", "Tuning", "Training", "Evaluation", "Figures"]
    sections = {name: Section(heading=name) for name in order}

    for csv_path in sorted((run_dir / "tables").glob("*.csv")):
        section = sections[_classify(csv_path) or "Evaluation"]
        relative = csv_path.relative_to(run_dir)
        md_path = csv_path.with_suffix(".md")
        if md_path.is_file():  # the evaluation's own rendering of the same table
            section.text += f"\n**{csv_path.stem.replace('_', ' ')}**\n\n{md_path.read_text().strip()}\n"
        else:
            section.tables.append(_table_for_report(csv_path))
        section.files.append((f"{relative.as_posix()}", relative))

    tuning = run_dir / "tuning"
    sections["Tuning"].floatfmt = ".3g"  # learning rates: 0.003, not 0.00
    for csv_path in sorted(tuning.glob("*.csv")):
        relative = csv_path.relative_to(run_dir)
        if "histor" not in csv_path.stem:  # per-epoch histories of every trial: linked only
            sections["Tuning"].tables.append((csv_path.stem.replace("_", " "), pd.read_csv(csv_path)))
        sections["Tuning"].files.append((relative.as_posix(), relative))
    best = tuning / "best_params.json"
    if best.is_file():
        params = read_json(best)
        if isinstance(params, Mapping):
            flat = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}
            sections["Tuning"].tables.append(
                ("best parameters", pd.DataFrame({"value": pd.Series(flat, dtype=object)})
                 .rename_axis("parameter")))
        sections["Tuning"].files.append(("tuning/best_params.json", best.relative_to(run_dir)))

    history_files = _history_files(run_dir)
    histories = {name: pd.read_csv(path) for name, path in history_files.items()}
    # a loss table the run saved itself (tables/*loss*.csv) wins over the summary made here
    saved_loss_table = any("loss" in path.stem.lower() for path in (run_dir / "tables").glob("*.csv"))
    if histories and not saved_loss_table:
        summary = loss_summary(histories)
        summary = summary.loc[order_methods(summary.index)]
        sections["Training"].tables.insert(0, ("losses (MSE)", summary))
    if histories:
        sections["Training"].floatfmt = ".4g"
        for name in order_methods(histories):
            sections["Training"].files.append(
                (f"history of {name}", history_files[name].relative_to(run_dir)))

    figures = sorted((run_dir / "figures").glob("*.png"))
    for png in figures:
        sections[_classify(png) or "Figures"].images.append(png.relative_to(run_dir))
    if figures and not sections["Figures"].images:
        sections["Figures"].text = "Every figure of this run is shown in its section above."

    for section in sections.values():
        if not (section.text or section.tables or section.images or section.files):
            section.text = NOT_RUN

    provenance = Section(heading="Provenance")
    if manifest:
        facts = {k: manifest.get(k) for k in ("profile", "git_commit", "total_seconds")
                 if manifest.get(k) is not None}
        fingerprint = manifest.get("data_fingerprint")
        if isinstance(fingerprint, Mapping):
            facts.update({f"data {k}": v for k, v in fingerprint.items()})
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
        provenance.files.append(("manifest.json", Path("manifest.json")))
        provenance.floatfmt = ".1f"
    else:
        provenance.text = "*no manifest.json: run the study with `melunmix reproduce`*"

    return write_report(run_dir, title or f"melunmix study: {profile}",
                        [sections[name] for name in order] + [provenance], settings=settings_dict)
