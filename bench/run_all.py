"""Run the benchmarks (training step, epoch, separation, evaluation, data loading) and tabulate.

Each benchmark runs as its own process (a fresh interpreter: no warm caches, threads or
memory carried over from the previous one), its output streamed here as it comes. At the
end a Markdown block is printed (and written with ``--markdown-out``) that replaces the
"Latest figures" section of ``bench/README.md`` as it is: machine, load, one table row
per figure with the exact command that made it, and the notes.

Usage::

    .venv/bin/python bench/run_all.py                 # full figures, ~20-25 min on 2 cores
    .venv/bin/python bench/run_all.py --quick         # sanity run of every script, ~3 min
    .venv/bin/python bench/run_all.py --only separate evaluate
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

#: name -> (script, extra arguments of the full run, extra arguments of the quick run)
BENCHMARKS = {
    "train_step": ("train_step.py", [], ["--quick"]),
    "epoch": ("epoch.py", [], ["--quick"]),
    "separate": ("separate.py", [], ["--quick"]),
    "evaluate": ("evaluate.py", [], ["--quick"]),
    # bench/loader.py (the data issue's benchmark) has its own options and no --json-out
    "loader": ("loader.py", [], ["--nb-train", "2", "--duration", "10", "--items", "20",
                                 "--musdb-items", "2", "--reps", "2", "--warmup", "1"]),
}
LOADER_TARGET_MS = 5.0


def run_script(script: str, args: list[str]) -> tuple[int, str, float]:
    """Run ``bench/<script>`` with this Python, echo its output live; (exit code, output, seconds)."""
    cmd = [sys.executable, str(harness.BENCH_DIR / script), *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=harness.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    proc.wait()
    return proc.returncode, "".join(lines), time.perf_counter() - start


def loader_figures(output: str, command: str) -> list[harness.Figure]:
    """Rows from bench/loader.py's printed wall-time medians (it writes no JSON)."""
    wall = output.split("wall time:", 1)[-1].split("CPU time:", 1)[0]
    ours = re.search(r"melunmix TrainDataset.*?median\s+([\d.]+) ms/item", wall)
    theirs = re.search(r"musdb chunk reads.*?median\s+([\d.]+) ms/item", wall)
    if not (ours and theirs):
        return [failed_figure("loader", command, "could not read its medians from the output")]
    ours_ms, theirs_ms = float(ours.group(1)), float(theirs.group(1))
    return [harness.Figure(
        "loader", "training item (4 stems, 6 s, augmented), ms/item wall", f"{ours_ms:.2f}", f"{theirs_ms:.1f}",
        theirs_ms / ours_ms, f"<= {LOADER_TARGET_MS:g} ms (ours)", ours_ms <= LOADER_TARGET_MS, command,
        "ratio = musdb/ours (speed-up); target from the data issue: ours <= 5 ms per item")]


def failed_figure(name: str, command: str, why: str) -> harness.Figure:
    return harness.Figure(name, "(failed)", "-", "-", None, "", False, command, why)


def markdown(figures: list[harness.Figure], header: dict, durations: dict) -> str:
    """The README section: machine, load, table, notes."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = [
        "## Latest figures",
        "",
        f"Made by `{header['command']}` on {header['date']}, {header['total_min']:.0f} min in all.",
        f"Machine: {header['cpu']}, {header['cores']} cores, torch {header['torch']} "
        f"({header['threads']} threads), device {header['device']}, openunmix {header['openunmix']}.",
        f"Load average (1/5/15 min) at the start {header['load_start']}, at the end {header['load_end']} "
        f"(above {header['cores']} means other processes competed for the cores and wall times are inflated).",
        "",
        "Ratios: ours / reference for times and real-time factors (target `<=`); reference / ours for "
        "speed-ups (target `>=`).",
        "",
        "| benchmark | figure | ours | reference | ratio | target | met? | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fig in figures:
        ratio = "-" if fig.ratio is None else f"{fig.ratio:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[fig.met]
        lines.append(f"| {fig.benchmark} | {cell(fig.figure)} | {cell(fig.ours)} | {cell(fig.reference)} | "
                     f"{ratio} | {cell(fig.target or '-')} | {met} | `{fig.command}` |")
    lines += ["", "Notes:"]
    for fig in figures:
        if fig.note:
            lines.append(f"- {fig.benchmark}, {fig.figure}: {fig.note}")
    lines.append("- seconds per benchmark (whole script, set-up included): "
                 + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items()))
    manifest = harness.REPO_ROOT / "results" / "demo" / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        per_notebook = ", ".join(f"{name.split('_')[0]} {entry.get('seconds', 0) / 60:.1f} min"
                                 for name, entry in sorted(data.get("notebooks", {}).items()))
        lines.append(f"- study (`.venv/bin/python bench/study.py`, from {manifest.relative_to(harness.REPO_ROOT)}, "
                     f"commit {data.get('git_commit')}): {per_notebook}; total "
                     f"{data.get('total_seconds', 0) / 60:.1f} min")
    else:
        lines.append("- study: no results/demo/manifest.json yet; `.venv/bin/python bench/study.py --run` times "
                     "the demo study from a fresh clone (~20 min)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every script with --quick (a sanity run)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=None)
    parser.add_argument("--skip", nargs="+", choices=list(BENCHMARKS), default=[])
    parser.add_argument("--markdown-out", type=Path, default=None, help="also write the Markdown block here")
    args = parser.parse_args(argv)
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]

    import torch

    from reference import import_openunmix

    oum_version = import_openunmix().version
    device = harness.default_device()
    header = dict(command=harness.command_line("run_all.py", argv, drop=("--markdown-out",)),
                  date=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), cpu=harness.cpu_model(),
                  cores=os.cpu_count(), torch=torch.__version__, threads=torch.get_num_threads(), device=device,
                  openunmix=oum_version, load_start=harness.load_average())
    figures, durations = [], {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="melunmix-bench-") as tmp:
        for name in names:
            script, full_args, quick_args = BENCHMARKS[name]
            script_args = quick_args if args.quick else full_args
            command = harness.command_line(script, script_args)
            print(f"\n===== {name}: {command}", flush=True)
            json_path = Path(tmp) / f"{name}.jsonl"
            extra = [] if name == "loader" else ["--json-out", str(json_path)]
            code, output, seconds = run_script(script, [*script_args, *extra])
            durations[name] = seconds
            if code != 0:
                figures.append(failed_figure(name, command, f"exit code {code}; see its output above"))
            elif name == "loader":
                figures.extend(loader_figures(output, command))
            else:
                rows = [json.loads(line) for line in json_path.read_text().splitlines() if line.strip()]
                figures.extend(harness.Figure(**row) for row in rows)
    header["total_min"] = (time.perf_counter() - start) / 60
    header["load_end"] = harness.load_average()
    block = markdown(figures, header, durations)
    print("\n===== paste into bench/README.md (replaces its 'Latest figures' section)\n")
    print(block)
    if args.markdown_out is not None:
        args.markdown_out.write_text(block)
        print(f"written to {args.markdown_out}")


if __name__ == "__main__":
    main()
