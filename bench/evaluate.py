"""Scoring wall time: museval as shipped (serial) vs our parallel evaluation, same numbers.

Both score the same estimates of the same generated test tracks (default 8 songs of
30 s, stereo 44.1 kHz): SiSEC 2018's oracle ideal ratio mask of powers (IRM2, from
:func:`melunmix.separation.oracles.oracle_estimates` on the four stems), vocals and accompaniment as a pair, BSS Eval
v4 with 1 s windows and hops.

- reference: for each track of ``musdb.DB(root, is_wav=True, subsets="test")`` in turn,
  the oracle estimates, then ``museval.eval_mus_track(track, estimates, output_dir)``:
  museval as shipped, one track after another, numpy with its default threads;
- ours: :func:`melunmix.scoring.evaluate.evaluate_oracle` with ``jobs`` worker processes
  (default 2: the cores here), which reads, separates and scores each track in a worker
  and writes museval's JSON.

The tracks are a 16-bit PCM copy of the generated set (MUSDB18-HQ is 16-bit too): musdb
0.4.3 reads every file through ffmpeg as 16-bit PCM, even float WAVs, while melunmix reads
the samples exactly, so only on 16-bit files do both sides score the same samples.

Each repetition starts from empty output folders; the time includes reading the tracks,
the oracle and writing the JSON on both sides, and our worker start-up. Afterwards every
frame value of every metric in the two sets of JSON files is compared.

Second part, the scorer alone (issue 13), on one thread (BLAS / OpenMP limited to 1 with
threadpoolctl; neither side uses torch; FFTs are single-threaded): BSS Eval v4 of one
3-minute stereo 44.1 kHz vocals / accompaniment pair - a generated (music-like) test song
cut to ``--scorer-duration`` and its IRM2 oracle estimates - by
``museval.evaluate(..., mode="v4")`` (what ``museval.eval_mus_track`` runs) and by
:func:`melunmix.dsp.bsseval.evaluate`, timed alternately after a warm-up on 10 s. Printed:
seconds per audio minute per core for both, their ratio (target >= 5), the largest
absolute difference in dB over all windows and metrics (NaN / inf must be in the same
places; target < 0.01 dB), how many values of the museval JSON built from both differ
(it rounds to 1e-5 dB), and, in a child process, the peak resident set (``VmHWM``;
``ru_maxrss`` would carry the parent's peak across fork + exec) of the fast scorer on a
10-minute noise-like stereo pair in float64 (target < 2 GB, inputs included).

Usage::

    .venv/bin/python bench/evaluate.py                # ~4 min on 2 cores
    .venv/bin/python bench/evaluate.py --quick        # 2 tracks of 10 s, a 20 s pair
    .venv/bin/python bench/evaluate.py --scorer-only  # the scorer part alone, ~1.5 min
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
SCORER_TARGET = ">= 5"
SCORER_TOLERANCE_DB = 0.01
MEMORY_TARGET_MB = 2000.0


def museval_serial(root: Path, out_dir: Path, limit: int | None = None) -> int:
    """museval's own loop: musdb tracks, oracle estimates, ``eval_mus_track``; returns tracks done."""
    import musdb
    import museval

    from melunmix.base.names import SOURCES
    from melunmix.separation.oracles import oracle_estimates

    setup = "setup.yaml" if (root / "setup.yaml").is_file() else None
    mus = musdb.DB(root=str(root), setup_file=setup, is_wav=True, subsets="test")
    tracks = mus.tracks[:limit]
    for track in tracks:
        stems = {name: track.sources[name].audio for name in SOURCES}
        estimates = oracle_estimates(ORACLE, track.audio, stems)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # silent windows: NaN frames, as shipped
            museval.eval_mus_track(track, estimates, output_dir=str(out_dir))
    return len(tracks)


def ours_parallel(root: Path, out_dir: Path, jobs: int, limit: int | None = None) -> int:
    from melunmix import datasets
    from melunmix.scoring.evaluate import evaluate_oracle

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


# --------------------------------------------------------------------------- the scorer alone


def music_pair(seconds: float):
    """A generated test song's vocals / accompaniment (first ``seconds``) and its IRM2 oracle
    estimates (SiSEC 2018, from the four stems), float64, 44.1 kHz stereo."""
    import soundfile as sf

    from melunmix.base.names import SOURCES
    from melunmix.separation.oracles import oracle_estimates

    root = generated.generated_root(1, 0, 1, max(seconds, 10.0))
    song = sorted(p for p in (root / "test").iterdir() if p.is_dir())[0]
    n = int(round(seconds * 44100))
    stems = {name: sf.read(song / f"{name}.wav", always_2d=True, dtype="float64")[0][:n] for name in SOURCES}
    mixture = sf.read(song / "mixture.wav", always_2d=True, dtype="float64")[0][:n]
    references = {"vocals": stems["vocals"], "accompaniment": stems["drums"] + stems["bass"] + stems["other"]}
    return references, oracle_estimates(ORACLE, mixture, stems), song.name


def _track_store(name: str, scores) -> str:
    """museval's JSON of (SDR, ISR, SIR, SAR) arrays, built as ``eval_mus_track`` does."""
    import museval

    store = museval.TrackStore(win=1.0, hop=1.0, track_name=name)
    sdr, isr, sir, sar = scores
    for i, target in enumerate(("vocals", "accompaniment")):
        store.add_target(target_name=target, values={"SDR": sdr[i].tolist(), "SIR": sir[i].tolist(),
                                                     "ISR": isr[i].tolist(), "SAR": sar[i].tolist()})
    return store.json


def score_difference(ours, reference) -> tuple[float, list[str]]:
    """Largest absolute difference (dB) over finite values; problems where NaN / inf differ."""
    import numpy as np

    largest, problems = 0.0, []
    for metric, a, b in zip(("SDR", "ISR", "SIR", "SAR"), ours, reference):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            problems.append(f"{metric}: shapes {a.shape} vs {b.shape}")
            continue
        for what, mask in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
            if not np.array_equal(mask(a), mask(b)):
                problems.append(f"{metric}: {what} in other windows")
        finite = np.isfinite(a) & np.isfinite(b)
        if finite.any():
            largest = max(largest, float(np.max(np.abs(a[finite] - b[finite]))))
    return largest, problems


MEMORY_SCRIPT = """
import json, resource, sys, time
import numpy as np
from melunmix.dsp import bsseval


def peak_mb():
    # VmHWM: this process's peak resident set (ru_maxrss would keep the parent's peak
    # across fork + exec on Linux)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


rate = 44100
n = int(float(sys.argv[1]) * rate)
rng = np.random.default_rng(0)
refs = [rng.standard_normal((n, 2)) for _ in range(2)]
ests = []
for i, ref in enumerate(refs):
    est = rng.standard_normal((n, 2))
    for a in range(0, n, 1 << 20):  # est = ref + 0.2 other + 0.3 noise, without full-size temporaries
        est[a:a + (1 << 20)] *= 0.3
        est[a:a + (1 << 20)] += ref[a:a + (1 << 20)] + 0.2 * refs[1 - i][a:a + (1 << 20)]
    ests.append(est)
inputs = peak_mb()
start = time.perf_counter()
scores = bsseval.score_track({"vocals": refs[0], "accompaniment": refs[1]},
                             {"vocals": ests[0], "accompaniment": ests[1]}, rate)
seconds = time.perf_counter() - start
print(json.dumps({"inputs_mb": inputs, "peak_mb": peak_mb(), "seconds": seconds,
                  "input_bytes": sum(x.nbytes for x in refs + ests)}))
"""


def scorer_memory(seconds: float) -> dict:
    """Peak resident set (VmHWM) of the fast scorer on a noise-like stereo pair of ``seconds``, in a
    child process: with the float64 inputs, and before scoring (interpreter + inputs)."""
    import json
    import os
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(seconds)], capture_output=True, text=True,
                         env=env, cwd=harness.REPO_ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def scorer_comparison(args, argv: list[str], nb_reps: int) -> list[harness.Figure]:
    """museval vs melunmix.dsp.bsseval on one pair, one thread: time per audio minute, max difference."""
    import museval
    import numpy as np
    from threadpoolctl import threadpool_limits

    from melunmix.dsp import bsseval

    references, estimates, song = music_pair(args.scorer_duration)
    refs = [references["vocals"], references["accompaniment"]]
    ests = [estimates["vocals"], estimates["accompaniment"]]
    minutes = len(refs[0]) / 44100 / 60
    length = harness.duration_label(len(refs[0]) / 44100)
    print(f"\nscorer: {song}, first {args.scorer_duration:g} s (generated, music-like; vocals rest in places), "
          f"stereo 44.1 kHz; estimates: oracle {ORACLE}; BSS Eval v4, 1 s windows; one thread each; "
          f"warm-up on 10 s; {nb_reps} timed repetition(s), interleaved")
    results = {}

    def run_museval(r, e, key="museval"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            results[key] = museval.evaluate(r, e, win=44100, hop=44100, mode="v4")

    def run_ours(r, e, key="ours"):
        results[key] = bsseval.evaluate(r, e, win=44100, hop=44100)

    with threadpool_limits(limits=1):
        short = 10 * 44100
        run_museval([x[:short] for x in refs], [x[:short] for x in ests], "warm-up")
        run_ours([x[:short] for x in refs], [x[:short] for x in ests], "warm-up")
        cpu: dict = {}
        ref_name, ours_name = "museval.evaluate (v4)", "melunmix.dsp.bsseval.evaluate"
        cases = {ref_name: lambda: run_museval(refs, ests), ours_name: lambda: run_ours(refs, ests)}
        times = harness.repeat(cases, nb_reps, 0, cpu=cpu)
    ref_t, ours_t = harness.median(times[ref_name]), harness.median(times[ours_name])
    ratio = ref_t / ours_t
    largest, problems = score_difference(results["ours"], results["museval"])
    json_ours, json_ref = _track_store(song, results["ours"]), _track_store(song, results["museval"])
    json_lines = [(a, b) for a, b in zip(json_ours.splitlines(), json_ref.splitlines()) if a != b]
    nb_windows = results["museval"][0].shape[1]
    nb_nan = int(np.isnan(results["museval"][0][0]).sum())
    print()
    for name, values in times.items():
        print(harness.summary_line(f"{name}: {length}", values, "s"))
        print(f"{'':40s} = {harness.median(values) / minutes:.3f} s per audio minute (1 thread), "
              f"CPU {harness.median(cpu[name]) / minutes:.3f} s per audio minute")
    print(f"speed-up: {ratio:.1f}x (fastest repetitions {min(times[ref_name]) / min(times[ours_name]):.1f}x; "
          f"target {SCORER_TARGET})")
    print(f"largest absolute difference: {largest:.3g} dB over {4 * 2 * nb_windows} values "
          f"({nb_windows} windows x 2 targets x 4 metrics, {nb_nan} silent windows: NaN on both sides"
          + (f"; PROBLEMS: {problems}" if problems else "")
          + f"); museval JSON (rounded to 1e-5 dB): {len(json_lines)} value(s) differ in the last digit")
    print("(on real music the Gram matrix is ill-conditioned: museval's own numbers move by about as much when "
          "its inputs are scaled by 1 + 1e-15)")
    agree = largest < SCORER_TOLERANCE_DB and not problems
    command = harness.command_line("evaluate.py", argv)
    figures = [harness.Figure(
        "evaluate", f"BSS Eval v4 scorer, s per audio minute, 1 thread ({length} stereo pair)",
        f"{ours_t / minutes:.3f}", f"{ref_t / minutes:.3f}", ratio, SCORER_TARGET,
        harness.check_target(ratio, SCORER_TARGET) and agree, command,
        f"ratio = museval/ours (speed-up); melunmix.dsp.bsseval vs museval.evaluate v4 on a generated song with IRM2 "
        f"estimates; largest difference {largest:.2g} dB (target < {SCORER_TOLERANCE_DB} dB), NaN/inf "
        + ("in the same windows" if not problems else f"DIFFER: {problems[:2]}")
        + f"; museval JSON (1e-5 dB): {len(json_lines)} of {4 * 2 * nb_windows} values differ in the last digit")]
    if args.memory_duration > 0:
        mem = scorer_memory(args.memory_duration)
        inputs_mb = mem["input_bytes"] / 2**20
        print(f"memory: fast scorer on a {harness.duration_label(args.memory_duration)} noise-like stereo pair "
              f"(float64 inputs, {inputs_mb:.0f} MB): peak RSS {mem['peak_mb']:.0f} MB "
              f"(process with inputs before scoring: "
              f"{mem['inputs_mb']:.0f} MB; scorer's own peak ~{mem['peak_mb'] - mem['inputs_mb']:.0f} MB); "
              f"{mem['seconds']:.1f} s")
        figures.append(harness.Figure(
            "evaluate",
            f"BSS Eval v4 scorer peak RSS, {harness.duration_label(args.memory_duration)} stereo pair, MB",
            f"{mem['peak_mb']:.0f}", "not measured", None, f"< {MEMORY_TARGET_MB:g} MB",
            mem["peak_mb"] < MEMORY_TARGET_MB, command,
            f"child process, VmHWM; float64 inputs {inputs_mb:.0f} MB included, process before scoring "
            f"{mem['inputs_mb']:.0f} MB; {mem['seconds']:.1f} s on one thread"))
    return figures


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=8, help="generated test tracks")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per track")
    parser.add_argument("--jobs", type=int, default=2, help="our worker processes")
    parser.add_argument("--scorer-only", action="store_true",
                        help="only the scorer part (melunmix.dsp.bsseval vs museval on one pair, one thread)")
    parser.add_argument("--scorer-duration", type=float, default=180.0, help="seconds of the scorer's pair")
    parser.add_argument("--memory-duration", type=float, default=600.0,
                        help="seconds of the pair whose peak RSS is measured (0: skip)")
    harness.add_common_args(parser, reps=2, warmup=1)
    args = parser.parse_args(argv)
    nb_reps, nb_warmup = harness.resolve_counts(args, reps=2, warmup=1, quick_reps=1)
    if args.quick:
        args.tracks, args.duration = 2, 10.0
        args.scorer_duration, args.memory_duration = 20.0, min(args.memory_duration, 60.0)
    if args.scorer_only:
        print(harness.machine_line("cpu"))
        harness.emit(scorer_comparison(args, argv, nb_reps), args.json_out)
        return

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
              f"oracle {ORACLE} (SiSEC 2018: four stems, STFT 2048 / hop 1024); museval v4, 1 s windows, "
              "vocals + accompaniment")
        print(f"ours: melunmix.scoring.evaluate.evaluate_oracle with jobs={args.jobs}; reference: museval.eval_mus_track "
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
    # with melunmix's fast scorer the JSON values agree to museval's own round-off noise on
    # ill-conditioned music (~1e-4 dB), so a few differ in their last digit (1e-5 dB)
    agree = compared > 0 and not problems and largest < SCORER_TOLERANCE_DB
    if identical:
        verdict = f"identical: all {compared} frame values equal (NaN frames included)"
    else:
        verdict = (f"{differing} of {compared} frame values differ, largest difference {largest:.3g} dB"
                   + (f" (< {SCORER_TOLERANCE_DB} dB)" if agree else "")
                   + (f"; {len(problems)} problem(s): {problems[:3]}" if problems else ""))
    print(f"numbers: {verdict}")
    print(f"load average after: {harness.load_average()}")
    command = harness.command_line("evaluate.py", argv)
    harness.emit([harness.Figure(
        "evaluate", f"scoring {args.tracks} tracks x {args.duration:g} s, s", f"{ours_t:.1f}", f"{ref_t:.1f}",
        speedup, TARGET, harness.check_target(speedup, TARGET) and agree, command,
        f"ratio = museval/ours (speed-up), jobs={args.jobs}; numbers " + ("identical" if identical else verdict),
    ), *scorer_comparison(args, argv, nb_reps)], args.json_out)


if __name__ == "__main__":
    main()
