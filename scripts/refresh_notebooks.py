"""Re-execute the committed notebooks with their defaults (the smoke profile) and rewrite them in place.

Run this after a change that alters what the notebooks show, then commit them: `make test`
re-executes them with nbval and compares the outputs with the committed ones.

    .venv/bin/python scripts/refresh_notebooks.py [--fresh] [NN ...]

Each notebook runs with the project's one notebook runner, the one `melunmix reproduce`
uses (:func:`melunmix.study.pipeline.run_notebook`: papermill, the ``melunmix`` kernel, in
``notebooks/``), into a temporary copy. The committed notebook is then rewritten in place
with the new outputs and execution counts, and without what varies from run to run or
machine to machine:

- every cell keeps its committed metadata (tags, nbval markers) but nbclient's timing
  and papermill's record (``execution``, ``papermill``); papermill's empty tag lists are
  not written;
- audio players (base64 WAV, megabytes per notebook) are replaced by one line of text,
  ``[audio players: run the notebook to listen]``. They may only appear in cells tagged
  ``nbval-ignore-output`` (or marked ``# NBVAL_IGNORE_OUTPUT``), whose outputs nbval does
  not compare; a player in any other cell stops the script, naming the cell.

An output that still holds this checkout's absolute path is reported (it would differ on
another machine). A notebook that fails leaves its committed copy as it was.

``--fresh`` deletes ``results/smoke`` first, so the stored outputs come from a run that
computes everything (as CI's fresh clone does).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: What replaces the audio players of a cell in the committed copies.
AUDIO_NOTE = "[audio players: run the notebook to listen]"
#: The nbval marker of a cell whose outputs are not compared (first line comment or tag).
IGNORE_MARKER = "# NBVAL_IGNORE_OUTPUT"
IGNORE_TAG = "nbval-ignore-output"
#: Cell and notebook metadata written per run (nbclient's timing, papermill's record): never committed.
VOLATILE_METADATA = ("execution", "papermill")


def is_audio_player(output: dict) -> bool:
    """True for an output that displays an HTML ``<audio>`` element (IPython's ``Audio``)."""
    return output.get("output_type") in ("display_data", "execute_result") and \
        "<audio" in str(output.get("data", {}).get("text/html", ""))


def outputs_ignored(cell: dict) -> bool:
    """True when nbval does not compare the cell's outputs (``# NBVAL_IGNORE_OUTPUT`` or its tag)."""
    return IGNORE_MARKER in cell.get("source", "") or IGNORE_TAG in cell.get("metadata", {}).get("tags", [])


def strip_audio_players(nb, name: str = "notebook") -> int:
    """Replace each cell's audio players by one text output (:data:`AUDIO_NOTE`), in place.

    Parameters
    ----------
    nb : nbformat.NotebookNode
    name : str
        The notebook's name, for the error message.

    Returns
    -------
    int
        Number of players removed.

    Raises
    ------
    ValueError
        A player in a cell whose outputs nbval compares (the stripped copy would fail
        `make test`); the message names the cell and the marker to add.
    """
    removed = 0
    for index, cell in enumerate(nb.cells):
        players = [o for o in cell.get("outputs", []) if is_audio_player(o)]
        if not players:
            continue
        if not outputs_ignored(cell):
            raise ValueError(f"{name} cell {index} shows audio players but nbval compares its outputs; "
                             f"start the cell with '{IGNORE_MARKER}'")
        outputs, noted = [], False
        for output in cell.outputs:
            if not is_audio_player(output):
                outputs.append(output)
            elif not noted:
                outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": AUDIO_NOTE}))
                noted = True
        cell.outputs = outputs
        removed += len(players)
    return removed


def commit_ready(source, executed, name: str = "notebook"):
    """The committed notebook ``source`` with the outputs of its executed copy, nothing per run.

    Parameters
    ----------
    source : nbformat.NotebookNode
        The notebook as committed (its cells' metadata, tags and ids are kept).
    executed : nbformat.NotebookNode
        The same notebook after :func:`melunmix.study.pipeline.run_notebook` without parameters
        (so no cell was injected).
    name : str
        For messages.

    Returns
    -------
    nbformat.NotebookNode
        A new notebook: ``source``'s cells with ``executed``'s outputs and execution
        counts, audio players stripped (:func:`strip_audio_players`); the metadata are
        ``source``'s without :data:`VOLATILE_METADATA`, with the executed kernel's
        ``language_info``.

    Raises
    ------
    ValueError
        The two notebooks do not have the same cells (a cell was injected or edited).
    """
    if len(source.cells) != len(executed.cells) or any(
            a.cell_type != b.cell_type or a.source != b.source for a, b in zip(source.cells, executed.cells)):
        raise ValueError(f"{name}: the executed copy does not have the committed notebook's cells "
                         "(parameters injected, or the notebook edited while it ran); run the refresh again")
    out = copy.deepcopy(source)
    for key in VOLATILE_METADATA:
        out.metadata.pop(key, None)
    for cell, ran in zip(out.cells, executed.cells):
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = copy.deepcopy(ran.get("outputs", []))
            cell.execution_count = ran.get("execution_count")
    if "language_info" in executed.metadata:
        out.metadata["language_info"] = copy.deepcopy(executed.metadata["language_info"])
    strip_audio_players(out, name)
    return out


def machine_paths(nb, path: str | os.PathLike = ROOT) -> list[str]:
    """``"cell N (kind)"`` for every output of ``nb`` whose text holds the absolute ``path``."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else \
                " ".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))
            if str(path) in str(text):
                found.append(f"cell {index} ({output.get('name') or output.get('output_type')})")
    return found


def execute(path: Path, progress: bool = True):
    """Execute the committed notebook ``path`` (into a temporary copy) and return it
    commit-ready (see the module); ``path`` itself is not touched."""
    from melunmix.study.pipeline import run_notebook

    source = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="refresh-") as tmp:
        executed_path = Path(tmp) / path.name
        run_notebook(path, executed_path, cwd=path.parent, progress=progress)
        executed = nbformat.read(executed_path, as_version=4)
    ready = commit_ready(source, executed, path.name)
    nbformat.validate(ready)
    return ready


def write(path: Path, ready) -> None:
    """Replace the committed notebook ``path`` with ``ready`` (atomically)."""
    partial = path.with_name(f".{path.name}.refresh")
    nbformat.write(ready, partial)
    os.replace(partial, path)
    for where in machine_paths(ready):
        print(f"warning: {path.name} {where}: an output holds the absolute path {ROOT}", file=sys.stderr)


def refresh(path: Path, progress: bool = True) -> None:
    """Execute the committed notebook ``path`` and rewrite it in place, commit-ready (see the module)."""
    write(path, execute(path, progress))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook number prefixes (default: all)")
    parser.add_argument("--fresh", action="store_true", help="delete results/smoke first")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # results, data and cache of this checkout, wherever the script is called from
    from melunmix.study.presentation import COMMITTED_INLINE_DPI, INLINE_DPI_ENV

    # low-resolution inline figures in the committed copies only (the kernels inherit it)
    os.environ[INLINE_DPI_ENV] = str(COMMITTED_INLINE_DPI)
    from melunmix.base.config import results_root

    if args.fresh:
        shutil.rmtree(results_root() / "smoke", ignore_errors=True)
    # Every notebook is executed before any is rewritten: the checkout stays as it was while
    # they run, so each records the same commit (not "-dirty" from its predecessors' rewrite),
    # and a failure leaves every committed copy unchanged.
    ready = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if args.only and not any(path.name.startswith(p) for p in args.only):
            continue
        print(f"executing {path.name}", flush=True)
        try:
            ready.append((path, execute(path)))
        except Exception as err:  # noqa: BLE001 - one line per failing notebook, then stop
            ename = getattr(err, "ename", type(err).__name__)
            evalue = getattr(err, "evalue", str(err))
            print(f"refresh_notebooks: {path.name} failed ({ename}: {evalue}); every committed copy is unchanged",
                  file=sys.stderr)
            return 1
    for path, notebook in ready:
        write(path, notebook)
    return 0


if __name__ == "__main__":
    sys.exit(main())
