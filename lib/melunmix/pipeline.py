"""Run the study: the numbered notebooks executed in order with papermill.

``reproduce("demo")`` executes ``notebooks/01_*.ipynb`` ... ``06_*.ipynb`` with the
profile's name (and an optional data root) injected as papermill parameters, writes the
executed copies to ``results/<profile>/notebooks/`` and a ``manifest.json`` that records
what produced the results (git commit, package versions, profile, data fingerprint, time
per notebook). Every notebook skips work that a previous run finished (trained models,
scored tracks, computed statistics), so rerunning after an interruption resumes.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .config import REPO_ROOT, load_profile, run_paths
from .files import read_json, write_json

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
#: Notebooks that read test/ only (score saved models, plot): a root without train/ runs them.
SCORING_NOTEBOOKS = ("05", "06")
KERNEL_NAME = "melunmix"
#: Packages whose versions go into the manifest.
MANIFEST_PACKAGES = (
    "melunmix", "torch", "numpy", "scipy", "librosa", "soundfile", "musdb", "museval",
    "stempeg", "pandas", "optuna", "papermill", "matplotlib", "tinysoundfont", "pretty_midi",
)


class NotebookFailed(RuntimeError):
    """A notebook of the study raised; the message names the notebook, the cell and the error."""


@dataclass
class NotebookRun:
    name: str
    seconds: float
    output: Path


def study_notebooks(notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in execution order."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {notebooks_dir}")
    return found


def git_commit(repo: Path = REPO_ROOT) -> str | None:
    """Current commit hash, with ``-dirty`` when the tree has uncommitted changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def package_versions(names=MANIFEST_PACKAGES) -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _describe_failure(notebook: Path, output: Path, err: Exception) -> str:
    cell = getattr(err, "exec_count", None) or getattr(err, "cell_index", None)
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    return (
        f"notebook {notebook.name} failed in cell In [{cell}]: {ename}: {evalue}\n"
        f"the executed notebook with the full traceback is {output}"
    )


def reproduce(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    only: list[str] | None = None,
    kernel_name: str = KERNEL_NAME,
    progress: bool = True,
    stand_in: bool = False,
) -> list[NotebookRun]:
    """Execute the study's notebooks in order for ``profile``.

    Parameters
    ----------
    profile : str
        Profile name (``notebooks/profiles/<profile>.yaml``) or path to a YAML file.
    data_root : path, optional
        MUSDB18 (stems) or MUSDB18-HQ/WAV root; overrides the profile and the environment.
    results_dir : path, optional
        Parent of the run folder (default ``results/``).
    only : list of str, optional
        Run only notebooks whose name starts with one of these prefixes (``["05", "06"]``).
    stand_in : bool
        Let a MUSDB18 profile (``poster``, ``umx``) run on the generated dataset when no
        MUSDB18 root is given; the manifest records ``"stand_in": true``.

    Returns
    -------
    list of NotebookRun
        Name, wall time (s) and output path of every executed notebook.

    Raises
    ------
    NotebookFailed
        At the first failing notebook, naming it, the cell and the error.
    """
    import papermill  # heavy import: only when the study actually runs

    from . import datasets

    settings = load_profile(profile)  # validates the profile before any work
    # A MUSDB18 profile without a MUSDB18 root stops here, before any kernel starts.
    resolved = datasets.resolve_data_root(data_root or settings.data.root, settings.data.generated)
    is_stand_in = datasets.check_study_root(resolved, settings.name, settings.data.needs_musdb, stand_in)
    paths = run_paths(settings, results_dir)
    notebooks = study_notebooks(notebooks_dir)
    if only:
        unknown = [p for p in only if not any(nb.name.startswith(p) for nb in notebooks)]
        if unknown:
            raise ValueError(f"--only {' '.join(unknown)}: no such notebook; the study's notebooks are "
                             f"{', '.join(nb.name for nb in notebooks)}")
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(p) for p in only)]
    # A user's root is checked (and a derived validation split printed) before any kernel
    # starts; the generated one is made by notebook 01 and recorded after it.
    needs_train = any(not nb.name.startswith(SCORING_NOTEBOOKS) for nb in notebooks)
    data_record = {} if datasets.is_generated_root(resolved) else datasets.root_record(resolved, settings, needs_train)
    paths.notebooks.mkdir(parents=True, exist_ok=True)

    # The kernels run in notebooks/: a profile given as a path relative to the caller's
    # working directory is passed on resolved, or notebook 01 would not find it.
    profile_arg = Path(profile)
    parameters = {"profile": str(profile_arg.resolve()) if profile_arg.suffix in (".yaml", ".yml") else str(profile)}
    if data_root is not None:
        parameters["data_root"] = str(Path(data_root).expanduser().resolve())
    if results_dir is not None:
        parameters["results_dir"] = str(Path(results_dir).resolve())
    if stand_in:
        parameters["stand_in"] = True

    manifest_path = paths.manifest
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    manifest.update(
        profile=settings.name,
        settings=settings.to_dict(),
        parameters=parameters,
        stand_in=is_stand_in,
        data_kind="generated stand-in for MUSDB18" if is_stand_in else (
            "generated" if datasets.is_generated_root(resolved) else "user-provided"),
        git_commit=git_commit(),
        packages=package_versions(),
        machine={"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
    )
    manifest.update(data_record)
    manifest.setdefault("notebooks", {})

    runs = []
    for index, notebook in enumerate(notebooks, 1):
        output = paths.notebooks / notebook.name
        if progress:
            print(f"[{index}/{len(notebooks)}] {notebook.name} ...", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
                cwd=str(Path(notebooks_dir)), progress_bar=progress, log_output=False,
                start_timeout=300, stdout_file=None, stderr_file=None,
            )
        except papermill.PapermillExecutionError as err:
            manifest["notebooks"][notebook.name] = {"status": "failed", "error": f"{err.ename}: {err.evalue}"}
            write_json(manifest_path, manifest)
            raise NotebookFailed(_describe_failure(notebook, output, err)) from None
        seconds = time.perf_counter() - start
        manifest["notebooks"][notebook.name] = {"status": "ok", "seconds": round(seconds, 1)}
        runs.append(NotebookRun(notebook.name, seconds, output))
        if progress:
            print(f"[{index}/{len(notebooks)}] {notebook.name} done in {seconds:.0f} s", flush=True)
        # The data fingerprint is known once the data exist (notebook 01 makes them).
        manifest["data_fingerprint"] = _data_fingerprint(settings, data_root)
        manifest.update(_data_record(settings, data_root, needs_train))
        write_json(manifest_path, manifest)
    manifest["total_seconds"] = round(sum(v.get("seconds", 0) for v in manifest["notebooks"].values()), 1)
    write_json(manifest_path, manifest)
    return runs


def _data_record(settings, data_root, needs_train: bool) -> dict:
    """The manifest's ``validation_split``, ``sample_rates`` and ``mixture_check`` once the data exist."""
    from . import datasets

    root = datasets.resolve_data_root(data_root or settings.data.root, generated=settings.data.generated)
    return datasets.root_record(root, settings, needs_train) if Path(root).is_dir() else {}


def _data_fingerprint(settings, data_root) -> dict | None:
    from . import datasets

    try:
        root = datasets.resolve_data_root(data_root or settings.data.root, generated=settings.data.generated)
        if not Path(root).exists():
            return None
        return {"root": str(root), "fingerprint": datasets.dataset_fingerprint(root)}
    except (OSError, ValueError):
        return None
