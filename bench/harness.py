"""Timing and reporting shared by the benchmark scripts.

Every script times its cases with :func:`repeat` (warm-up runs, then repetitions,
interleaved between the cases so that a burst of load from other processes hits all of
them alike), prints a line per case with :func:`summary_line`, and hands its headline
figures to :func:`emit`: one row per figure with ours, the reference, their ratio and the
target, printed for a reader and, with ``--json-out``, appended to a JSON-lines file
that ``bench/run_all.py`` turns into the README's table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


def add_common_args(parser: argparse.ArgumentParser, reps: int, warmup: int) -> None:
    """Options every benchmark has: ``--quick``, ``--reps``, ``--warmup``, ``--json-out``."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repetitions: a sanity run of the script, not a figure")
    parser.add_argument("--reps", type=int, default=None, help=f"timed repetitions (default {reps}; quick: fewer)")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed warm-up runs (default {warmup})")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="append the figures as JSON lines to this file (bench/run_all.py reads them)")


def resolve_counts(args: argparse.Namespace, reps: int, warmup: int, quick_reps: int = 2,
                   quick_warmup: int = 1) -> tuple[int, int]:
    """Repetitions and warm-ups from the options (``--quick`` lowers the defaults)."""
    nb_reps = args.reps if args.reps is not None else (quick_reps if args.quick else reps)
    nb_warmup = args.warmup if args.warmup is not None else (quick_warmup if args.quick else warmup)
    if nb_reps < 1 or nb_warmup < 0:
        raise SystemExit(f"--reps must be >= 1 and --warmup >= 0, got {nb_reps} and {nb_warmup}")
    return nb_reps, nb_warmup


def repeat(cases: dict[str, Callable[[], object]], nb_reps: int, nb_warmup: int,
           progress: bool = True, cpu: Optional[dict[str, list[float]]] = None) -> dict[str, list[float]]:
    """Wall-clock seconds of each case, repetition by repetition.

    Parameters
    ----------
    cases : dict of str to callable
        Name -> a function running one repetition (its return value is ignored).
    nb_reps, nb_warmup : int
        Timed repetitions and untimed warm-up runs of every case.
    progress : bool
        Print each timing as it comes (a slow benchmark shows it is alive).
    cpu : dict, optional
        Filled with the CPU seconds of this process (all its threads) per repetition:
        the work done, which other processes' load inflates much less than wall time.

    Returns
    -------
    dict of str to list of float
        Seconds per repetition, in the order of ``cases``. Repetition ``k`` of every case
        runs before repetition ``k + 1`` of any, so slow phases of a loaded machine are
        shared between the cases instead of landing on one of them, and the order of the
        cases rotates from one repetition to the next.
    """
    for _ in range(nb_warmup):
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu_times = cpu if cpu is not None else {}
    for name in cases:
        cpu_times[name] = []
    names = list(cases)
    for rep in range(nb_reps):
        # rotate the order: each case runs first, second, ... equally often, so that what a
        # case leaves behind (freed memory, cache state) does not always burden the same next one
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            fn = cases[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - start_cpu)
            if progress:
                print(f"  rep {rep + 1}/{nb_reps} {name}: {times[name][-1]:.3f} s wall, "
                      f"{cpu_times[name][-1]:.3f} s CPU", flush=True)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summary_line(label: str, values: Sequence[float], unit: str = "s", scale: float = 1.0,
                 width: int = 40) -> str:
    """``label  median X unit  range A - B  (n reps)``; ``scale`` converts seconds to ``unit``."""
    vals = [v * scale for v in values]
    return (f"{label:<{width}s} median {median(vals):9.3f} {unit}   range {min(vals):9.3f} - "
            f"{max(vals):9.3f} {unit}   ({len(vals)} reps)")


def best_ratio(ours: Sequence[float], reference: Sequence[float]) -> float:
    """Ratio of the fastest repetitions: the least affected by sporadic load from elsewhere."""
    return min(ours) / min(reference)


def duration_label(seconds: float) -> str:
    """``"30 s"``, ``"3 min"``, ``"1.5 min"``: a song length for a table."""
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


def paired_ratios(ours: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Ratio of every interleaved pair of repetitions (both ran under the same load)."""
    return [a / b for a, b in zip(ours, reference)]


@dataclass
class Figure:
    """One row of the README's table.

    ``ratio`` is ours / reference for times (lower is better) and reference / ours for
    speed-ups; ``target`` says which, e.g. ``"<= 1.0"`` or ``">= 2.0"``.
    """

    benchmark: str
    figure: str
    ours: str
    reference: str
    ratio: Optional[float]
    target: str
    met: Optional[bool]
    command: str
    note: str = ""


def check_target(ratio: Optional[float], target: str) -> Optional[bool]:
    """Whether ``ratio`` meets a target written ``"<= x"`` or ``">= x"`` (None if no ratio)."""
    if ratio is None or not target:
        return None
    op, value = target.split()
    return ratio <= float(value) if op == "<=" else ratio >= float(value)


def emit(figures: Sequence[Figure], json_out: Optional[Path]) -> None:
    """Print the headline figures and append them to ``json_out`` (JSON lines)."""
    print("\nfigures:")
    for fig in figures:
        ratio = "n/a" if fig.ratio is None else f"{fig.ratio:.2f}"
        met = {True: "met", False: "NOT met", None: "-"}[fig.met]
        print(f"  {fig.figure}: ours {fig.ours} | reference {fig.reference} | ratio {ratio} "
              f"(target {fig.target or '-'}: {met})" + (f" [{fig.note}]" if fig.note else ""))
    if json_out is not None:
        with open(json_out, "a", encoding="utf-8") as fh:
            for fig in figures:
                fh.write(json.dumps(asdict(fig)) + "\n")


def command_line(script: str, argv: Sequence[str], drop: Sequence[str] = ("--json-out",)) -> str:
    """The command that reproduces a run, as typed from the repository root.

    Options in ``drop`` (which only say where output goes) are left out with their value.
    """
    kept, skip_value = [], False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg in drop:
            skip_value = True
        elif not any(arg.startswith(flag + "=") for flag in drop):
            kept.append(arg)
    return " ".join([".venv/bin/python", f"bench/{script}", *kept])


def cpu_model() -> str:
    """``lscpu``'s model name (platform's processor string where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def machine_line(device: str = "cpu") -> str:
    """CPU model, cores, torch version and threads, device and the current load average."""
    import torch

    gpu = ""
    if device.startswith("cuda"):
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), device {device}{gpu}; load average "
            f"{load_average()} (1/5/15 min; above the core count means other processes "
            "compete and inflate wall times)")


def default_device() -> str:
    """CUDA when present, else CPU (the benchmarks run where training would)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def synchronize(device: str) -> None:
    """Wait for queued GPU work so wall-clock times cover it (no-op on CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
