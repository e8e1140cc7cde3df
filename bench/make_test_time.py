"""Wall time of the README's two set-up-and-test commands on a fresh clone, by phase.

Clones this checkout's HEAD into a temporary folder (a fresh machine's view: no .venv, no
data, no caches), then times ``make setup`` (the environment) and ``make test`` (unit tests,
then the notebook checks), and prints the phases from ``make test``'s own output (pytest's
summary lines, and any failed test; the clone is kept when one fails). Issue 25's target:
``make test`` within 10 minutes on this 2-core machine once set up.

Usage::

    .venv/bin/python bench/make_test_time.py [--keep]

Takes as long as what it measures (about 12 minutes here); run nothing else beside it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str], cwd: Path, log: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - start, code, log.read_text()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args(argv)
    commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    folder = Path(tempfile.mkdtemp(prefix="melunmix-make-test-"))
    clone = folder / "melunmix"
    subprocess.check_call(["git", "clone", "-q", str(ROOT), str(clone)])
    print(f"commit {commit}, fresh clone in {clone}; load average {os.getloadavg()[0]:.1f} "
          f"(above {os.cpu_count()} cores, other processes compete)", flush=True)
    try:
        setup_s, setup_code, _ = _timed(["make", "setup"], clone, folder / "setup.log")
        print(f"make setup: {setup_s / 60:.1f} min (exit {setup_code})", flush=True)
        test_s, test_code, text = _timed(["make", "test"], clone, folder / "test.log")
        print(f"make test:  {test_s / 60:.1f} min (exit {test_code}), set-up done", flush=True)
        for line in re.findall(r"^=+ (.*(?:passed|failed).*) =+$", text, flags=re.M):
            print(f"  {line}")
        for line in re.findall(r"^(FAILED .*|ERROR .*)$", text, flags=re.M):
            print(f"  {line}")
        if test_code and not args.keep:
            args.keep = True  # a failure's log is worth keeping
        print(f"fresh machine, both commands: {(setup_s + test_s) / 60:.1f} min")
        return test_code or setup_code
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
