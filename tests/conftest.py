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
