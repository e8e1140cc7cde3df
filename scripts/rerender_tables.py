"""Re-derive a committed run's tables, figures and REPORT from its per-track scores.

    .venv/bin/python scripts/rerender_tables.py results/study

For a results folder whose museval JSON files are gone (they are not committed) but whose
``tables/per_track.csv`` is: the statistics and their presentation are recomputed with
this checkout's code (``result_tables.write_tables``, the score figures, ``report``), the scores
themselves are not. Nothing is trained, separated or scored. The tables the run wrote from
other inputs (``losses``) and the figures drawn from audio, histories or tuning stay as
they are. The manifest records what was re-derived, at which commit, under
``"rerendered"``; the report's provenance shows it.

Use it when the analysis changes (a new interval, a new test, how residue is shown) and
the run itself is still the one to show; rerun the study (`make reproduce`) otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

#: The figures re-drawn from the tables (the rest come from audio, histories or tuning).
FIGURES = ("metric_table.png", "boxplots_vocals.png", "boxplots_accompaniment.png",
           "paired_differences.png", "training_length.png")


def rerender(run_dir: Path) -> dict:
    from melunmix.base import files, names, provenance
    from melunmix.analysis import score_figures, result_tables
    from melunmix.study import report

    commit = provenance.git_commit()  # before this writes into tracked files
    tables, figures = run_dir / "tables", run_dir / "figures"
    per_track_path = tables / "per_track.csv"
    if not per_track_path.is_file():
        raise SystemExit(f"{per_track_path} does not exist: nothing to re-derive the tables from; "
                         "rerun the study (make reproduce)")
    manifest_path = run_dir / "manifest.json"
    manifest = files.read_json(manifest_path) if manifest_path.is_file() else {}
    settings = manifest.get("settings") or {}
    bootstrap = int(settings.get("evaluate", {}).get("bootstrap", 10000))

    per_track = pd.read_csv(per_track_path)
    main = pd.read_csv(tables / "main.csv", index_col=0) if (tables / "main.csv").is_file() else None
    params = main["params"].dropna().astype(int).to_dict() if main is not None and "params" in main else None
    wilcoxon = tables / "wilcoxon.csv"
    compare = (list(dict.fromkeys(zip(*pd.read_csv(wilcoxon)[["method_a", "method_b"]].T.values)))
               if wilcoxon.is_file() else None)

    written = result_tables.write_tables(per_track, tables, compare=compare, bootstrap=bootstrap, params=params)
    drawn = []
    score_figures.metric_table_figure(result_tables.poster_table(per_track), path=figures / "metric_table.png")
    drawn.append("metric_table.png")
    for target in ("vocals", "accompaniment"):
        score_figures.metric_boxplots(per_track, target=target, path=figures / f"boxplots_{target}.png")
        drawn.append(f"boxplots_{target}.png")
    if "paired_differences" in written:
        score_figures.paired_differences_figure(written["paired_differences"], path=figures / "paired_differences.png")
        drawn.append("paired_differences.png")
    medians = pd.read_csv(written["model_medians"])
    if medians["model"].str.endswith(names.HALF_SUFFIX).any():
        score_figures.training_length_figure(medians, path=figures / "training_length.png")
        drawn.append("training_length.png")
    record = {
        "git_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "from": "tables/per_track.csv",
        "tables": sorted(path.name for path in written.values()),
        "figures": drawn,
        "note": "statistics and presentation re-derived from the run's per-track scores; "
                "training, separation and scoring are the run's own",
    }
    manifest["rerendered"] = record
    files.write_json(manifest_path, manifest)
    report.build_study_report(run_dir)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a results folder, e.g. results/study")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "lib"))
    record = rerender(args.run_dir.resolve())
    print(f"{args.run_dir}: re-derived {len(record['tables'])} table files and "
          f"{len(record['figures'])} figures at {record['git_commit']}; REPORT.md rebuilt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
