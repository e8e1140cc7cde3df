"""Milliseconds per training item: melunmix's TrainDataset vs musdb's own chunk reads.

Both build the same Open-Unmix training item from the same WAV tracks: four sources,
each from a random track, a random 6 s chunk, a random gain in [0.25, 1.25], a random
channel swap, mixture = sum. melunmix reads with soundfile partial reads; musdb reads
every chunk through an ffmpeg subprocess (``musdb.DB(..., is_wav=True)`` with
``track.chunk_start`` / ``track.chunk_duration``, as Open-Unmix's musdb loader does).

Usage::

    python bench/loader.py                  # generates a small dataset in a temp folder
    python bench/loader.py --data-root DIR  # an existing MUSDB18-HQ / generated root

Prints wall-clock and CPU time (ffmpeg children included) per item, median and range
(min-max) over repetitions after a warm-up, the ratio, and the machine's load average:
other processes on the machine inflate wall time, not CPU time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from melunmix import datasets
from melunmix.base.names import SOURCES


def make_data(out_dir: Path, nb_train: int, duration: float) -> Path:
    """The built-in generated dataset (MUSDB18-HQ layout) in ``out_dir``."""
    from melunmix import synth

    return synth.make_dataset(
        out_dir, nb_train=nb_train, nb_valid=1, nb_test=1, duration=duration, seed=0, progress=False
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (musdb's ffmpeg runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_per_item(make_item, nb_items: int, nb_reps: int, nb_warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per item of each repetition (``nb_items`` items each).

    CPU time is what an item costs whatever else runs on the machine; wall time is what a
    training loop waits for on an idle machine with one loader process.
    """
    for index in range(nb_warmup):
        make_item(index)
    wall, cpu = [], []
    for rep in range(nb_reps):
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        for index in range(nb_items):
            make_item(nb_warmup + rep * nb_items + index)
        wall.append((time.perf_counter() - start_wall) / nb_items * 1e3)
        cpu.append((cpu_seconds() - start_cpu) / nb_items * 1e3)
    return wall, cpu


def musdb_item_maker(root: Path, seq_dur: float, seed: int):
    """Open-Unmix's musdb-based training item: ffmpeg reads, then the same augmentation."""
    import musdb

    setup = "setup.yaml" if (root / "setup.yaml").is_file() else None
    db = musdb.DB(root=str(root), setup_file=setup, is_wav=True, subsets="train", split="train")
    rng = random.Random(seed)

    def make_item(index: int):
        sources = []
        for name in SOURCES:
            track = rng.choice(db.tracks)
            track.chunk_duration = seq_dur
            track.chunk_start = rng.uniform(0, track.duration - seq_dur)
            audio = torch.as_tensor(track.sources[name].audio.T, dtype=torch.float32)
            audio = audio * rng.uniform(0.25, 1.25)
            if rng.random() < 0.5:
                audio = torch.flip(audio, [0])
            sources.append(audio)
        stack = torch.stack(sources)
        return stack.sum(0), stack[0]

    return make_item


def summary(label: str, values: list[float]) -> str:
    median = statistics.median(values)
    return f"{label:<36s} median {median:8.2f} ms/item   range {min(values):8.2f} - {max(values):8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="existing dataset root (default: generate one)")
    parser.add_argument("--nb-train", type=int, default=6, help="generated training songs (one more is validation)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per generated song")
    parser.add_argument("--seq-dur", type=float, default=6.0)
    parser.add_argument("--items", type=int, default=100, help="melunmix items per repetition")
    parser.add_argument("--musdb-items", type=int, default=4, help="musdb items per repetition")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="melunmix-bench-") as tmp:
        root = args.data_root or make_data(Path(tmp) / "data", args.nb_train, args.duration)
        tracks = datasets.find_tracks(root, "train", split="train")
        train = datasets.TrainDataset(tracks, seq_dur=args.seq_dur, samples_per_track=10_000, seed=0, progress=False)
        fast = time_per_item(lambda i: train[i], args.items, args.reps, args.warmup)
        slow = time_per_item(
            musdb_item_maker(Path(root), args.seq_dur, seed=0), args.musdb_items, args.reps, min(args.warmup, 2)
        )

    # Other processes compete for the cores: the load average says how much the figures suffer.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load}")
    print(
        f"data: {root if args.data_root else 'generated'}; {len(tracks)} training tracks, "
        f"{tracks[0].rate} Hz, {args.seq_dur:g} s items, 4 stems, gain + swap; {args.reps} repetitions"
    )
    for kind, index in (("wall", 0), ("CPU", 1)):
        print(f"{kind} time:")
        print(summary("  melunmix TrainDataset (soundfile)", fast[index]))
        print(summary("  musdb chunk reads (ffmpeg)", slow[index]))
        ratio = statistics.median(slow[index]) / statistics.median(fast[index])
        print(f"  ratio musdb / melunmix (medians): {ratio:.0f}x")
    verdict = "met" if statistics.median(fast[0]) <= 5 else "NOT met (see the load average and the CPU time)"
    print(f"target <= 5 ms wall per item: {verdict}")


if __name__ == "__main__":
    main()
