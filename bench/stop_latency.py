"""How fast a stopped `melunmix reproduce` is gone, with every process it started.

A real `melunmix reproduce` (the command line's code, papermill, a Jupyter kernel) runs a
notebook that scores generated songs with the evaluation pool (two spawn workers, as
notebook 05 does). Once the first song is scored, the run gets SIGINT (Ctrl-C), SIGTERM
(`timeout`, Slurm) or SIGKILL (`kill -9`), and the script records

- ``exit``: seconds from the signal until the `reproduce` process has ended;
- ``all gone``: seconds until every process of its tree (kernel, pool workers,
  multiprocessing's resource tracker) has ended, polled every 10 ms;
- the exit status and the number of processes the tree held.

Usage::

    .venv/bin/python bench/stop_latency.py [--reps 3] [--quick]

Timings depend on the machine's load (the kernel's clean-up competes for the CPU); the
figure that matters is that ``all gone`` is bounded: about a second after SIGKILL
(ipykernel polls its parent every second), a few seconds after SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

RUNNER = """
import sys
from pathlib import Path
from melunmix.commands import cli; from melunmix.study import pipeline
pipeline.NOTEBOOKS_DIR = Path(sys.argv[1])
sys.exit(cli.main(["reproduce", "--profile", "smoke", "--results-dir", sys.argv[2]]))
"""
SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL")


def make_study(base: Path, nb_songs: int) -> Path:
    from melunmix.synth import make_dataset

    data = make_dataset(base / "data", nb_train=1, nb_valid=0, nb_test=nb_songs, duration=12.0, seed=4,
                        sample_rate=8000, progress=False)
    notebooks = base / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "melunmix", "display_name": "melunmix", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "smoke"\ndata_root = None\nresults_dir = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import pathlib\nfrom melunmix.scoring import evaluate\nfrom melunmix.datasets import find_tracks\n"
        f"evaluate.evaluate_oracle('IRM1', find_tracks({str(data)!r}, 'test'), "
        "pathlib.Path(results_dir, profile, 'eval'), jobs=2, progress=False)")]
    nbformat.write(nb, notebooks / "01_pool.ipynb")
    return notebooks


def one_stop(notebooks: Path, results: Path, name: str) -> dict:
    run = subprocess.Popen([sys.executable, "-c", RUNNER, str(notebooks), str(results)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    scored = results / "smoke" / "eval" / "IRM1" / "test"
    while not (scored.is_dir() and any(scored.glob("*.json"))):
        if run.poll() is not None:
            raise SystemExit(f"reproduce ended before scoring: {run.stderr.read()}")
        time.sleep(0.05)
    tree = psutil.Process(run.pid).children(recursive=True)
    start = time.perf_counter()
    run.send_signal(getattr(signal, name))
    run.wait(timeout=120)
    exited = time.perf_counter() - start
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree):
        if time.perf_counter() - start > 60:
            raise SystemExit(f"{name}: processes left after 60 s: {[p.pid for p in tree if p.is_running()]}")
        time.sleep(0.01)
    gone = time.perf_counter() - start
    run.stderr.read()
    return {"exit": exited, "gone": gone, "status": run.returncode, "processes": len(tree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="stops per signal (default 3)")
    parser.add_argument("--quick", action="store_true", help="one stop per signal")
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    with tempfile.TemporaryDirectory(prefix="melunmix-stop-") as tmp:
        notebooks = make_study(Path(tmp), nb_songs=8)
        found: dict[str, list[dict]] = {name: [] for name in SIGNALS}
        for rep in range(reps):
            for name in SIGNALS:  # interleaved, so a burst of load hits every signal alike
                found[name].append(one_stop(notebooks, Path(tmp) / f"results-{name}-{rep}", name))
                print(f"{name} #{rep + 1}: {found[name][-1]}", flush=True)
    print(f"\n{'signal':8} {'exit status':>11} {'processes':>9} {'exit (s) median [range]':>26} "
          f"{'all gone (s) median [range]':>30}")
    for name, runs in found.items():
        exits = [r["exit"] for r in runs]
        gones = [r["gone"] for r in runs]
        print(f"{name:8} {sorted({r['status'] for r in runs})!s:>11} {max(r['processes'] for r in runs):>9} "
              f"{statistics.median(exits):>8.2f} [{min(exits):.2f}, {max(exits):.2f}]{'':6} "
              f"{statistics.median(gones):>8.2f} [{min(gones):.2f}, {max(gones):.2f}]")


if __name__ == "__main__":
    main()
