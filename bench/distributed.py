"""How closely 2 training processes (torchrun, gloo) follow 1 process with the same global batch.

Trains the baseline and the proposed model for a few epochs on a tiny generated dataset,
once in one process and twice under ``torchrun --nproc_per_node 2``: with the batch
normalisation of the global batch (``melunmix.training.distributed.SyncedBatchNorm1d``, what
training uses) and, for comparison, with each rank normalising its own share (plain
``BatchNorm1d``, what DDP gives without synchronisation). Prints the largest relative
difference of the per-epoch training and validation losses from the 1-process run.

    .venv/bin/python bench/distributed.py [--epochs 4] [--work DIR]

Runs on the CPU (gloo), one thread per process; about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
#: Runs melunmix.training.train with batch normalisation left per rank (the comparison).
UNSYNCED = textwrap.dedent("""
    import sys
    import melunmix.training.distributed as distributed
    distributed.sync_batchnorm = lambda model: model
    from melunmix.commands.cli import main
    sys.exit(main(["train", *sys.argv[1:]]))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="melunmix-bench-ddp-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MELUNMIX_CACHE_DIR": str(work / "cache"), "OMP_NUM_THREADS": "1"}
    python, bin_dir = sys.executable, Path(sys.executable).parent

    from melunmix.synth import make_dataset

    root = make_dataset(work / "data", nb_train=3, nb_valid=1, nb_test=1, duration=4.0, seed=0,
                        sample_rate=16000, progress=False)
    profile = work / "ddp.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "ddp",
        "data": {"sample_rate": 16000, "seq_dur": 1.0, "samples_per_track": 16},
        "stft": {"n_fft": 256, "n_hop": 128, "bandwidth": 6000.0},
        "model": {"hidden_size": 16, "nb_layers": 1, "n_mels": 16},
        "train": {"models": ["openunmix", "melunmix"], "epochs": args.epochs, "batch_size": 8, "lr": 0.01,
                  "use_tuned": False, "progress": False, "seeds": [7]},
    }))
    common = ["--profile", str(profile), "--data-root", str(root), "--no-progress"]
    unsynced = work / "unsynced.py"
    unsynced.write_text(UNSYNCED)
    torchrun = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    runs = {
        "1 process": [python, "-m", "melunmix.training.train", *common, "--results-dir", str(work / "one")],
        "2 processes": [*torchrun, "-m", "melunmix.training.train", *common, "--results-dir", str(work / "two")],
        "2 processes, batch norm per rank": [*torchrun, str(unsynced), *common, "--results-dir",
                                             str(work / "unsynced")],
    }
    folders = dict(zip(runs, ("one", "two", "unsynced")))
    for name, command in runs.items():
        print(f"== {name}: {' '.join(command)}", flush=True)
        subprocess.run(command, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)

    def history(run: str, model: str) -> dict:
        return json.loads((work / folders[run] / "ddp" / "models" / model / "history.json").read_text())

    print(f"\nlargest relative difference from 1 process over {args.epochs} epochs "
          "(global batch 8, 4 batches per epoch, lr 0.01):")
    print("| run | model | training loss | validation loss |")
    print("|---|---|---:|---:|")
    for run in list(runs)[1:]:
        for model in ("openunmix", "melunmix"):
            one, other = history("1 process", model), history(run, model)
            cells = [np.max(np.abs(np.subtract(other[c], one[c])) / np.abs(one[c])) for c in ("train_loss", "valid_loss")]
            print(f"| {run} | {model} | {cells[0]:.1e} | {cells[1]:.1e} |")
    print(f"\nruns in {work}")


if __name__ == "__main__":
    main()
