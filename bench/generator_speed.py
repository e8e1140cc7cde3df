"""CPU time of the built-in dataset generator per minute of audio, and where it goes.

The dataset promise (issue 12): at most 2 s of CPU per minute of generated audio for the
whole dataset (rendering, reverb, mixing, writing the WAVs, hashing them). This script
generates a dataset into a fresh temporary folder with :func:`melunmix.synth.make_dataset`
and prints its CPU seconds (``time.process_time``: every thread of this process) and wall
seconds per minute of audio; then, for the same songs, the CPU seconds of each rendering
stage (the sung vocals, each soundfont stem, the reverbs) per minute of audio.

Usage::

    .venv/bin/python bench/generator_speed.py                  # the demo profile's dataset (36 x 30 s)
    .venv/bin/python bench/generator_speed.py --quick          # 3 songs of 10 s
    .venv/bin/python bench/generator_speed.py --lib /tmp/old/lib   # another checkout's generator

``--lib`` imports ``melunmix`` from another folder (e.g. ``git archive <commit> lib | tar -x
-C /tmp/old``), to compare two generator versions on the same machine in one sitting; the
stage breakdown needs a generator with ``synth.render_vocals`` (version 3 on).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _cpu(function, *args):
    start = time.process_time()
    result = function(*args)
    return time.process_time() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=24, help="songs under train/ (the valid ones included)")
    parser.add_argument("--valid", type=int, default=3)
    parser.add_argument("--test", type=int, default=12)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per song")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 songs of 10 s: a check of the script, not a figure")
    parser.add_argument("--lib", type=Path, default=None, help="import melunmix from this folder instead")
    parser.add_argument("--no-stages", action="store_true", help="only the whole dataset, no per-stage breakdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.valid, args.test, args.duration = 2, 1, 1, 10.0
    if args.lib is not None:
        sys.path.insert(0, str(args.lib.resolve()))

    import numpy as np

    from melunmix import synth

    try:
        from melunmix.base.names import SOURCES
    except ImportError:  # a generator from before the registry (--lib)
        SOURCES = synth.SOURCE_NAMES

    print(f"generator {Path(synth.__file__).parent} (version {synth.GENERATOR_VERSION}); load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} (1/5/15 min; above {os.cpu_count()} cores, "
          "other processes compete)")
    nb_songs = args.train + args.test
    minutes = nb_songs * args.duration / 60.0
    folder = Path(tempfile.mkdtemp(prefix="melunmix-generator-speed-"))
    try:
        wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, _ = _cpu(lambda: synth.make_dataset(folder / "data", nb_train=args.train, nb_valid=args.valid,
                                                  nb_test=args.test, duration=args.duration, seed=args.seed,
                                                  progress=False))
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"whole dataset: {nb_songs} songs x {args.duration:g} s = {minutes:.1f} min of audio: "
          f"{cpu:.1f} s CPU, {wall:.1f} s wall; {cpu / minutes:.2f} s CPU per audio minute (target <= 2)")
    print(f"  of which in the kernel (page faults, writing the files): {(after.ru_stime - usage.ru_stime) / minutes:.2f} "
          f"s per audio minute; {nb_songs * 5} WAV files, "
          f"{nb_songs * 5 * args.duration * 44100 * 2 * 4 / 1e9:.2f} GB")

    if args.no_stages:
        return 0
    rate = 44100
    nb_samples = int(round(args.duration * rate))
    splits = ["train"] * (args.train - args.valid) + ["valid"] * args.valid + ["test"] * args.test
    index = {"train": 0, "valid": 0, "test": 0}
    songs = []
    for split in splits:
        songs.append(synth.arrange_song(args.seed, split, index[split], args.duration))
        index[split] += 1
    seconds = sum(_cpu(synth.render_song, song, rate)[0] for song in songs)
    print(f"render_song alone (stems, reverb, levels, mixture; no files): {seconds / minutes:.2f} s CPU per "
          "audio minute")
    if not hasattr(synth, "render_vocals"):
        return 0
    stages: dict[str, float] = {}
    backing = sum(len(song.parts["vocals"]) > 1 for song in songs)
    synth.render_stem(songs[0].parts["drums"], 64, rate)  # loads the soundfont once, untimed
    for song in songs:
        for name in SOURCES:
            if name == "vocals":
                seconds, audio = _cpu(synth.render_vocals, song.parts[name], nb_samples, rate)
                audio = audio.astype(np.float32)  # render_song reverberates float32 stems
            else:
                seconds, audio = _cpu(synth.render_stem, song.parts[name], nb_samples, rate)
            stages[f"render {name}"] = stages.get(f"render {name}", 0.0) + seconds
            seconds, _ = _cpu(synth.add_reverb, audio, song.reverb[name], rate)
            stages["reverb (4 stems)"] = stages.get("reverb (4 stems)", 0.0) + seconds
    print(f"stages, s CPU per audio minute ({backing} of {len(songs)} songs with backing vocals):")
    for name, seconds in stages.items():
        print(f"  {name:<18} {seconds / minutes:6.3f}")
    print(f"  {'sum of stages':<18} {sum(stages.values()) / minutes:6.3f} (the rest of the whole-dataset figure: "
          "levels, mixing, writing and hashing the files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
