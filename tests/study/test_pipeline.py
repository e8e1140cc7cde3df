"""The study runner (papermill, for real) and the command line."""

import json
import os

import nbformat
import pytest

from melunmix.commands import cli
from melunmix.study import pipeline

PARAMS = 'profile = "smoke"\ndata_root = None\nresults_dir = None'


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "melunmix", "display_name": "melunmix", "language": "python"}
    cells = [nbformat.v4.new_code_cell(PARAMS)]
    cells[0].metadata["tags"] = ["parameters"]
    cells += [nbformat.v4.new_code_cell(src) for src in sources]
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture
def study_dir(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_first.ipynb", "import pathlib\nprint('profile', profile)\n"
                   "pathlib.Path(results_dir, profile, 'ran-01').write_text(profile)")
    write_notebook(notebooks / "02_second.ipynb", "x = 1", "raise ValueError(f'broken on purpose in {profile}')")
    (notebooks / "not_numbered.ipynb").write_text("{}")  # ignored: only NN_*.ipynb are steps
    return notebooks


def test_notebooks_in_order(study_dir):
    assert [p.name for p in pipeline.study_notebooks(study_dir)] == ["01_first.ipynb", "02_second.ipynb"]


def test_reproduce_runs_in_order_and_stops_at_the_failing_cell(study_dir, tmp_path):
    results = tmp_path / "results"
    with pytest.raises(pipeline.NotebookFailed) as err:
        pipeline.reproduce("smoke", results_dir=results, notebooks_dir=study_dir, progress=False)
    message = str(err.value)
    # In [4] of the executed copy: parameters, injected parameters, "x = 1", the failing cell
    assert "02_second.ipynb" in message and "cell In [4]" in message
    assert "ValueError: broken on purpose in smoke" in message
    # the first notebook ran with the injected parameters, its executed copy is kept
    assert (results / "smoke" / "ran-01").read_text() == "smoke"
    executed = nbformat.read(results / "smoke" / "notebooks" / "01_first.ipynb", 4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    assert manifest["profile"] == "smoke" and manifest["settings"]["name"] == "smoke"
    assert manifest["notebooks"]["01_first.ipynb"]["status"] == "ok"
    assert manifest["notebooks"]["02_second.ipynb"]["status"] == "failed"
    assert manifest["packages"]["torch"] and manifest["packages"]["museval"]


def test_an_unregistered_kernel_is_one_line_with_the_command_and_nothing_is_written(study_dir, tmp_path):
    results = tmp_path / "results"
    with pytest.raises(ValueError, match=r"kernel 'melunmix-nowhere' that runs the notebooks is not registered; "
                                         r"register it with `.* -m ipykernel install --sys-prefix --name "
                                         r"melunmix-nowhere`") as err:
        pipeline.reproduce("smoke", results_dir=results, notebooks_dir=study_dir, kernel_name="melunmix-nowhere",
                           progress=False)
    assert "\n" not in str(err.value)
    assert not results.exists()  # no manifest, no step left "running"


def test_cli_reproduce_takes_a_kernel_and_refuses_an_unknown_one_in_one_line(study_dir, tmp_path, capsys):
    from melunmix.commands.cli import main

    results = tmp_path / "results"
    assert main(["reproduce", "--profile", "smoke", "--kernel", "melunmix-nowhere", "--results-dir", str(results),
                 "--notebooks-dir", str(study_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kernel 'melunmix-nowhere'" in err and "--name melunmix-nowhere" in err
    assert not results.exists()


def test_reproduce_only_selected(study_dir, tmp_path):
    runs = pipeline.reproduce("smoke", results_dir=tmp_path / "r", notebooks_dir=study_dir, only=["01"],
                              progress=False)
    assert [r.name for r in runs] == ["01_first.ipynb"] and runs[0].seconds > 0
    manifest = json.loads((tmp_path / "r" / "smoke" / "manifest.json").read_text())
    assert manifest["total_seconds"] > 0


def test_manifest_fingerprints_the_profiles_dataset(tmp_path):
    from melunmix import datasets
    from melunmix.base.config import load_profile

    settings = load_profile("smoke")
    root = datasets.ensure_dataset(generated=settings.data.generated, progress=False)
    found = pipeline._data_fingerprint(settings, None)
    assert found == {"root": str(root), "fingerprint": datasets.dataset_fingerprint(root)}
    assert pipeline._data_fingerprint(settings, tmp_path / "missing") is None


def test_cli_reproduce_names_a_missing_profile(capsys):
    assert cli.main(["reproduce", "--profile", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no profile named 'nope'" in err[0] and "smoke" in err[0]


def test_cli_make_dataset_and_bad_arguments(tmp_path, capsys):
    out = tmp_path / "ds"
    assert cli.main(["make-dataset", "--out", str(out), "--train", "2", "--valid", "1", "--test", "1",
                     "--duration", "4", "--seed", "3", "--no-progress"]) == 0
    assert (out / "dataset.json").is_file() and len(list((out / "test").iterdir())) == 1
    assert cli.main(["make-dataset", "--out", str(tmp_path / "bad"), "--train", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nb_train" in err[0]


def test_cli_musdb_profile_without_a_root_stops_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    for profile in ("poster", "umx"):
        assert cli.main(["reproduce", "--profile", profile, "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"profile '{profile}' is the study on MUSDB18" in err and "MUSDB_ROOT" in err and "--stand-in" in err
    assert not (tmp_path / "poster").exists()  # nothing written


def test_stand_in_run_is_recorded_in_the_manifest(study_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    (study_dir / "02_second.ipynb").unlink()
    write_notebook(study_dir / "02_second.ipynb", "print('stand_in', stand_in)")
    runs = pipeline.reproduce("poster", results_dir=tmp_path / "r", notebooks_dir=study_dir, only=["02"],
                              progress=False, stand_in=True)
    assert [r.name for r in runs] == ["02_second.ipynb"]
    manifest = json.loads((tmp_path / "r" / "poster" / "manifest.json").read_text())
    assert manifest["stand_in"] is True and manifest["data_kind"] == "generated stand-in for MUSDB18"
    executed = nbformat.read(tmp_path / "r" / "poster" / "notebooks" / "02_second.ipynb", 4)
    assert "stand_in True" in executed.cells[-1].outputs[0]["text"]


def test_relative_profile_path_reaches_the_notebooks_resolved(study_dir, tmp_path, monkeypatch):
    profile = tmp_path / "prof" / "my.yaml"
    profile.parent.mkdir()
    profile.write_text("description: mine\ndata: {generated: {nb_train: 2, nb_valid: 1, nb_test: 1, duration: 4.0}}\n")
    (study_dir / "02_second.ipynb").unlink()
    write_notebook(study_dir / "02_second.ipynb", "from melunmix.base.config import load_profile\n"
                   "print('loaded', load_profile(profile).description)")
    monkeypatch.chdir(tmp_path)
    runs = pipeline.reproduce("prof/my.yaml", results_dir=tmp_path / "r", notebooks_dir=study_dir, only=["02"],
                              progress=False)
    executed = nbformat.read(runs[0].output, 4)
    assert "loaded mine" in executed.cells[-1].outputs[0]["text"]


def test_kernels_place_files_where_the_caller_does(study_dir, tmp_path, monkeypatch):
    """Run from a folder outside any checkout, with the notebooks elsewhere: the kernel (working
    in the notebooks' folder) finds results and data where ``reproduce`` put its manifest."""
    for name in ("MELUNMIX_HOME", "MELUNMIX_RESULTS_DIR", "MELUNMIX_DATA_DIR", "MELUNMIX_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    (study_dir / "02_second.ipynb").unlink()
    write_notebook(study_dir / "02_second.ipynb", "from melunmix.base import config\n"
                   "print(config.results_root(), config.generated_data_root(), sep='\\n')")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    runs = pipeline.reproduce("smoke", notebooks_dir=study_dir, only=["02"], progress=False)
    assert runs[0].output == work / "results" / "smoke" / "notebooks" / "02_second.ipynb"
    printed = nbformat.read(runs[0].output, 4).cells[-1].outputs[0]["text"].split()
    assert printed == [str(work / "results"), str(work / "data" / "generated")]
    assert "MELUNMIX_HOME" not in os.environ  # set for the kernels only
    assert sorted(p.name for p in work.iterdir()) == ["results"]


def test_cli_only_an_unknown_notebook_is_an_error(study_dir, capsys):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "07"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--only 07: no such notebook" in err and "01_explore_data.ipynb" in err


def test_cli_make_dataset_onto_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "a file"
    target.write_text("not a folder")
    assert cli.main(["make-dataset", "--out", str(target), "--train", "2", "--valid", "1", "--test", "1",
                     "--duration", "4", "--no-progress"]) == 1  # an OSError (NotADirectoryError): status 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("melunmix make-dataset: error:") and "is a file" in err


@pytest.fixture
def full_disk(tmp_path):
    """A real file system of 256 KiB (tmpfs): writes past it fail with ENOSPC."""
    import subprocess

    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_cli_a_full_disk_is_one_line(full_disk, capsys):
    assert cli.main(["make-dataset", "--out", str(full_disk / "data"), "--train", "2", "--valid", "1",
                     "--test", "1", "--duration", "4", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("melunmix make-dataset: error:") and "No space left on device" in err, err


# --------------------------------------------------------------------------- signals, kills, two runs
# Real `melunmix reproduce` processes (the command line's code, papermill, a kernel, the
# evaluation pool) on small notebooks, stopped with real signals.

RUNNER = """
import sys
from pathlib import Path
from melunmix.commands import cli; from melunmix.study import pipeline
pipeline.NOTEBOOKS_DIR = Path(sys.argv[1])
sys.exit(cli.main(["reproduce", "--profile", "smoke", "--results-dir", sys.argv[2], *sys.argv[3:]]))
"""
NB_SONGS = 6


def start_reproduce(notebooks, results, *options):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", RUNNER, str(notebooks), str(results), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what, process, timeout=180):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"reproduce ended (rc {process.returncode}) before {what}: {process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def assert_all_gone(processes, timeout):
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=timeout)
    left = [" ".join(p.cmdline())[:80] for p in alive if p.is_running()]
    for process in alive:
        process.kill()
    assert not left, f"still running {timeout} s after the run ended: {left}"


@pytest.fixture(scope="module")
def pool_study(tmp_path_factory):
    """01 scores 6 songs with two worker processes (it resumes); 02 writes a file."""
    from melunmix.synth import make_dataset

    base = tmp_path_factory.mktemp("pool_study")
    data = make_dataset(base / "data", nb_train=1, nb_valid=0, nb_test=NB_SONGS, duration=12.0, seed=4,
                        sample_rate=8000, progress=False)
    notebooks = base / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_pool.ipynb",
                   "import pathlib\nfrom melunmix.scoring import evaluate\nfrom melunmix.datasets import find_tracks\n"
                   f"evaluate.evaluate_oracle('IRM1', find_tracks({str(data)!r}, 'test'), "
                   "pathlib.Path(results_dir, profile, 'eval'), jobs=2, progress=False)")
    write_notebook(notebooks / "02_after.ipynb",
                   "import pathlib\npathlib.Path(results_dir, profile, 'ran-02').write_text('yes')")
    return notebooks


def scored(results):
    folder = results / "smoke" / "eval" / "IRM1" / "test"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def run_tree_while_scoring(process, results):
    """Wait until the pool has scored a song; the run's processes (kernel, workers, ...)."""
    import psutil

    wait_for(lambda: scored(results), "the first scored song", process)
    tree = psutil.Process(process.pid).children(recursive=True)
    assert sum("spawn_main" in " ".join(p.cmdline()) for p in tree) == 2, [p.cmdline() for p in tree]
    assert any("ipykernel" in " ".join(p.cmdline()) for p in tree)
    assert len(scored(results)) < NB_SONGS, "scoring finished before the signal"
    return tree


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_stops_the_run_in_one_line_and_a_rerun_resumes(pool_study, tmp_path, signum, code):
    import signal

    from melunmix.base.files import lock_holder

    results = tmp_path / "results"
    run = start_reproduce(pool_study, results)
    tree = run_tree_while_scoring(run, results)
    kernel_file = next(p.cmdline() for p in tree if "ipykernel" in " ".join(p.cmdline()))
    kernel_file = kernel_file[kernel_file.index("-f") + 1]
    run.send_signal(getattr(signal, signum))
    out, err = run.communicate(timeout=120)
    assert run.returncode == code, err
    assert "Traceback" not in err and "Task exception" not in err, err
    last = err.strip().splitlines()[-1]
    assert last == (f"melunmix reproduce: interrupted by {signum} during 01_pool.ipynb (notebook 1 of 2); "
                    f"finished work is kept in {results / 'smoke'}: rerun the same command to resume")
    assert_all_gone(tree, timeout=5)  # the kernel, both workers, multiprocessing's resource tracker
    assert not (tmp_path / kernel_file).exists()  # the kernel's connection file is cleaned up too
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    step = manifest["steps"][-1]
    assert step["notebook"] == "01_pool.ipynb" and step["status"] == "interrupted" and step["signal"] == signum
    assert step["started"] <= step["ended"]
    assert manifest["notebooks"]["01_pool.ipynb"] == {"status": "interrupted", "signal": signum}
    assert "02_after.ipynb" not in manifest["notebooks"] and "total_seconds" not in manifest
    assert lock_holder(results / "smoke" / "run.lock") is None

    if signum == "SIGINT":  # the same command again: finishes, keeping what was scored
        kept = {p.name: p.stat().st_mtime_ns for p in scored(results)}
        again = start_reproduce(pool_study, results)
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        assert len(scored(results)) == NB_SONGS
        assert {p.name: p.stat().st_mtime_ns for p in scored(results) if p.name in kept} == kept
        manifest = json.loads((results / "smoke" / "manifest.json").read_text())
        assert [(s["notebook"], s["status"]) for s in manifest["steps"]] == [
            ("01_pool.ipynb", "interrupted"), ("01_pool.ipynb", "ok"), ("02_after.ipynb", "ok")]
        assert {k: v["status"] for k, v in manifest["notebooks"].items()} == {
            "01_pool.ipynb": "ok", "02_after.ipynb": "ok"}


@pytest.mark.slow
def test_killed_run_leaves_no_process_and_no_lock(pool_study, tmp_path):
    """kill -9 of reproduce: ipykernel notices its parent is gone (it polls every second)
    and exits; the pool's workers die with the kernel. The next run is not blocked."""
    results = tmp_path / "results"
    run = start_reproduce(pool_study, results)
    tree = run_tree_while_scoring(run, results)
    run.kill()
    run.communicate(timeout=30)
    assert_all_gone(tree, timeout=10)
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    assert manifest["steps"][-1]["status"] == "running"  # nobody could write more

    again = start_reproduce(pool_study, results, "--only", "02")  # (resuming 01: the test above)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert (results / "smoke" / "ran-02").exists()
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    assert [(s["notebook"], s["status"]) for s in manifest["steps"]] == [
        ("01_pool.ipynb", "killed"), ("02_after.ipynb", "ok")]
    assert manifest["notebooks"]["01_pool.ipynb"] == {"status": "killed"}


@pytest.mark.slow
def test_second_run_on_a_folder_is_refused_naming_the_first(tmp_path):
    import socket
    import warnings

    from melunmix.study import run_setup
    from melunmix.base.files import lock_holder

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    results = tmp_path / "results"
    # The first run opens the run as every study notebook does (its own lock is no reason
    # for a warning there), then waits for a go.
    write_notebook(notebooks / "01_wait.ipynb",
                   "import pathlib, time, warnings\nfrom melunmix.study import run_setup\n"
                   "with warnings.catch_warnings():\n"
                   "    warnings.simplefilter('error')\n"
                   "    run_setup.open_run(profile, results_dir=results_dir, progress=False)\n"
                   "folder = pathlib.Path(results_dir, profile)\n"
                   "(folder / 'waiting').write_text('')\n"
                   "deadline = time.monotonic() + 120\n"
                   "while not (folder / 'go').exists() and time.monotonic() < deadline:\n"
                   "    time.sleep(0.05)")
    first = start_reproduce(notebooks, results)
    wait_for(lambda: (results / "smoke" / "waiting").exists(), "the first run's notebook", first)
    lock = results / "smoke" / "run.lock"
    manifest_before = (results / "smoke" / "manifest.json").read_bytes()

    second = start_reproduce(notebooks, results)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"melunmix reproduce: error: {results / 'smoke'} is in use by another run (pid "
                               f"{first.pid} on host {socket.gethostname()}, started ")
    assert "profile smoke" in lines[0] and str(lock) in lines[0]
    assert (results / "smoke" / "manifest.json").read_bytes() == manifest_before  # nothing touched

    # A notebook opened elsewhere on that folder is warned, naming the run.
    with pytest.warns(UserWarning, match=rf"being written by a running `melunmix reproduce` \(pid {first.pid} "):
        run_setup.open_run("smoke", results_dir=results, progress=False)
    assert lock_holder(lock)["pid"] == first.pid

    (results / "smoke" / "go").write_text("")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert lock_holder(lock) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_setup.open_run("smoke", results_dir=results, progress=False)


def test_ctrl_c_inside_reproduce_raises_run_interrupted_naming_the_notebook(study_dir, tmp_path):
    """In-process (the library call): the notebook's kernel sends SIGINT to this process,
    as a terminal's Ctrl-C would, and keeps running until it is stopped."""
    import psutil

    (study_dir / "02_second.ipynb").unlink()
    write_notebook(study_dir / "02_second.ipynb",
                   "import os, pathlib, signal, time\n"
                   "pathlib.Path(results_dir, profile, 'kernel.pid').write_text(str(os.getpid()))\n"
                   "os.kill(os.getppid(), signal.SIGINT)\n"
                   "time.sleep(120)")
    import signal

    results = tmp_path / "results"
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(pipeline.RunInterrupted) as err:
        pipeline.reproduce("smoke", results_dir=results, notebooks_dir=study_dir, progress=False)
    assert err.value.exit_code == 130
    assert str(err.value) == (f"interrupted by SIGINT during 02_second.ipynb (notebook 2 of 2); finished work is "
                              f"kept in {results / 'smoke'}: rerun the same command to resume")
    kernel = int((results / "smoke" / "kernel.pid").read_text())
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    assert [(s["notebook"], s["status"]) for s in manifest["steps"]] == [
        ("01_first.ipynb", "ok"), ("02_second.ipynb", "interrupted")]
    assert signal.getsignal(signal.SIGINT) is handler  # put back


def test_a_kernel_killed_from_outside_is_one_notebook_failed_line(study_dir, tmp_path):
    """The kernel dies under a notebook (the OOM killer, a user's kill -9): one line, not
    nbclient's DeadKernelError traceback; the manifest marks the step failed."""
    (study_dir / "02_second.ipynb").unlink()
    write_notebook(study_dir / "02_second.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    results = tmp_path / "results"
    with pytest.raises(pipeline.NotebookFailed) as err:
        pipeline.reproduce("smoke", results_dir=results, notebooks_dir=study_dir, progress=False)
    message = str(err.value)
    assert message.startswith("notebook 02_second.ipynb failed: the kernel died (")
    assert "was it killed, or out of memory?" in message
    manifest = json.loads((results / "smoke" / "manifest.json").read_text())
    assert manifest["steps"][-1]["status"] == "failed"
    assert manifest["notebooks"]["02_second.ipynb"]["status"] == "failed"


def test_reproduce_device_reaches_the_kernels_and_a_bad_one_stops_before_anything(tmp_path):
    from melunmix.base.devices import DEVICE_ENV

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_device.ipynb", "import os, pathlib\n"
                   f"pathlib.Path(results_dir, profile, 'device').write_text(os.environ.get('{DEVICE_ENV}', 'unset'))")
    results = tmp_path / "results"
    with pytest.raises(ValueError, match=r"^--device: device 'gpu' is not a torch device"):
        pipeline.reproduce("smoke", results_dir=results, notebooks_dir=notebooks, device="gpu", progress=False)
    assert not results.exists()
    pipeline.reproduce("smoke", results_dir=results, notebooks_dir=notebooks, device="cpu", progress=False)
    assert (results / "smoke" / "device").read_text() == "cpu"
    assert DEVICE_ENV not in os.environ  # restored after the run
