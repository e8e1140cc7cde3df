"""The separation examples notebook 06 plays and plots: excerpts of a test song separated by every model, saved and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base.files import atomic_path
from ..base.names import method_label
from .exploration import load_excerpt
from .run_setup import Run, model_runs


#: Folder (under the run folder) of the audio excerpts that notebook 06 plots.
EXAMPLES_DIR = "examples"


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
