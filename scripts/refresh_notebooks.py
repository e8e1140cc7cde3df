"""Re-execute the committed notebooks in place with their defaults (the smoke profile).

Run this after a change that alters what the notebooks show, then commit them: `make test`
re-executes them with nbval and compares the outputs with the committed ones.

    .venv/bin/python scripts/refresh_notebooks.py [--fresh] [NN ...]

``--fresh`` deletes results/smoke first, so the stored outputs come from a run that
computes everything (as CI's fresh clone does).
"""

import argparse
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook number prefixes (default: all)")
    parser.add_argument("--fresh", action="store_true", help="delete results/smoke first")
    args = parser.parse_args(argv)
    if args.fresh:
        shutil.rmtree(ROOT / "results" / "smoke", ignore_errors=True)
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if args.only and not any(path.name.startswith(p) for p in args.only):
            continue
        print(f"executing {path.name}", flush=True)
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name="melunmix", timeout=1800, startup_timeout=300,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
