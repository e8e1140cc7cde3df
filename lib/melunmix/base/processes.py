"""Child processes that never outlive the run that started them, and the scoring pool's workers.

Two tools, one for each side of a parent/child pair:

- :func:`die_with_parent`, called first thing in a worker process (a pool initializer):
  the worker is killed as soon as the process that started it dies, however it dies
  (``kill -9`` included). On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG,
  SIGKILL)``); elsewhere a daemon thread polls the parent every half second.
- :func:`stop_children`, called by a parent that is being stopped (Ctrl-C, SIGTERM): every
  process it started (since :func:`current_children`), with their whole process groups
  and descendants, gets SIGTERM, then SIGKILL after a grace period.

The process pool that scores test tracks (:mod:`melunmix.scoring.evaluate`, :mod:`melunmix.commands.score`)
is built from these and a few more: :func:`init_pool_worker` (its initializer: die with
the parent, ignore SIGINT, one thread), :func:`children_ignore_sigint` (around starting the
workers), :func:`kill_pool_workers` (on Ctrl-C), :func:`limit_to_one_thread` /
:func:`one_thread` (the thread setting every track is scored with, in a worker or in a
serial run) and :func:`usable_cores` (the default worker count).

A Jupyter kernel started by papermill needs neither: jupyter_client starts it in its own
session and ipykernel polls its parent every second (``JPY_PARENT_PID``), exiting when it
is gone; :mod:`melunmix.study.pipeline` stops it with :func:`stop_children` when interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1
#: Seconds between two checks of the parent where the kernel cannot do it.
POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> str:
    """Make this process exit as soon as its parent ``parent_pid`` is gone.

    Parameters
    ----------
    parent_pid : int
        Process id of the parent, taken by the parent itself (``os.getpid()`` passed in
        the pool's ``initargs``): if the parent died before this call, this process
        exits at once instead of waiting for a signal that was already due.

    Returns
    -------
    str
        ``"pdeathsig"`` (Linux: the kernel sends SIGKILL when the parent dies; note that
        it fires when the parent *thread* that started this process ends, which is the
        thread that created the pool) or ``"poll"`` (a daemon thread checks the parent).
    """
    how = "poll"
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                how = "pdeathsig"
        except (OSError, AttributeError):
            pass
    if not _parent_alive(parent_pid):
        os._exit(1)  # the parent died before the signal was set up
    if how == "poll":
        threading.Thread(target=_poll_parent, args=(parent_pid,), name="die-with-parent", daemon=True).start()
    return how


def _parent_alive(parent_pid: int) -> bool:
    # POSIX: an orphan is re-parented (to init or a subreaper), so a changed ppid means
    # the parent is gone. Windows does not re-parent: ask whether the pid still exists.
    if os.name == "posix":
        return os.getppid() == parent_pid
    try:
        import psutil
    except ImportError:  # pragma: no cover - a dependency (pyproject.toml)
        return True
    return psutil.pid_exists(parent_pid)


def _poll_parent(parent_pid: int) -> None:
    while _parent_alive(parent_pid):
        time.sleep(POLL_SECONDS)
    os._exit(1)


def current_children() -> frozenset:
    """This process's children now, for :func:`stop_children` to leave alone later."""
    import psutil

    try:
        return frozenset(_identity(child) for child in psutil.Process().children())
    except psutil.Error:
        return frozenset()


def new_children(keep: frozenset = frozenset()) -> list:
    """This process's children (``psutil.Process``) that are not in ``keep``."""
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return []
    return [child for child in children if _identity(child) not in keep]


def stop_children(grace: float = 5.0, keep: frozenset = frozenset()) -> list[int]:
    """Stop the processes this process started, and everything they started.

    Each child that leads its own process group (a Jupyter kernel: jupyter_client starts
    it in a new session) has its whole group signalled, so a kernel's pool workers,
    dataloader workers and ffmpeg subprocesses go with it even when they were re-parented.
    Everything gets SIGTERM first, and SIGKILL if it is still there after ``grace``
    seconds. This process's own group is never signalled.

    Parameters
    ----------
    grace : float
        Seconds between SIGTERM and SIGKILL.
    keep : frozenset
        Children to leave alone, from :func:`current_children` taken before the work
        started: a library call stops what it started, not its caller's processes.

    Returns
    -------
    list of int
        Process ids that were signalled (the snapshot taken before the first signal).
    """
    import psutil

    children = new_children(keep)
    members = list(children)
    for child in children:
        try:
            members += child.children(recursive=True)
        except psutil.Error:
            pass
    groups = set()
    if hasattr(os, "killpg"):
        own_group = os.getpgid(0)
        for child in children:
            try:
                group = os.getpgid(child.pid)
            except OSError:
                continue
            if group == child.pid and group != own_group:
                groups.add(group)
    _signal_all(groups, members, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=grace)
    if alive or groups:
        # The group may hold processes the snapshot missed (started meanwhile).
        _signal_all(groups, alive, getattr(signal, "SIGKILL", signal.SIGTERM))
        psutil.wait_procs(alive, timeout=grace)
    return [p.pid for p in members]


def _identity(process) -> tuple:
    """pid and start time: a pid alone may be reused by a later process."""
    import psutil

    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return process.pid, None


def _signal_all(groups: Iterable[int], processes, signum: int) -> None:
    import psutil

    for group in groups:
        try:
            os.killpg(group, signum)
        except OSError:  # the group is empty: every member is gone
            pass
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.Error:
            pass


# --------------------------------------------------------------------------- the scoring pool


def init_pool_worker(parent_pid: int) -> None:
    """Initializer of the scoring pool's workers.

    A worker dies with the process that started the pool, however that process ends
    (``kill -9`` included: :func:`die_with_parent`), so no idle worker is left behind.
    Ctrl-C is the parent's to handle (it stops the workers, see
    :func:`kill_pool_workers`), so the workers ignore SIGINT: an interrupt sent to the
    whole process group (a terminal, a Jupyter kernel interrupt) gives no traceback per
    worker. Each worker runs one thread (:func:`limit_to_one_thread`).
    """
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_to_one_thread()


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Start processes with SIGINT ignored from their first instruction (main thread only).

    An ignored SIGINT is inherited through fork and exec and Python keeps it ignored, so
    a Ctrl-C that reaches a worker while it is still importing (before its initializer
    runs) does not print a traceback either. A SIGINT that arrives in this process during
    these few milliseconds is lost.
    """
    # Outside the main thread signals cannot be set; a handler installed from C cannot be
    # put back (getsignal gives None): leave those alone.
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def kill_pool_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (Ctrl-C, SystemExit): a running track is redone on rerun."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


def limit_to_one_thread() -> None:
    """One torch thread and one BLAS/OpenMP thread: what every track is scored with.

    With as many workers as cores, multi-threaded pools in every worker would
    oversubscribe the cores (museval's time goes into numpy's linear solves), and a
    LAPACK solve can round differently with another thread count, so the serial run uses
    the workers' setting too: scores do not depend on ``jobs``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """:func:`limit_to_one_thread` for the duration of a serial run in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
