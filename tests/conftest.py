"""Shared test set-up."""

import os
from pathlib import Path

# numba writes librosa's compiled functions (cache=True) next to librosa in the venv. Two
# pytest-xdist workers compiling the same gufunc at once race on those files, and the loser
# can segfault (numba issue 10128: a worker "crashed while running" librosa.yin on a fresh
# venv). Each worker keeps its own cache, kept between runs; set before numba is imported.
#: Whether this conftest chose the numba cache (not the caller's NUMBA_CACHE_DIR).
NUMBA_CACHE_CHOSEN_HERE = bool(os.environ.get("PYTEST_XDIST_WORKER")) and "NUMBA_CACHE_DIR" not in os.environ
if NUMBA_CACHE_CHOSEN_HERE:
    # Said in the environment: the test folders' own conftest modules shadow this one's name.
    os.environ["MELUNMIX_TESTS_CHOSE_NUMBA_CACHE"] = "1"
    os.environ["NUMBA_CACHE_DIR"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "numba"
                                        / os.environ["PYTEST_XDIST_WORKER"])

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # tests only: the library itself never picks a backend

import pytest  # noqa: E402

# See melunmix/__init__.py: keep torch's OpenMP threads from spinning when cores are shared.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def single_torch_thread():
    """Run a module's tests with one torch intra-op thread, restoring the count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


#: The small generated dataset most tests train and score on (``small_dataset``'s defaults).
SMALL_DATASET = {"nb_train": 3, "nb_valid": 1, "nb_test": 1, "duration": 4.0, "seed": 0, "sample_rate": 16000}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """The suite's one small-dataset maker: ``small_dataset(**changes)`` is the root of a
    generated dataset with :data:`SMALL_DATASET`'s arguments and ``changes``, made once per
    test process and set of arguments, so test files asking for the same one share it.
    Read-only: a test that changes songs copies the root first (``shutil.copytree``). Only
    three make their own: the generator's tests (tests/synth/), ``melunmix score`` on a root
    whose name holds quotes, spaces and non-ASCII letters (tests/commands/test_score.py) and
    a pipeline run with its data inside its study folder (tests/study/test_pipeline.py)."""
    from melunmix.synth import make_dataset

    made = {}

    def make(**changes):
        arguments = {**SMALL_DATASET, **changes}
        key = tuple(sorted(arguments.items()))
        if key not in made:
            made[key] = make_dataset(tmp_path_factory.mktemp("small") / "synth", progress=False, **arguments)
        return made[key]

    return make


@pytest.fixture(scope="module")
def temporary_cache(tmp_path_factory):
    """A module's decode/resample cache in a temporary folder (MELUNMIX_CACHE_DIR), not data/cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MELUNMIX_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def close_figures():
    """The figures stay registered with pyplot (notebooks show them); free them per test."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
