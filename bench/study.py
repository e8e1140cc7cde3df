"""Wall time of the study per notebook: ``melunmix reproduce --profile demo`` from a fresh clone.

Without ``--run`` it only reads the ``manifest.json`` an earlier run wrote
(``results/<profile>/manifest.json``: seconds per notebook) and prints it. With ``--run``
it clones the repository (``git clone``: the last commit, not uncommitted changes) into a
temporary folder and runs the study there with this Python environment, the clone's own
package first on ``PYTHONPATH`` (the clone's code and data, not this checkout's), writing to
an empty results folder beside the clone (each step skips work already done, so the
committed ``results/<profile>`` would be reused instead of timed); the demo profile takes
about 20 minutes on 2 cores, dataset generation included.

Usage::

    .venv/bin/python bench/study.py                    # print results/demo/manifest.json
    .venv/bin/python bench/study.py --run              # fresh clone, full demo study (~20 min)
    .venv/bin/python bench/study.py --run --keep       # ... and keep the clone to inspect
    .venv/bin/python bench/study.py --run --only 01    # check the set-up on the first notebook
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def print_manifest(path: Path) -> dict:
    """Print seconds per notebook from a study manifest; returns the manifest."""
    manifest = json.loads(path.read_text())
    notebooks = manifest.get("notebooks", {})
    print(f"manifest: {path}")
    print(f"profile {manifest.get('profile')}, commit {manifest.get('git_commit')}, machine "
          f"{manifest.get('machine')}")
    print(f"{'notebook':<36s} {'status':<8s} {'seconds':>9s} {'minutes':>8s}")
    total = 0.0
    for name, entry in sorted(notebooks.items()):
        seconds = entry.get("seconds")
        total += seconds or 0.0
        shown = f"{seconds:9.1f} {seconds / 60:8.1f}" if seconds is not None else f"{'-':>9s} {'-':>8s}"
        print(f"{name:<36s} {entry.get('status', '?'):<8s} {shown}")
    print(f"{'total':<36s} {'':<8s} {total:9.1f} {total / 60:8.1f}")
    return manifest


def run_fresh_clone(profile: str, clone_dir: Path, only: list[str] | None = None) -> Path:
    """Clone the repository and run the study in the clone; returns its manifest path."""
    source = harness.REPO_ROOT
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                           capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True,
                          text=True).stdout.strip()
    if dirty:
        print(f"note: {source} has uncommitted changes; the clone runs commit {head} without them")
    subprocess.run(["git", "clone", "--quiet", str(source), str(clone_dir)], check=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(clone_dir / "lib"), *filter(None, [env.get("PYTHONPATH")])])
    used = subprocess.run([sys.executable, "-c", "import melunmix; print(melunmix.__file__)"], cwd=clone_dir,
                          env=env, capture_output=True, text=True, check=True).stdout.strip()
    print(f"clone: {clone_dir} (commit {head}); package used: {used}")
    if not used.startswith(str(clone_dir)):
        raise SystemExit(f"error: the clone's package is not the one imported ({used}); check PYTHONPATH")
    print(harness.machine_line("cuda" if _cuda() else "cpu"))
    start = time.perf_counter()
    # Every step skips work a previous run finished: the results go to an empty folder
    # outside the clone, so committed results/<profile> files are neither reused nor touched.
    results_dir = clone_dir.parent / "results"
    command = [sys.executable, "-m", "melunmix.commands.cli", "reproduce", "--profile", profile,
               "--results-dir", str(results_dir)]
    if only:
        command += ["--only", *only]
    result = subprocess.run(command, cwd=clone_dir, env=env)
    elapsed = time.perf_counter() - start
    print(f"melunmix reproduce --profile {profile}: exit {result.returncode}, {elapsed:.0f} s wall "
          f"({elapsed / 60:.1f} min) including start-up; load average after: {harness.load_average()}")
    manifest = results_dir / profile / "manifest.json"
    if result.returncode != 0:
        print(f"error: the study failed; see the executed notebooks under {results_dir / profile}")
    return manifest


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--run", action="store_true", help="clone and run the study (~20 min for demo)")
    parser.add_argument("--keep", action="store_true", help="keep the clone after --run")
    parser.add_argument("--only", nargs="+", default=None, metavar="NN",
                        help="with --run: only these notebooks (e.g. 01), to check the set-up quickly")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest to read without --run (default results/<profile>/manifest.json)")
    args = parser.parse_args(argv)

    if not args.run:
        path = args.manifest or harness.REPO_ROOT / "results" / args.profile / "manifest.json"
        if not path.is_file():
            raise SystemExit(f"no study manifest at {path}: run the study first (make reproduce "
                             f"PROFILE={args.profile}) or time it from a fresh clone with --run (~20 min)")
        print_manifest(path)
        return

    clone_dir = Path(tempfile.mkdtemp(prefix="melunmix-study-")) / "melunmix"
    try:
        manifest = run_fresh_clone(args.profile, clone_dir, args.only)
        if manifest.is_file():
            print_manifest(manifest)
    finally:
        if args.keep:
            print(f"clone kept: {clone_dir}")
        else:
            shutil.rmtree(clone_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
