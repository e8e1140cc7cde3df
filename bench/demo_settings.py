"""Try training settings for the demo profile: one model, scored against MIX on a few test songs.

The demo must beat SiSEC's MIX reference (the mixture as the estimate) by at least 3 dB
median vocals SDR within its time budget. This script trains one model with the demo
profile plus overrides, then scores it and MIX on the first test songs of the demo's
dataset, and prints the median vocals SDR of each (median over frames, then over songs, as
the study's tables), the difference, and the training minutes. Training is skipped when
its folder already holds the finished run, so a second call only rescores.

Usage::

    .venv/bin/python bench/demo_settings.py --out /tmp/demo-try/a \\
        --set train.epochs=10 --set data.samples_per_track=16 --set train.lr=0.002

``--set KEY=VALUE`` takes a dotted profile key and a YAML value (repeatable). Tuned values
are not read (``train.use_tuned`` false): the profile's own lr and decays train, so what
a tuning search should find can be tried directly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _override(pairs: list[str]) -> dict:
    import yaml

    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {pair!r}")
        node = out
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--out", type=Path, required=True, help="folder for the model, statistics and scores")
    parser.add_argument("--model", default="openunmix")
    parser.add_argument("--songs", type=int, default=6, help="test songs scored (the first N)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--jobs", type=int, default=2, help="scoring processes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from melunmix import datasets
    from melunmix.scoring import evaluate
    from melunmix.analysis import result_tables, score_frames
    from melunmix.base.config import load_profile
    from melunmix.training.training_data import prepare_data
    from melunmix.training.train import train

    overrides = _override(args.sets)
    overrides.setdefault("train", {})["use_tuned"] = False
    settings = load_profile(args.profile, overrides)
    torch.set_num_threads(args.threads)
    data = prepare_data(settings, stats_dir=args.out / "features", progress=False)
    start = time.perf_counter()
    result = train(args.model, settings, data, out_dir=args.out / "models" / args.model, progress=False)
    minutes = (time.perf_counter() - start) / 60
    tracks = datasets.find_tracks(data.root, "test")[: args.songs]
    eval_dir = args.out / "eval"
    ev = settings.evaluate
    evaluate.evaluate_model({"vocals": result.weights}, tracks, eval_dir, args.model, niter=ev.niter,
                            softmask=ev.softmask, residual=ev.residual, wiener_win_len=ev.wiener_win_len,
                            jobs=args.jobs, progress=False)
    evaluate.evaluate_oracle("MIX", tracks, eval_dir, jobs=args.jobs, progress=False)
    table = result_tables.track_table(score_frames.load_scores(eval_dir, [args.model, "MIX"]))
    sdr = table[(table.target == "vocals") & (table.metric == "SDR")].pivot(index="track", columns="method",
                                                                           values="score")
    medians = sdr.median()
    print(f"settings: {' '.join(args.sets) or '(profile as is)'}")
    print(f"data {data.root.name}, {len(data.train_tracks)} train songs; best epoch {result.best_epoch}; "
          f"training {minutes:.1f} min this call")
    print(f"median vocals SDR over {len(sdr)} test songs: {args.model} {medians[args.model]:.2f} dB, "
          f"MIX {medians['MIX']:.2f} dB, difference {medians[args.model] - medians['MIX']:+.2f} dB "
          f"(per-song differences: median {np.median(sdr[args.model] - sdr['MIX']):+.2f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
