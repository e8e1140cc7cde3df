"""How far the committed notebooks' numbers move when they are recomputed elsewhere.

    .venv/bin/python bench/notebook_drift.py [--limited] [--keep DIR] [NN ...]

Executes the numbered notebooks with their defaults (the smoke profile), as `make test`'s
nbval pass does, but in a fresh home (``MELUNMIX_HOME``: new generated data, cache and
results, nothing reused), and compares every output that nbval compares with the
committed copy, the way ``notebooks/conftest.py`` does: text and integers exactly, decimal
numbers within the tolerance. ``--limited`` limits the vector instructions as `make test`'s
second notebook pass does (``LIMITED_ISA`` in the Makefile: torch's ``ATEN_CPU_CAPABILITY``,
oneDNN's ``ONEDNN_MAX_CPU_ISA``, MKL's ``MKL_ENABLE_INSTRUCTIONS`` at SSE4, below any
x86-64 CPU's best), which is how CI plays "another CPU".

Prints, per notebook and cell, the number of decimal numbers compared, how many differ,
the largest difference, and whether the cell would pass nbval exactly and within the
tolerance; then the largest difference overall. The tolerance in ``notebooks/conftest.py``
is set from this figure (README, Testing).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def limited_isa() -> dict[str, str]:
    """"Another CPU": the Makefile's ``LIMITED_ISA`` line (its one home) as a dict."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("LIMITED_ISA"):
            return dict(item.split("=", 1) for item in line.split(":=", 1)[1].split())
    raise SystemExit("no LIMITED_ISA line in the Makefile")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sanitizer(cfg: Path):
    import re

    lines = [ln.strip() for ln in cfg.read_text().splitlines()]
    pairs = []
    for i, line in enumerate(lines):
        if line.startswith("regex:"):
            pairs.append((re.compile(line[len("regex:"):].strip()),
                          lines[i + 1][len("replace:"):].strip()))

    def sanitize(text: str) -> str:
        for regex, replace in pairs:
            text = regex.sub(replace, text)
        return text
    return sanitize


def ignored(cell) -> bool:
    source = cell.source.lstrip()
    return source.startswith("# NBVAL_IGNORE_OUTPUT") or source.startswith("# NBVAL_SKIP") or \
        "nbval-ignore-output" in cell.metadata.get("tags", [])


def compared_texts(cell, all_cells: bool = False) -> list[str]:
    """The texts nbval compares in a code cell (stdout, text/plain, text/markdown); with
    ``all_cells`` those of cells nbval ignores too."""
    if ignored(cell) and not all_cells:
        return []
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            texts.append(out["text"])
        for key in ("text/plain", "text/markdown"):
            if key in out.get("data", {}):
                texts.append(out["data"][key])
    return texts


def compare(committed, executed, conftest, sanitize, all_cells: bool = False) -> list[dict]:
    rows = []
    code = [c for c in committed.cells if c.cell_type == "code"]
    new = [c for c in executed.cells if c.cell_type == "code" and
           "injected-parameters" not in c.metadata.get("tags", [])]
    for index, (ref_cell, test_cell) in enumerate(zip(code, new)):
        ref_texts = ["".join(compared_texts(ref_cell, all_cells))]
        test_texts = ["".join(compared_texts(test_cell, all_cells))]
        ref, test = sanitize(ref_texts[0]), sanitize(test_texts[0])
        if not ref and not test:
            continue
        _, ref_numbers = conftest.split_numbers(ref)
        _, test_numbers = conftest.split_numbers(test)
        diffs = [abs(float(a) - float(b)) for a, b in zip(ref_numbers, test_numbers)
                 if conftest._is_decimal(a) and conftest._is_decimal(b)
                 and a not in ("inf",) and float(a) != float(b)]
        rows.append(dict(cell=index, ignored=ignored(ref_cell), numbers=len(ref_numbers), differ=len(diffs),
                         largest=max(diffs, default=0.0), exact=ref == test,
                         within=conftest.outputs_agree(ref, test)))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers (01 .. 06); default all")
    parser.add_argument("--limited", action="store_true",
                        help="vector instructions limited as make test's second pass (Makefile LIMITED_ISA)")
    parser.add_argument("--all-cells", action="store_true",
                        help="also compare the cells nbval ignores (marked in the table; not counted as failing)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "lib"))
    from melunmix.study.pipeline import run_notebook

    conftest = _load("notebook_conftest", NOTEBOOKS / "conftest.py")
    sanitize = _sanitizer(NOTEBOOKS / "nbval_sanitize.cfg")
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name[:2] in args.notebooks]
    if args.limited:
        os.environ.update(limited_isa())
    home = args.keep or Path(tempfile.mkdtemp(prefix="melunmix-drift-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["MELUNMIX_HOME"] = str(home)
    print(f"instructions: {limited_isa() if args.limited else 'this machine default'}; "
          f"home {home}; tolerance {conftest.DECIMAL_TOLERANCE}")
    print(f"{'notebook':<28} {'cell':>4} {'numbers':>7} {'differ':>6} {'largest':>8}  exact  within")
    overall, failing = 0.0, 0
    for path in paths:
        executed = home / "executed" / path.name
        executed.parent.mkdir(parents=True, exist_ok=True)
        run_notebook(path, executed, cwd=path.parent, progress=False)
        for row in compare(nbformat.read(path, as_version=4), nbformat.read(executed, as_version=4),
                           conftest, sanitize, args.all_cells):
            if not row["ignored"]:
                overall = max(overall, row["largest"])
                failing += not row["within"]
            print(f"{path.name:<28} {row['cell']:>4} {row['numbers']:>7} {row['differ']:>6} "
                  f"{row['largest']:>8.4f}  {str(row['exact']):<5}  {row['within']}"
                  + ("  (ignored by nbval)" if row["ignored"] else ""))
    print(f"largest difference of a decimal number in a compared cell: {overall:.4f}; compared "
          f"cells beyond the tolerance: {failing}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
