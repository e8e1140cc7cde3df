"""Provenance: library versions and the code's git commit, checked against git itself."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from melunmix.base import provenance


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git repository with one commit of one tracked file and an ignored folder."""
    folder = tmp_path / "repo"
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / "code.py").write_text("x = 1\n")
    (folder / ".gitignore").write_text("venv/\n")
    _git(folder, "add", "code.py", ".gitignore")
    _git(folder, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "one")
    return folder


def test_versions_are_the_installed_ones():
    versions = provenance.package_versions()
    assert list(versions) == ["python", "melunmix", "torch", "numpy"]
    assert versions["python"] == platform.python_version()
    assert versions["torch"] == torch.__version__ and versions["numpy"] == np.__version__
    assert versions["melunmix"] == metadata.version("melunmix")
    assert provenance.package_versions(("numpy", "no-such-package"), python=False) == {
        "numpy": np.__version__, "no-such-package": None}
    assert provenance.package_versions(("no-such-package",), python=False, missing="unknown") == {
        "no-such-package": "unknown"}


def test_commit_is_gits_and_says_dirty_for_changed_tracked_files(repo, tmp_path):
    head = _git(repo, "rev-parse", "HEAD")
    assert provenance.git_commit(repo) == head
    (repo / "new.txt").write_text("untracked files do not count\n")
    assert provenance.git_commit(repo) == head
    (repo / "code.py").write_text("x = 2\n")
    assert provenance.git_commit(repo) == head + "-dirty"
    outside = tmp_path / "outside"
    outside.mkdir()
    assert provenance.git_commit(outside) is None


def test_the_package_records_its_own_checkout_and_not_an_enclosing_repository(repo):
    # This checkout: the commit git reports for the package's folder.
    package = Path(provenance.__file__).parent
    expected = _git(package, "rev-parse", "HEAD")
    assert provenance.git_commit().removesuffix("-dirty") == expected

    # An installed copy in an ignored folder of some repository (a virtual environment
    # inside a checkout): that repository's commit is not the code's.
    installed = repo / "venv" / "site-packages" / "melunmix"
    installed.mkdir(parents=True)
    shutil.copy(provenance.__file__, installed / "provenance.py")
    code = ("import importlib.util as u; s = u.spec_from_file_location('p', {!r}); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); print(m.git_commit())").format(str(installed / "provenance.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"


def test_machine_records_the_cpu_its_instructions_threads_and_blas():
    import json
    import subprocess
    import sys

    import torch

    from melunmix.base import provenance

    record = provenance.machine()
    assert record["torch_threads"] == torch.get_num_threads()
    assert record["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["cpus"] >= 1 and record["blas"] and record["processor"]
    # limited instructions are used and recorded
    code = "import json; from melunmix.base import provenance; print(json.dumps(provenance.machine()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "ATEN_CPU_CAPABILITY": "default"}).stdout
    limited = json.loads(out)
    assert limited["torch_cpu_capability"] == "DEFAULT"
    assert limited["instruction_limits"] == {"ATEN_CPU_CAPABILITY": "default"}
