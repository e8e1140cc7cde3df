"""What the committed notebooks weigh, what the refresh strips, and inline figures per resolution.

Issue 14: every notebook refresh grew the repository by megabytes (01 and 06 hold base64
WAV audio players and large inline PNGs). This script prints, for each committed
notebook under ``notebooks/``: its size, the bytes of audio players and of inline PNGs,
and its size once ``scripts/refresh_notebooks.py`` has replaced the players by one line
(:func:`strip_audio_players`, applied to the file as committed). Then it re-draws the
heaviest figures of the notebooks from the smoke run's saved results
(``results/smoke``: run ``melunmix reproduce --profile smoke`` or the notebooks first) as
the inline backend would (``bbox_inches="tight"``), at matplotlib's default 100 dpi (the
notebooks' inline resolution before :data:`melunmix.study.steps.INLINE_DPI`) and at lower
resolutions, and prints the base64 bytes of each and the ratio to 100 dpi (06: every
figure it shows, its inline PNG total per resolution). The last table estimates each
notebook's stripped size with its PNGs scaled by the measured overall ratio.

Usage::

    .venv/bin/python bench/notebook_size.py              # dpi 100, 60, 50, 45, 40
    .venv/bin/python bench/notebook_size.py --dpi 100 50
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _refresh_module():
    spec = importlib.util.spec_from_file_location("refresh_notebooks", ROOT / "scripts" / "refresh_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_weights(refresh) -> list[dict]:
    import nbformat

    rows = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        audio = png = 0
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                size = len(json.dumps(output))
                if refresh.is_audio_player(output):
                    audio += size
                elif "image/png" in output.get("data", {}):
                    png += len(output["data"]["image/png"])
        refresh.strip_audio_players(nb, path.name)
        rows.append({"notebook": path.name, "bytes": path.stat().st_size, "audio": audio, "png": png,
                     "stripped": len(nbformat.writes(nb)) + 1})
    return rows


def figures(run):
    """(notebook, name, function drawing it): the heaviest figures of 01, 02 and 04, and every figure of 06."""
    import pandas as pd

    from melunmix.analysis import audio_figures, score_figures, training_figures, result_tables, score_frames
    from melunmix.study import example_audio, exploration, presentation, run_setup, training_steps

    s = run.settings
    track = run_setup.tracks(run, "train", split="train")[0]
    excerpt = exploration.load_excerpt(track, start=0.0, duration=None)
    short = exploration.load_excerpt(track, start=0.0, duration=min(8.0, track.nb_samples / track.rate))["mixture"]
    scores = score_frames.load_scores(run.paths.eval)
    name, panels, rate = example_audio.load_examples(run)
    tables = run.paths.tables
    return [
        ("01", "example_mixture", lambda: audio_figures.waveform_and_spectrogram(excerpt["mixture"], track.rate, "mixture")),
        ("02", "features", lambda: audio_figures.feature_panel(short, s.data.sample_rate, s.stft.n_fft, s.stft.n_hop,
                                                       s.model.n_mels, s.model.n_mfcc)),
        ("04", "loss_curves", lambda: training_figures.loss_curves(training_steps.load_histories(run))),
        ("06", "boxplots_vocals", lambda: score_figures.metric_boxplots(scores, target="vocals")),
        ("06", "boxplots_accompaniment", lambda: score_figures.metric_boxplots(scores, target="accompaniment")),
        ("06", "metric_table", lambda: score_figures.metric_table_figure(result_tables.poster_table(scores))),
        ("06", "paired_differences", lambda: score_figures.paired_differences_figure(tables / "paired_differences.csv")),
        ("06", "training_length", lambda: score_figures.training_length_figure(pd.read_csv(tables / "model_medians.csv"))),
        ("06", "spectrograms", lambda: audio_figures.spectrogram_comparison(panels, rate, s.stft.n_fft, s.stft.n_hop)),
        ("06", "loss_curves (saved, shown by presentation.saved_figure)",
         lambda: presentation.saved_figure(run.paths.figures / "loss_curves.png")),
    ]


def inline_bytes(fig, dpi: int) -> int:
    """Base64 bytes of the PNG the inline backend embeds for ``fig`` at ``dpi``."""
    from IPython.core.pylabtools import print_figure

    return len(base64.b64encode(print_figure(fig, "png", bbox_inches="tight", dpi=dpi)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dpi", type=int, nargs="+", default=[100, 60, 50, 45, 40])
    args = parser.parse_args(argv)
    dpis = sorted(set(args.dpi) | {100}, reverse=True)
    refresh = _refresh_module()
    weights = notebook_weights(refresh)
    kb = lambda n: f"{n / 1024:.0f}"  # noqa: E731
    print("committed notebooks (KiB): file, audio players, inline PNG (base64), file after the refresh's audio strip")
    print("| notebook | file | audio | png | stripped |\n|---|---:|---:|---:|---:|")
    for row in weights:
        print(f"| {row['notebook']} | {kb(row['bytes'])} | {kb(row['audio'])} | {kb(row['png'])} | "
              f"{kb(row['stripped'])} |")

    os.chdir(ROOT)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from melunmix.study import run_setup

    run = run_setup.open_run("smoke", progress=False)
    print(f"\ninline PNG bytes (base64, KiB) of figures re-drawn from {run.paths.root.relative_to(ROOT)}, "
          "bbox_inches='tight'; ratio to 100 dpi")
    print("| notebook | figure | " + " | ".join(f"{d} dpi" for d in dpis) + " |\n|---|---|"
          + "---:|" * len(dpis))
    totals = dict.fromkeys(dpis, 0)
    per_06 = dict.fromkeys(dpis, 0)
    for notebook, name, draw in figures(run):
        fig = draw()
        sizes = {d: inline_bytes(fig, d) for d in dpis}
        plt.close(fig)
        for d in dpis:
            totals[d] += sizes[d]
            per_06[d] += sizes[d] if notebook == "06" else 0
        print(f"| {notebook} | {name} | " + " | ".join(
            f"{kb(sizes[d])} ({sizes[d] / sizes[100]:.2f})" for d in dpis) + " |")
    ratios = {d: totals[d] / totals[100] for d in dpis}
    print("| all | | " + " | ".join(f"{kb(totals[d])} ({ratios[d]:.2f})" for d in dpis) + " |")
    print("| 06 | every figure | " + " | ".join(kb(per_06[d]) for d in dpis) + " |")

    print("\nestimated committed size (KiB): audio stripped, PNGs scaled by the overall ratio above")
    print("| notebook | " + " | ".join(f"{d} dpi" for d in dpis) + " |\n|---|" + "---:|" * len(dpis))
    for row in weights:
        print(f"| {row['notebook']} | " + " | ".join(
            kb(row["stripped"] - row["png"] + row["png"] * ratios[d]) for d in dpis) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
