"""Where a run's files go: from arguments, the environment and the working directory, never
from the package's own location; the package installed from a wheel, outside any checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from melunmix.commands import cli
from melunmix.base import config
from melunmix import datasets
from melunmix.study import pipeline
from melunmix.base.config import CACHE_ENV, DATA_ENV, HOME_ENV, RESULTS_ENV, load_profile, run_paths

#: This checkout (a test file may know where it is; the package may not).
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_location_env(monkeypatch):
    for name in (HOME_ENV, RESULTS_ENV, DATA_ENV, CACHE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("where", [".", "notebooks", "lib/melunmix/datasets"])
def test_inside_the_checkout_the_folders_are_the_repositorys(where, no_location_env, monkeypatch):
    monkeypatch.chdir(ROOT / where)
    assert config.find_checkout() == ROOT
    assert config.run_paths("smoke").root == ROOT / "results" / "smoke"
    assert datasets.generated_root({"nb_train": 4}).parent == ROOT / "data" / "generated"
    assert datasets.default_cache_dir(ROOT / "data" / "x").parent == ROOT / "data" / "cache"
    assert pipeline.default_notebooks_dir() == ROOT / "notebooks"


def test_outside_a_checkout_the_working_directory(tmp_path, no_location_env, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = tmp_path.resolve()
    assert config.find_checkout() is None and config.home_dir() == here
    assert run_paths("demo").root == here / "results" / "demo"
    root = datasets.resolve_data_root(None, {"nb_train": 4})
    assert root.parent == here / "data" / "generated" and datasets.is_generated_root(root)
    assert datasets.default_cache_dir(here / "songs").parent == here / "data" / "cache"
    with pytest.raises(FileNotFoundError, match="no melunmix source checkout holds .*--notebooks-dir"):
        pipeline.default_notebooks_dir()
    assert list(tmp_path.iterdir()) == []  # asking wrote nothing


def test_environment_variables_place_each_folder(tmp_path, monkeypatch, no_location_env):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    assert run_paths("demo").root == tmp_path / "home" / "results" / "demo"
    assert config.generated_data_root() == tmp_path / "home" / "data" / "generated"
    assert config.cache_root() == tmp_path / "home" / "data" / "cache"
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "r"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert run_paths("demo").root == tmp_path / "r" / "demo"
    assert run_paths("demo", tmp_path / "given").root == tmp_path / "given" / "demo"  # an argument wins
    root = datasets.resolve_data_root(None, {"nb_train": 4})
    assert root.parent == tmp_path / "d" and datasets.is_generated_root(root)
    assert datasets.default_cache_dir(root).parent == tmp_path / "c"


def test_a_checkout_is_recognised_by_its_pyproject_and_notebooks(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert not config.is_checkout(tmp_path) and config.find_checkout(tmp_path / "notebooks") is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "melunmix"\nversion = "0"\n')
    assert config.find_checkout(tmp_path / "notebooks") == tmp_path.resolve()
    (tmp_path / "notebooks").rmdir()
    assert not config.is_checkout(tmp_path)


def test_shipped_profiles_load_from_anywhere_and_a_users_file_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.profile_path("smoke") == config.PROFILES_DIR / "smoke.yaml"
    assert load_profile("smoke").name == "smoke"
    (tmp_path / "mine.yaml").write_text("description: mine\ntrain: {epochs: 3}\n")
    mine = load_profile("mine.yaml")
    assert (mine.name, mine.description, mine.train.epochs) == ("mine", "mine", 3)
    with pytest.raises(FileNotFoundError, match=r"no profile named 'nope' .*available: \[.*'smoke'.*or pass the path"):
        load_profile("nope")


def test_reproduce_outside_a_checkout_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                                      no_location_env):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("melunmix reproduce: error: ")
    assert "source checkout" in err[0] and "--notebooks-dir" in err[0]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- an installed copy

def _tree(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel of this checkout, unpacked as pip installs it into a site-packages folder."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    (source / "lib").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["cp", "-r", str(ROOT / "lib" / "melunmix"), str(source / "lib")], check=True)
    for cache in list((source / "lib").rglob("__pycache__")):
        subprocess.run(["rm", "-rf", str(cache)], check=True)
    # setuptools of the project's environment (no index here); the wheel as `pip wheel --no-deps .`
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(base / "dist"), str(source)], check=True, capture_output=True, cwd=base)
    wheel, = (base / "dist").glob("melunmix-*.whl")
    site = base / "venv" / "lib" / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    work = base / "work"
    work.mkdir()
    return base, site, work


def _run_installed(site: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    # The unpacked wheel first on the path (before the checkout's editable install), no
    # bytecode written, no location variables, run from a folder outside any checkout.
    env = {k: v for k, v in os.environ.items() if k not in (HOME_ENV, RESULTS_ENV, DATA_ENV, CACHE_ENV)}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)


def test_the_wheel_ships_the_profiles(installed):
    _, site, _ = installed
    shipped = sorted(p.name for p in (site / "melunmix" / "profiles").glob("*.yaml"))
    assert shipped == sorted(p.name for p in config.PROFILES_DIR.glob("*.yaml"))
    assert {"smoke.yaml", "demo.yaml", "poster.yaml", "umx.yaml"} <= set(shipped)


def test_installed_package_loads_profiles_and_writes_only_under_the_working_directory(installed):
    base, site, work = installed
    before = _tree(base)
    out = _run_installed(site, work, "-c", "import melunmix, melunmix.base.config as c\n"
                         "s = c.load_profile('smoke')\n"
                         "print(melunmix.__file__); print(s.name, s.stft.n_fft); print(c.run_paths(s).root)")
    assert out.returncode == 0, out.stderr
    module, profile, results = out.stdout.splitlines()
    assert Path(module).is_relative_to(site)  # the installed copy ran, not the checkout's
    assert profile == f"smoke {load_profile('smoke').stft.n_fft}"
    assert Path(results) == work.resolve() / "results" / "smoke"

    # reproduce needs the notebooks: one line, nothing written anywhere
    out = _run_installed(site, work, "-m", "melunmix.commands.cli", "reproduce", "--profile", "smoke")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "source checkout" in lines[0] and "--notebooks-dir" in lines[0], out.stderr
    assert _tree(base) == before  # nothing under site-packages, its parents or the working directory
