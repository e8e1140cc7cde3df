"""Run the study: the numbered notebooks executed in order with papermill.

``reproduce("demo")`` executes ``notebooks/01_*.ipynb`` ... ``06_*.ipynb`` of the source
checkout that holds the working directory (or of ``notebooks_dir``) with the profile's
name (and an optional data root) injected as papermill parameters, writes the executed
copies to ``results/<profile>/notebooks/`` and a ``manifest.json`` that records
what produced the results (git commit, package versions, profile, data fingerprint, time
per notebook, and a log of the steps). Every notebook skips work that a previous run
finished (trained models, scored tracks, computed statistics), so rerunning after an
interruption resumes.

A run holds a lock on its results folder (``results/<profile>/run.lock``) from start to
end: a second run on the same folder is refused with one line naming the first. SIGINT
(Ctrl-C) and SIGTERM (``timeout``, cluster schedulers) stop the run cleanly: the kernel
and every process it started are stopped, the manifest marks the step as interrupted,
and :class:`RunInterrupted` says where the run stopped. A run killed outright (``kill
-9``) leaves no process behind either (the kernel follows its parent, the evaluation
pool's workers follow the kernel), and the next run marks its unfinished step
``killed``.

:func:`run_notebook` is the project's one notebook runner: ``reproduce`` calls it for each
step, and ``scripts/refresh_notebooks.py`` for the committed copies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..base import provenance
from ..base.config import HOME_ENV, RunPaths, Settings, find_checkout, home_dir, load_profile, run_paths
from ..base.files import hold_lock, read_json, write_json
from ..base.processes import current_children, new_children, stop_children

#: Folder of the study's notebooks; None: ``notebooks/`` of the checkout holding the
#: working directory (:func:`default_notebooks_dir`). An installed package ships none.
NOTEBOOKS_DIR: Path | None = None
#: Notebooks that read test/ only (score saved models, plot): a root without train/ runs them.
SCORING_NOTEBOOKS = ("05", "06")
KERNEL_NAME = "melunmix"
#: Packages whose versions go into the manifest (:func:`melunmix.base.provenance.package_versions`).
MANIFEST_PACKAGES = (
    "melunmix", "torch", "numpy", "scipy", "librosa", "soundfile", "musdb", "museval",
    "stempeg", "pandas", "optuna", "papermill", "matplotlib", "tinysoundfont", "pretty_midi",
)


#: Seconds a stopped kernel and its processes get between SIGTERM and SIGKILL.
STOP_GRACE = 5.0
#: Signals that stop a run cleanly.
STOP_SIGNALS = ("SIGINT", "SIGTERM")


class NotebookFailed(RuntimeError):
    """A notebook of the study raised; the message names the notebook, the cell and the error."""


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped :func:`reproduce`; the message says where and how to resume.

    A ``KeyboardInterrupt`` so that nothing between the signal and :func:`reproduce`
    (asyncio, nbclient, papermill) takes it for an ordinary error.
    """

    def __init__(self, message: str = "", signum: int = signal.SIGINT):
        self.signum = int(signum)
        super().__init__(message or f"interrupted by {signal.Signals(self.signum).name}; finished work is kept: "
                                    "rerun the same command to resume")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process that a signal ended (130, 143)."""
        return 128 + self.signum


@dataclass
class NotebookRun:
    name: str
    seconds: float
    output: Path


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source checkout holding the working directory.

    Raises
    ------
    FileNotFoundError
        One line: no checkout holds the working directory (an installed package ships no
        notebooks), naming the way out.
    """
    checkout = find_checkout()
    if checkout is None:
        raise FileNotFoundError(
            f"the study's notebooks are not installed with the package and no melunmix source checkout "
            f"holds {Path.cwd()}: run this inside a checkout (git clone the project, cd into it) or pass "
            "--notebooks-dir DIR (a folder of the numbered NN_*.ipynb notebooks)")
    return checkout / "notebooks"


def study_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in execution order (default :func:`default_notebooks_dir`)."""
    if notebooks_dir is None:
        notebooks_dir = NOTEBOOKS_DIR or default_notebooks_dir()
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {notebooks_dir}")
    return found


def run_notebook(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict | None = None,
                 kernel_name: str = KERNEL_NAME, cwd: str | os.PathLike | None = None,
                 progress: bool = True) -> None:
    """Execute one notebook with papermill, writing the executed copy to ``output``.

    The project's one notebook runner (:func:`reproduce`, ``scripts/refresh_notebooks.py``).

    Parameters
    ----------
    notebook, output : path
        The notebook to run and where its executed copy goes (written cell by cell).
    parameters : dict, optional
        Values injected after the cell tagged ``parameters`` (none: nothing injected).
    kernel_name : str
        Jupyter kernel (the venv's ``melunmix`` kernel by default).
    cwd : path, optional
        The kernel's working directory; default the notebook's folder.
    progress : bool
        papermill's progress bar over the cells.

    Raises
    ------
    papermill.PapermillExecutionError
        A cell raised (the executed copy holds the traceback).
    nbclient.exceptions.DeadKernelError
        The kernel died (killed, or out of memory).
    """
    import papermill  # heavy import: only when a notebook actually runs

    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters or {}, kernel_name=kernel_name,
        cwd=str(cwd if cwd is not None else Path(notebook).parent), progress_bar=progress, log_output=False,
        start_timeout=300, stdout_file=None, stderr_file=None,
    )


def _describe_failure(notebook: Path, output: Path, err: Exception) -> str:
    cell = getattr(err, "exec_count", None) or getattr(err, "cell_index", None)
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    return (
        f"notebook {notebook.name} failed in cell In [{cell}]: {ename}: {evalue}\n"
        f"the executed notebook with the full traceback is {output}"
    )


def _check_kernel(kernel_name: str) -> None:
    """Refuse in one line, before anything is written, when the notebooks' Jupyter kernel
    is not registered (a pip or conda install without ``make setup``)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise ValueError(
            f"the Jupyter kernel {kernel_name!r} that runs the notebooks is not registered; register it with "
            f"`{sys.executable} -m ipykernel install --sys-prefix --name {kernel_name}` (`make setup` does it), "
            "then rerun"
        ) from None


@dataclass
class _RunPlan:
    """What :func:`reproduce` checked before writing anything."""

    settings: Settings
    paths: RunPaths
    notebooks: list[Path]
    notebooks_dir: Path
    is_stand_in: bool
    is_generated: bool
    needs_train: bool
    data_record: dict


def _plan_run(profile, data_root, results_dir, notebooks_dir, only, kernel_name, stand_in, device) -> _RunPlan:
    """The profile, data root, notebooks and kernel of a run, each checked (one line when
    wrong) before anything is written."""
    from .. import datasets  # the data layer (torch) only once a run starts
    from ..base.devices import device_overrides, requested_device  # torch only once a run starts

    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR or default_notebooks_dir()
    device = requested_device(device)  # an unknown or absent device stops here, in one line
    settings = load_profile(profile, overrides=device_overrides(device))  # validates it before any work
    # A MUSDB18 profile without a MUSDB18 root stops here, before any kernel starts.
    resolved = datasets.resolve_data_root(data_root or settings.data.root, settings.data.generated)
    is_stand_in = datasets.check_study_root(resolved, settings.name, settings.data.needs_musdb, stand_in)
    paths = run_paths(settings, results_dir)
    notebooks = _select_notebooks(study_notebooks(notebooks_dir), only)
    _check_kernel(kernel_name)
    # A user's root is checked (and a derived validation split printed) before any kernel
    # starts; the generated one is made by notebook 01 and recorded after it.
    needs_train = any(not nb.name.startswith(SCORING_NOTEBOOKS) for nb in notebooks)
    is_generated = datasets.is_generated_root(resolved)
    data_record = {} if is_generated else datasets.root_record(resolved, settings, needs_train)
    return _RunPlan(settings, paths, notebooks, notebooks_dir, is_stand_in, is_generated, needs_train, data_record)


def _execute_step(notebook: Path, output: Path, parameters: dict, kernel_name: str, notebooks_dir: Path,
                  progress: bool, record: tuple, stop) -> None:
    """Run one notebook of the run; a failure marks its step in the manifest (``record``:
    the manifest, its path and the step) and raises :class:`NotebookFailed`."""
    import papermill  # heavy import: only when the study actually runs
    from nbclient.exceptions import DeadKernelError

    manifest, manifest_path, step = record
    try:
        run_notebook(notebook, output, parameters, kernel_name=kernel_name, cwd=notebooks_dir, progress=progress)
    except papermill.PapermillExecutionError as err:
        _fail_step(manifest, manifest_path, step, notebook, f"{err.ename}: {err.evalue}")
        raise NotebookFailed(_describe_failure(notebook, output, err)) from None
    except DeadKernelError as err:
        stop.check()  # the kernel was stopped by the signal that stops this run
        error = f"the kernel died ({err}); was it killed, or out of memory?"
        _fail_step(manifest, manifest_path, step, notebook, error)
        raise NotebookFailed(f"notebook {notebook.name} failed: {error}; the executed notebook "
                             f"is {output}") from None
    stop.check()  # a signal that papermill swallowed


def _step_done(manifest: dict, manifest_path: Path, step: dict, seconds: float, settings: Settings, data_root,
               needs_train: bool) -> None:
    """Record a notebook that ran to the end, and the data as they are now, in the manifest."""
    _end_step(step, "ok", seconds=round(seconds, 1))
    manifest["notebooks"][step["notebook"]] = {"status": "ok", "seconds": round(seconds, 1)}
    # The data fingerprint is known once the data exist (notebook 01 makes them).
    manifest["data_fingerprint"] = _data_fingerprint(settings, data_root)
    manifest.update(_data_record(settings, data_root, needs_train))
    write_json(manifest_path, manifest)


def reproduce(
    profile: str = "demo",
    data_root: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    only: list[str] | None = None,
    kernel_name: str = KERNEL_NAME,
    progress: bool = True,
    stand_in: bool = False,
    device: str | None = None,
) -> list[NotebookRun]:
    """Execute the study's notebooks in order for ``profile``.

    Parameters
    ----------
    profile : str
        Profile name (shipped with the package: ``melunmix/profiles/<profile>.yaml``) or path to a
        YAML file.
    data_root : path, optional
        MUSDB18 (stems) or MUSDB18-HQ/WAV root; overrides the profile and the environment.
    results_dir : path, optional
        Parent of the run folder (default :func:`melunmix.base.config.results_root`:
        ``$MELUNMIX_RESULTS_DIR``, else ``results/`` of the checkout).
    notebooks_dir : path, optional
        Folder of the numbered notebooks (default ``notebooks/`` of the source checkout
        holding the working directory; without one, and without this argument, the run is
        refused in one line before anything is written).
    only : list of str, optional
        Run only notebooks whose name starts with one of these prefixes (``["05", "06"]``).
    stand_in : bool
        Let a MUSDB18 profile (``poster``, ``umx``) run on the generated dataset when no
        MUSDB18 root is given; the manifest records ``"stand_in": true``.
    device : str, optional
        ``cpu``, ``cuda`` or ``cuda:N`` for every notebook's training and separation
        (``$MELUNMIX_DEVICE`` for the kernels; each notebook's settings record it as
        ``train.device``); default the profile's.

    Returns
    -------
    list of NotebookRun
        Name, wall time (s) and output path of every executed notebook.

    Raises
    ------
    NotebookFailed
        At the first failing notebook, naming it, the cell and the error.
    melunmix.base.files.FolderInUse
        Another run holds the results folder's lock (the message names it).
    RunInterrupted
        SIGINT or SIGTERM arrived: every process the run started is stopped, the manifest
        marks the step ``interrupted``, and the message names it; rerunning resumes.
    """
    from ..base.devices import DEVICE_ENV  # torch only once a run starts

    callers = current_children()  # processes started from here on are this run's (see _stop_run)
    plan = _plan_run(profile, data_root, results_dir, notebooks_dir, only, kernel_name, stand_in, device)
    settings, paths, notebooks, notebooks_dir = plan.settings, plan.paths, plan.notebooks, plan.notebooks_dir
    parameters = _kernel_parameters(profile, data_root, results_dir, stand_in)

    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "profile": settings.name,
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""}
    # The kernels run in notebooks_dir; they place data, cache and results where this
    # process does (its working directory may be elsewhere): MELUNMIX_HOME, unless set.
    with (hold_lock(paths.lock, holder), _StopSignals() as stop, _environment(HOME_ENV, str(home_dir())),
          _environment(DEVICE_ENV, device, replace=True)):
        manifest_path = paths.manifest
        manifest: dict | None = None  # None until read: a signal may come first
        runs: list[NotebookRun] = []
        step: dict | None = None  # the step running now, if any
        try:
            paths.notebooks.mkdir(parents=True, exist_ok=True)
            manifest = _open_manifest(manifest_path, settings, parameters, plan.is_stand_in,
                                      plan.is_generated, plan.data_record)
            steps = manifest["steps"]

            for index, notebook in enumerate(notebooks, 1):
                output = paths.notebooks / notebook.name
                if progress:
                    print(f"[{index}/{len(notebooks)}] {notebook.name} ...", flush=True)
                step = {"notebook": notebook.name, "status": "running", "started": _now()}
                steps.append(step)
                write_json(manifest_path, manifest)
                start = time.perf_counter()
                _execute_step(notebook, output, parameters, kernel_name, notebooks_dir, progress,
                              (manifest, manifest_path, step), stop)
                seconds = time.perf_counter() - start
                _step_done(manifest, manifest_path, step, seconds, settings, data_root, plan.needs_train)
                step = None
                runs.append(NotebookRun(notebook.name, seconds, output))
                if progress:
                    print(f"[{index}/{len(notebooks)}] {notebook.name} done in {seconds:.0f} s", flush=True)
        except BaseException as err:
            signum = stop.signum or (signal.SIGINT if isinstance(err, KeyboardInterrupt) else None)
            if signum is None:
                raise
            with stop.ignored():
                _silence_event_loop()
                message = _stop_run(signum, manifest, manifest_path, step, runs, notebooks, paths.root, callers)
            raise RunInterrupted(message, signum) from None
        manifest["total_seconds"] = round(sum(v.get("seconds", 0) for v in manifest["notebooks"].values()), 1)
        write_json(manifest_path, manifest)
    return runs


def _select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks ``--only`` names by prefix (all without it); an unknown prefix is refused."""
    if not only:
        return notebooks
    unknown = [p for p in only if not any(nb.name.startswith(p) for nb in notebooks)]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such notebook; the study's notebooks are "
                         f"{', '.join(nb.name for nb in notebooks)}")
    return [nb for nb in notebooks if any(nb.name.startswith(p) for p in only)]


def _kernel_parameters(profile: str, data_root, results_dir, stand_in: bool) -> dict:
    """What papermill injects into every notebook. The kernels run in notebooks/: a profile
    given as a path relative to the caller's working directory is passed on resolved, or
    notebook 01 would not find it."""
    profile_arg = Path(profile)
    parameters = {"profile": str(profile_arg.resolve()) if profile_arg.suffix in (".yaml", ".yml") else str(profile)}
    if data_root is not None:
        parameters["data_root"] = str(Path(data_root).expanduser().resolve())
    if results_dir is not None:
        parameters["results_dir"] = str(Path(results_dir).resolve())
    if stand_in:
        parameters["stand_in"] = True
    return parameters


def _open_manifest(path: Path, settings, parameters: dict, is_stand_in: bool, is_generated: bool,
                   data_record: dict) -> dict:
    """The run's manifest as this run starts: the previous one's notebooks and steps kept
    (steps left ``running`` by a killed run marked ``killed``), the rest made current."""
    manifest = read_json(path) if path.exists() else {}
    manifest.update(
        profile=settings.name,
        settings=settings.to_dict(),
        parameters=parameters,
        stand_in=is_stand_in,
        data_kind="generated stand-in for MUSDB18" if is_stand_in else ("generated" if is_generated else "user-provided"),
        git_commit=provenance.git_commit(),
        packages=provenance.package_versions(MANIFEST_PACKAGES),
        machine=provenance.machine(),
    )
    manifest.update(data_record)
    manifest.setdefault("notebooks", {})
    _mark_killed_steps(manifest)
    manifest.setdefault("steps", [])
    return manifest


def _fail_step(manifest: dict, path: Path, step: dict, notebook: Path, error: str) -> None:
    """Record a failed notebook in its step and the manifest, and write the manifest."""
    _end_step(step, "failed", error=error)
    manifest["notebooks"][notebook.name] = {"status": "failed", "error": error}
    write_json(path, manifest)


@contextlib.contextmanager
def _environment(name: str, value: str | None, replace: bool = False) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block when it is not set already (or always,
    with ``replace``); restored after. ``value`` None: nothing changes."""
    if value is None or (os.environ.get(name) and not replace):
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _now() -> str:
    """Local time with its UTC offset, to the second (ISO 8601)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _end_step(step: dict, status: str, **fields) -> None:
    step.update(status=status, ended=_now(), **fields)


def _mark_killed_steps(manifest: dict) -> None:
    """Steps left ``running`` by a run that ended without a word (``kill -9``, power loss).

    Called with the folder's lock held, so no live run is doing them.
    """
    for step in manifest.get("steps", []):
        if isinstance(step, dict) and step.get("status") == "running":
            step["status"] = "killed"
            name = step.get("notebook")
            if name and manifest["notebooks"].get(name, {}).get("status") != "ok":
                manifest["notebooks"][name] = {"status": "killed"}


def _stop_run(signum, manifest, manifest_path, step, runs, notebooks, run_dir, callers) -> str:
    """Stop the kernel and everything it started, record the step, say where the run stopped.

    The children in ``callers`` (there before the run) are left alone: a program that
    calls :func:`reproduce` keeps its own processes.
    """

    connection_files = _kernel_connection_files(callers)
    stop_children(STOP_GRACE, keep=callers)
    for path in connection_files:  # what the kernel manager would have removed
        with contextlib.suppress(OSError):
            path.unlink()
    name = signal.Signals(signum).name
    names = [nb.name for nb in notebooks]
    if step is not None and manifest is not None:
        _end_step(step, "interrupted", signal=name)
        manifest["notebooks"][step["notebook"]] = {"status": "interrupted", "signal": name}
        where = (f"during {step['notebook']} (notebook {names.index(step['notebook']) + 1} of "
                 f"{len(names)})")
    elif runs and len(runs) < len(names):
        where = f"after {runs[-1].name}, before {names[len(runs)]} started"
    elif runs:
        where = f"after the last notebook, {runs[-1].name}"
    else:
        where = "before the first notebook started"
    if manifest is not None:
        write_json(manifest_path, manifest)
    return (f"interrupted by {name} {where}; finished work is kept in {run_dir}: rerun the same "
            "command to resume")


def _silence_event_loop() -> None:
    """No asyncio report of the interrupted cell's task.

    The signal left papermill's event loop holding the task of the cell that ran, which
    nbclient's clean-up then finishes with an error nobody reads; asyncio would print it
    (with the whole cell and its traceback) when the task is garbage collected.
    """
    with contextlib.suppress(Exception):
        from jupyter_core.utils import ensure_event_loop

        ensure_event_loop().set_exception_handler(lambda loop, context: None)


def _kernel_connection_files(callers: frozenset) -> list[Path]:
    """Connection files (``-f FILE``) of the Jupyter kernels this run started (children not in ``callers``)."""
    import psutil


    found = []
    for child in new_children(callers):
        with contextlib.suppress(psutil.Error):
            command = child.cmdline()
            if any("ipykernel" in part for part in command) and "-f" in command[:-1]:
                found.append(Path(command[command.index("-f") + 1]))
    return found


class _StopSignals:
    """SIGINT and SIGTERM raise :class:`RunInterrupted` in the main thread while active.

    papermill does not reliably turn Ctrl-C into ``KeyboardInterrupt`` (a signal that
    arrives while asyncio waits for the kernel can be lost in a task), so the handler
    also records the signal: :meth:`check` raises it after papermill returns. Outside the
    main thread (signals cannot be handled there) this does nothing.
    """

    def __init__(self):
        self.signum: int | None = None
        self._quiet = False
        self._previous: dict = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None and signal.getsignal(signum) is not None:  # None: set from C, left alone
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if not self._quiet:
            raise RunInterrupted(signum=signum)

    def check(self) -> None:
        """Raise :class:`RunInterrupted` if a stop signal arrived."""
        if self.signum is not None:
            raise RunInterrupted(signum=self.signum)

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        """Further signals are recorded but do not interrupt the block (the clean-up)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False


def _data_record(settings, data_root, needs_train: bool) -> dict:
    """The manifest's ``validation_split``, ``sample_rates`` and ``mixture_check`` once the data exist."""
    from .. import datasets  # the data layer (torch) only once a run starts

    root = datasets.resolve_data_root(data_root or settings.data.root, generated=settings.data.generated)
    return datasets.root_record(root, settings, needs_train) if Path(root).is_dir() else {}


def _data_fingerprint(settings, data_root) -> dict | None:
    from .. import datasets  # the data layer (torch) only once a run starts

    try:
        root = datasets.resolve_data_root(data_root or settings.data.root, generated=settings.data.generated)
        if not Path(root).exists():
            return None
        return {"root": str(root), "fingerprint": datasets.dataset_fingerprint(root)}
    except (OSError, ValueError):
        return None
