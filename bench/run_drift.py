"""How far two runs of one profile moved apart: another CPU, the same commit.

    .venv/bin/python bench/run_drift.py RESULTS_A RESULTS_B [--target vocals --metric SDR]

RESULTS_A and RESULTS_B are two ``results/<profile>`` folders of the same profile and
commit (for example `make reproduce`, and `melunmix reproduce` with the Makefile's
``LIMITED_ISA`` and another ``MELUNMIX_RESULTS_DIR``). Prints, per method, the median over
songs of the metric in each run and its difference, the largest per-song difference, and
the difference of the final and best validation losses; then whether the two runs' tables
are byte-identical. The oracles and MIX do not train, so they show how much of the drift
is scoring (BSS Eval's rounding) rather than training.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
from pathlib import Path

import pandas as pd


def per_song(run: Path, target: str, metric: str) -> pd.DataFrame:
    table = pd.read_csv(run / "tables" / "per_track.csv")
    rows = table[(table["target"] == target) & (table["metric"] == metric)]
    return rows.pivot(index="track", columns="method", values="score")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--target", default="vocals")
    parser.add_argument("--metric", default="SDR")
    args = parser.parse_args(argv)

    a, b = per_song(args.a, args.target, args.metric), per_song(args.b, args.target, args.metric)
    print(f"{args.target} {args.metric}, {len(a)} songs: {args.a} (A) against {args.b} (B)")
    print(f"{'method':<22} {'median A':>9} {'median B':>9} {'B - A':>7} {'largest per song':>17}")
    for method in a.columns:
        if method not in b.columns:
            continue
        diff = (b[method] - a[method]).abs()
        print(f"{method:<22} {a[method].median():>9.3f} {b[method].median():>9.3f} "
              f"{b[method].median() - a[method].median():>+7.3f} {diff.max():>17.3f}")
    losses_a, losses_b = (run / "tables" / "losses.csv" for run in (args.a, args.b))
    if losses_a.is_file() and losses_b.is_file():
        la, lb = pd.read_csv(losses_a, index_col=0), pd.read_csv(losses_b, index_col=0)
        for column in ("final valid loss", "best valid loss"):
            if column in la.columns and column in lb.columns:
                change = ((lb[column] - la[column]).abs() / la[column]).max()
                print(f"largest relative difference of the {column}: {change:.2e}")
    same = all(filecmp.cmp(p, args.b / "tables" / p.name, shallow=False)
               for p in sorted((args.a / "tables").glob("*.csv")) if (args.b / "tables" / p.name).is_file())
    print(f"tables byte-identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
