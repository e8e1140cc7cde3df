"""Reading museval's JSON files with the json module alone, independently of museval's stores."""

import json

import numpy as np


def raw_track_medians(eval_dir, method):
    """{(track, target, metric): nanmedian over frames} of ``<eval_dir>/<method>/test/*.json``."""
    medians = {}
    for path in sorted((eval_dir / method / "test").glob("*.json")):
        data = json.loads(path.read_text())  # museval writes NaN literals; json reads them
        for target in data["targets"]:
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                frames = [float(f["metrics"][metric]) for f in target["frames"]]
                medians[(path.stem, target["name"], metric)] = np.nanmedian(frames)
    return medians
