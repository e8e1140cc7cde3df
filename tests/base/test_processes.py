"""No process outlives the run that started it: real processes, real signals.

melunmix.base.processes (a worker that dies with its parent, stopping a process tree) and
the evaluation pool of melunmix.scoring.evaluate: a scoring script with two workers is killed
(SIGKILL, SIGTERM) or interrupted (SIGINT) while the workers score, and every process it
started must be gone within seconds. The same through ``melunmix reproduce`` (the
papermill kernel in between): tests/study/test_pipeline.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and process groups")

RATE = 8000
NB_TEST = 6


def _default_sigint() -> None:
    # A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, which Python
    # and every child would keep: give the child a terminal's default, as a user's run has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint, **kwargs)


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen | None = None):
    """Poll ``condition`` every 50 ms; fail naming ``what`` (and the process's stderr) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process ended (rc {process.returncode}) before {what}: {process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def assert_all_gone(processes: list[psutil.Process], timeout: float) -> None:
    """Every process of the snapshot has ended within ``timeout`` s (psutil tells a reused pid apart)."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    described = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in alive if p.is_running()]
    for process in alive:
        process.kill()
    assert not described, f"still running {timeout} s later: {described}"


# --------------------------------------------------------------------------- die_with_parent


def test_die_with_parent_refuses_a_parent_that_is_already_gone():
    child = start_python("""
        import os
        from melunmix.base.processes import die_with_parent
        die_with_parent(os.getppid() + 1_000_000)  # not the parent: it counts as gone
        print("still here")
    """)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 1 and "still here" not in out


@pytest.mark.parametrize("how", ["pdeathsig", "poll"])
def test_grandchild_dies_with_its_killed_parent(how):
    """The parent is killed with SIGKILL (no clean-up of its own); the grandchild follows."""
    if how == "pdeathsig" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    grandchild = textwrap.dedent(f"""
        import os, sys, threading, time
        from melunmix.base import processes
        parent = int(sys.argv[1])
        if {how!r} == "pdeathsig":
            assert processes.die_with_parent(parent) == "pdeathsig"
        else:  # the fallback of other systems, tried here
            threading.Thread(target=processes._poll_parent, args=(parent,), daemon=True).start()
        print("ready", flush=True)
        time.sleep(120)
    """)
    parent = start_python(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {grandchild!r}, str(os.getpid())], stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "ready"
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    grandchild_pid = int(parent.stdout.readline())
    target = psutil.Process(grandchild_pid)
    parent.kill()
    parent.wait(timeout=10)
    assert_all_gone([target], timeout=5)


# --------------------------------------------------------------------------- stop_children


def test_stop_children_stops_kernels_groups_and_stubborn_children():
    """A child in its own session (as a Jupyter kernel) with a grandchild that ignores
    SIGTERM, and a plain child that ignores SIGTERM: all gone, SIGKILL after the grace.
    A child started before ``started_after`` (the caller's own) is left alone."""
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                "time.sleep(120)")
    kernel = ("import subprocess, sys, time\n"
              f"g = subprocess.Popen([sys.executable, '-c', {stubborn!r}], stdout=subprocess.PIPE, text=True)\n"
              "g.stdout.readline()\n"
              "print(g.pid, flush=True)\n"
              "time.sleep(120)\n")
    script = f"""
        import json, subprocess, sys
        from melunmix.base.processes import current_children, stop_children
        callers = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        keep = current_children()
        kernel = subprocess.Popen([sys.executable, "-c", {kernel!r}], start_new_session=True,
                                  stdout=subprocess.PIPE, text=True)
        grandchild = int(kernel.stdout.readline())
        plain = subprocess.Popen([sys.executable, "-c", {stubborn!r}], stdout=subprocess.PIPE, text=True)
        plain.stdout.readline()
        print(json.dumps([kernel.pid, grandchild, plain.pid]), flush=True)
        print(json.dumps(sorted(stop_children(grace=1.0, keep=keep))), flush=True)
        print(callers.poll(), flush=True)
        callers.kill()
    """
    runner = start_python(script)
    pids = json.loads(runner.stdout.readline())
    processes = [psutil.Process(pid) for pid in pids]
    stopped = json.loads(runner.stdout.readline())
    assert runner.stdout.readline().strip() == "None"  # the caller's child still runs
    assert runner.wait(timeout=30) == 0, runner.stderr.read()
    assert stopped == sorted(pids)
    assert_all_gone(processes, timeout=2)


# --------------------------------------------------------------------------- the evaluation pool


@pytest.fixture(scope="module")
def data_root(small_dataset):
    # Long enough that the two workers are busy for several seconds.
    return small_dataset(nb_train=1, nb_valid=0, nb_test=NB_TEST, duration=12.0, seed=5, sample_rate=RATE)


def start_scoring(data_root, out_dir) -> subprocess.Popen:
    return start_python(f"""
        from melunmix.scoring import evaluate as ev
        from melunmix.datasets import find_tracks
        ev.evaluate_oracle("IRM1", find_tracks({str(data_root)!r}, "test"), {str(out_dir)!r}, jobs=2,
                           progress=False)
    """)


def scored(out_dir) -> list:
    folder = out_dir / "IRM1" / "test"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def busy_pool(process: subprocess.Popen, out_dir) -> list[psutil.Process]:
    """Wait until the first track is scored (the workers are in full swing); its processes."""
    wait_until(lambda: scored(out_dir), 120, "the first scored track", process)
    tree = descendants(process.pid)
    workers = [p for p in tree if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2, [p.cmdline() for p in tree]
    assert len(scored(out_dir)) < NB_TEST, "scoring finished before the signal; make the songs longer"
    return tree


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_scoring_leaves_no_worker_behind(data_root, tmp_path, signum):
    """Before the fix the two workers (and multiprocessing's resource tracker) stayed idle forever."""
    out_dir = tmp_path / "eval"
    scoring = start_scoring(data_root, out_dir)
    tree = busy_pool(scoring, out_dir)
    scoring.send_signal(signum)
    assert scoring.wait(timeout=30) == -signum
    assert_all_gone(tree, timeout=5)


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_at_once(data_root, tmp_path):
    """SIGINT: the running tracks are abandoned (redone on rerun), not waited for."""
    out_dir = tmp_path / "eval"
    scoring = start_scoring(data_root, out_dir)
    tree = busy_pool(scoring, out_dir)
    scoring.send_signal(signal.SIGINT)
    returncode = scoring.wait(timeout=30)
    stderr = scoring.stderr.read()
    assert "KeyboardInterrupt" in stderr, (returncode, stderr)
    # One traceback, the script's: none from the workers (they ignore SIGINT).
    assert stderr.count("Traceback") == 1, stderr
    assert_all_gone(tree, timeout=5)
    assert len(scored(out_dir)) < NB_TEST


# --------------------------------------------------------------------------- dataloader workers


@pytest.mark.slow
def test_dataloader_workers_follow_their_killed_parent():
    """Training's DataLoader workers (``data.nb_workers > 0``) are PyTorch's: each checks
    every 5 s that its parent is alive (``ManagerWatchdog``) and leaves when it is not.
    Checked here because a killed kernel must leave none behind."""
    loader = start_python("""
        import os, time, torch

        class Slow(torch.utils.data.Dataset):
            def __len__(self):
                return 1000

            def __getitem__(self, index):
                time.sleep(0.05)
                return index

        batches = iter(torch.utils.data.DataLoader(Slow(), batch_size=2, num_workers=2))
        next(batches)
        print("running", flush=True)
        while True:
            next(batches)
    """)
    assert loader.stdout.readline().strip() == "running"
    workers = descendants(loader.pid)
    assert len(workers) == 2
    loader.kill()
    loader.wait(timeout=10)
    assert_all_gone(workers, timeout=15)


def test_sigterm_gives_one_line_and_status_143(tmp_path):
    """Any command: SIGTERM is handled as Ctrl-C (one line, no traceback), status 128 + 15."""
    out = tmp_path / "ds"
    command = start_python(f"""
        import sys
        from melunmix.commands import cli
        sys.exit(cli.main(["make-dataset", "--out", {str(out)!r}, "--train", "40", "--valid", "1", "--test", "1",
                           "--duration", "30", "--no-progress"]))
    """)
    wait_until(lambda: out.is_dir() and any(out.rglob("*.wav")), 120, "the first song", command)
    command.send_signal(signal.SIGTERM)
    _, err = command.communicate(timeout=60)
    assert command.returncode == 143
    assert err.strip().splitlines() == [
        "melunmix make-dataset: terminated (SIGTERM); finished work is kept: rerun the same command to resume"]
