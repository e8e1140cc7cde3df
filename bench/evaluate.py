"""Scoring wall time: museval as shipped (serial) vs our parallel evaluation, same numbers.

Both score the same estimates of the same generated test tracks (default 8 songs of
30 s, stereo 44.1 kHz): the oracle ideal ratio mask of powers (IRM2, from
:func:`melunmix.oracles.oracle_estimates`), vocals and accompaniment as a pair, BSS Eval
v4 with 1 s windows and hops.

- reference: for each track of ``musdb.DB(root, is_wav=True, subsets="test")`` in turn,
  the oracle estimates, then ``museval.eval_mus_track(track, estimates, output_dir)``:
  museval as shipped, one track after another, numpy with its default threads;
- ours: :func:`melunmix.evaluate.evaluate_oracle` with ``jobs`` worker processes
  (default 2: the cores here), which reads, separates and scores each track in a worker
  and writes museval's JSON.

The tracks are a 16-bit PCM copy of the generated set (MUSDB18-HQ is 16-bit too): musdb
0.4.3 reads every file through ffmpeg as 16-bit PCM, even float WAVs, while melunmix reads
the samples exactly, so only on 16-bit files do both sides score the same samples.

Each repetition starts from empty output folders; the time includes reading the tracks,
the oracle and writing the JSON on both sides, and our worker start-up. Afterwards every
frame value of every metric in the two sets of JSON files is compared.

Usage::

    .venv/bin/python bench/evaluate.py          # ~2-3 min on 2 cores
    .venv/bin/python bench/evaluate.py --quick  # 2 tracks of 10 s
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import generated
import harness

TARGET = ">= 1.7"
ORACLE = "IRM2"


def museval_serial(root: Path, out_dir: Path, limit: int | None = None) -> int:
    """museval's own loop: musdb tracks, oracle estimates, ``eval_mus_track``; returns tracks done."""
    import musdb
    import museval

    from melunmix.oracles import oracle_estimates

    setup = "setup.yaml" if (root / "setup.yaml").is_file() else None
    mus = musdb.DB(root=str(root), setup_file=setup, is_wav=True, subsets="test")
    tracks = mus.tracks[:limit]
    for track in tracks:
        references = {name: track.targets[name].audio for name in ("vocals", "accompaniment")}
        estimates = oracle_estimates(ORACLE, track.audio, references, 4096, 1024)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # silent windows: NaN frames, as shipped
            museval.eval_mus_track(track, estimates, output_dir=str(out_dir))
    return len(tracks)


def ours_parallel(root: Path, out_dir: Path, jobs: int, limit: int | None = None) -> int:
    from melunmix import datasets
    from melunmix.evaluate import evaluate_oracle

    tracks = datasets.find_tracks(root, "test")[:limit]
    evaluate_oracle(ORACLE, tracks, out_dir, jobs=jobs, progress=False, overwrite=True)
    return len(tracks)


def frame_values(json_path: Path) -> dict:
    """(target, metric, frame index) -> value from a museval JSON file."""
    import simplejson

    data = simplejson.loads(json_path.read_text(), allow_nan=True)
    values = {}
    for target in data["targets"]:
        for k, frame in enumerate(target["frames"]):
            for metric, value in frame["metrics"].items():
                values[(target["name"], metric, k)] = value
    return values


def compare(reference_dir: Path, ours_dir: Path) -> tuple[int, int, float, list[str]]:
    """Compare every value; returns (values compared, values that differ, max abs difference, problems)."""
    problems, compared, differing, largest = [], 0, 0, 0.0
    ref_files = sorted(reference_dir.glob("*.json"))
    if not ref_files:
        problems.append(f"no museval JSON in {reference_dir}")
    for ref_path in ref_files:
        ours_path = ours_dir / ref_path.name
        if not ours_path.is_file():
            problems.append(f"ours has no {ours_path.name}")
            continue
        a, b = frame_values(ref_path), frame_values(ours_path)
        if a.keys() != b.keys():
            problems.append(f"{ref_path.name}: different targets/metrics/frames")
            continue
        for key, x in a.items():
            y = b[key]
            compared += 1
            if (x is None or math.isnan(x)) and (y is None or math.isnan(y)):
                continue
            if x is None or y is None or math.isnan(x) or math.isnan(y):
                differing += 1
                problems.append(f"{ref_path.name} {key}: {x} vs {y}")
                continue
            if x != y:
                differing += 1
                largest = max(largest, abs(x - y))
    return compared, differing, largest, problems


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=8, help="generated test tracks")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per track")
    parser.add_argument("--jobs", type=int, default=2, help="our worker processes")
    harness.add_common_args(parser, reps=2, warmup=1)
    args = parser.parse_args(argv)
    nb_reps, nb_warmup = harness.resolve_counts(args, reps=2, warmup=1, quick_reps=1)
    if args.quick:
        args.tracks, args.duration = 2, 10.0

    # musdb reads through ffmpeg as 16-bit PCM: on the generated float WAVs its samples would
    # differ from the exact ones we read, so both sides score a 16-bit copy (as MUSDB18-HQ is)
    root = generated.pcm16_copy(generated.generated_root(2, 1, args.tracks, args.duration))
    work = Path(tempfile.mkdtemp(prefix="melunmix-bench-eval-"))
    dirs = {"museval": work / "museval", "ours": work / "ours"}

    def fresh(name: str) -> Path:
        shutil.rmtree(dirs[name], ignore_errors=True)
        return dirs[name]

    try:
        print(harness.machine_line("cpu"))
        print(f"data: {root}: {args.tracks} test tracks of {args.duration:g} s, stereo 44.1 kHz; estimates: "
              f"oracle {ORACLE} (n_fft 4096, hop 1024); museval v4, 1 s windows, vocals + accompaniment")
        print(f"ours: melunmix.evaluate.evaluate_oracle with jobs={args.jobs}; reference: museval.eval_mus_track "
              f"serially; warm-up: {nb_warmup} one-track run(s) each; {nb_reps} timed repetition(s), interleaved")
        for _ in range(nb_warmup):
            museval_serial(root, fresh("museval"), limit=1)
            ours_parallel(root, fresh("ours"), args.jobs, limit=1)
        times = harness.repeat({
            "museval serial": lambda: museval_serial(root, fresh("museval")),
            f"ours jobs={args.jobs}": lambda: ours_parallel(root, fresh("ours"), args.jobs),
        }, nb_reps, 0)
        compared, differing, largest, problems = compare(dirs["museval"] / "test", dirs["ours"] / ORACLE / "test")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    for name, values in times.items():
        print(harness.summary_line(f"{name}: {args.tracks} tracks", values, "s"))
    ref_t, ours_t = harness.median(times["museval serial"]), harness.median(times[f"ours jobs={args.jobs}"])
    speedup = ref_t / ours_t
    print(f"speed-up: {speedup:.2f}x (target {TARGET} on 2 cores)")
    identical = compared > 0 and differing == 0 and not problems
    if identical:
        verdict = f"identical: all {compared} frame values equal (NaN frames included)"
    else:
        verdict = (f"{differing} of {compared} frame values differ, largest difference {largest:.3g} dB"
                   + (f"; {len(problems)} problem(s): {problems[:3]}" if problems else ""))
    print(f"numbers: {verdict}")
    print(f"load average after: {harness.load_average()}")
    command = harness.command_line("evaluate.py", argv)
    harness.emit([harness.Figure(
        "evaluate", f"scoring {args.tracks} tracks x {args.duration:g} s, s", f"{ours_t:.1f}", f"{ref_t:.1f}",
        speedup, TARGET, harness.check_target(speedup, TARGET) and identical, command,
        f"ratio = museval/ours (speed-up), jobs={args.jobs}; numbers " + ("identical" if identical else verdict),
    )], args.json_out)


if __name__ == "__main__":
    main()
