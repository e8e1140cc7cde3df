"""Project-level invariants: one dependency list, set-up files that agree, lib/ tracked, the
README quoting the committed results."""

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_pyproject_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)]
    names = {d.split("=")[0].split(">")[0].split("<")[0] for d in conda}
    assert names == {"python", "pip", "ffmpeg", "libsndfile"}, names
    assert pip == [{"pip": ['-e ".[dev]"']}] or pip == [{"pip": ["-e .[dev]"]}], pip


def test_pyproject_is_the_dependency_list():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = project["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}
    # what the package imports at run time must be declared
    for required in ("torch", "numpy", "librosa", "soundfile", "musdb", "museval", "papermill", "optuna"):
        assert required in names, required
    # torch is never pinned to a range that forces a newer (CUDA) download than the disk's wheel
    torch = next(d for d in deps if d.startswith("torch"))
    assert "==" not in torch and "<" not in torch
    dev = project["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("nbval") for d in dev) and any(d.startswith("norbert") for d in dev)
    # tinysoundfont (and the reference Open-Unmix) are listed once, in the no-deps list the set-up script reads
    assert project["tool"]["melunmix"]["no-deps-requirements"] == ["tinysoundfont==0.3.7", "openunmix==1.3.0"]
    assert "tinysoundfont" not in " ".join(deps + dev)
    assert project["tool"]["setuptools"]["packages"]["find"]["where"] == ["lib"]


def test_setup_script_reads_the_no_deps_list_from_pyproject():
    script = (ROOT / "scripts" / "setup_env.sh").read_text()
    assert "no-deps-requirements" in script and "--no-deps" in script
    assert 'torch==2.13.0' in script
    assert "ipykernel install --sys-prefix --name melunmix" in script


def test_gitignore_keeps_lib_tracked():
    out = subprocess.run(
        ["git", "check-ignore", "-q", "lib/melunmix/__init__.py"], cwd=ROOT, capture_output=True
    )
    assert out.returncode == 1, ".gitignore must not ignore lib/"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _report_answer(profile: str) -> str:
    """The committed report's answer sentence (its line ``**Answer:** ...``)."""
    for line in (ROOT / "results" / profile / "REPORT.md").read_text().splitlines():
        if line.startswith("**Answer:** "):
            return line[len("**Answer:** "):]
    raise AssertionError(f"results/{profile}/REPORT.md has no answer line")


def _markdown_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| :") and not line.startswith("|:"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0], cells[1:])
    return rows


def _report_answer_block(profile: str) -> list[str]:
    """Every comparison the committed report opens with: the answer line and the bullets after it."""
    lines = (ROOT / "results" / profile / "REPORT.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**Answer:** "))
    block = [lines[start][len("**Answer:** "):]]
    for line in lines[start + 1:]:
        if line.startswith("## ") or line.startswith("Half against full"):
            break
        if line.startswith("- "):
            block.append(line[2:])
    return block


def test_readme_quotes_the_committed_study_answer_and_table():
    """The README opens the study with the answer its REPORT opens with (every comparison),
    and its table rows are the committed main table's (the first columns): numbers never
    typed by hand."""
    readme = (ROOT / "README.md").read_text()
    assert f"> {_report_answer('study')}\n" in readme
    section = readme[readme.index("## The answer"):readme.index("## Results of the demo profile")]
    block = _report_answer_block("study")
    assert len(block) >= 7  # four models against the baseline (the first is the answer), the proposed model against three controls
    for line in block[1:]:
        assert f"> - {line}\n" in section, line
    section = readme[readme.index("## The answer"):readme.index("## Results of the demo profile")]
    main = _markdown_rows((ROOT / "results" / "study" / "tables" / "main.md").read_text())
    table = section[section.index("| model | seeds | params"):]
    shown = _markdown_rows(table[: table.index("\n\n")])
    assert len(shown) >= 10
    for label, cells in shown.items():
        if label == "model":
            continue
        assert main[label][: len(cells)] == cells, label


def test_readme_quotes_the_committed_demo_answer():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Results of the demo profile"):]
    assert f"> {_report_answer('demo')}\n" in section


def test_license_and_citation_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().splitlines()[0] == "MIT License"
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["license"] == project["license"] and citation["version"] == project["version"]
    assert {"10.21105/joss.01667", "10.5281/zenodo.1117372"} <= {ref.get("doi") for ref in citation["references"]}


def test_each_test_worker_compiles_numba_into_its_own_cache():
    """Two xdist workers sharing librosa's numba cache can segfault (numba issue 10128)."""
    import os

    import numba

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        pytest.skip("one process: nothing to race with (make test runs pytest-xdist workers)")
    if not os.environ.get("MELUNMIX_TESTS_CHOSE_NUMBA_CACHE"):
        pytest.skip("the caller set NUMBA_CACHE_DIR")
    assert Path(numba.config.CACHE_DIR) == ROOT / ".pytest_cache" / "numba" / worker


#: Decimals a results section may name that are settings, not results (sample rates in kHz).
SETTINGS_NOT_RESULTS = {"44.1"}


def _committed_text(profile: str) -> tuple[str, str]:
    """A run's committed summaries: (its report and Markdown tables, rounded as printed;
    the matched-steps and loss tables and the tuning's recipe records, unrounded). Not the
    per-song CSVs, whose thousands of numbers would match anything."""
    root = ROOT / "results" / profile
    printed = [root / "REPORT.md", *sorted((root / "tables").glob("*.md"))]
    raw = [root / "tables" / "matched_steps.csv", root / "tables" / "losses.csv",
           *sorted((root / "tuning").glob("*.csv")), *sorted((root / "tuning").glob("*.json"))]
    read = lambda files: "\n".join(p.read_text() for p in files if p.is_file())  # noqa: E731
    return read(printed), read(raw)


def _signed_decimals(text: str) -> list[tuple[str, str]]:
    """The decimal numbers of a passage with their sign ("-", or "" for + and none); a dash
    between two numbers (0.29-0.64) is a range, not a sign."""
    found = []
    for match in re.finditer(r"(?<![\w.])\d+\.\d+(?![\w.])", text):
        before = text[max(0, match.start() - 2):match.start()]
        negative = before[-1:] in ("-", "\u2212") and not before[:1].isalnum()
        found.append(("-" if negative else "", match.group()))
    return found


def _stated_in(sign: str, value: str, printed: str, raw: str) -> bool:
    """Whether the committed files hold the number with its sign: as printed in the report
    and Markdown tables, or (records, CSV) an unrounded value that rounds to it."""
    lead = "-" if sign else r"(?<![\d.\-\u2212])[+]?"
    if re.search(rf"{lead}{re.escape(value)}(?![\d])", printed):
        return True
    places = len(value.split(".")[1])
    for match in re.finditer(r"(?<![\d.])(-?)(\d+\.\d{%d,})" % (places + 1), raw):
        if match.group(1) == sign and f"{float(match.group(2)):.{places}f}" == value:
            return True
    return False


def _missing_figures(decimals: list[tuple[str, str]], record: str) -> list[str]:
    """The signed decimals a benchmark record (bench/README.md, bench/records) does not state."""
    return sorted({sign + value for sign, value in decimals if not _stated_in(sign, value, record, record)})


@pytest.mark.parametrize("profile, start, end", [("study", "**The answer**", "## Quick start"),
                                                 ("study", "## The answer", "### The study's scale"),
                                                 ("demo", "## Results of the demo profile", "## Deviations")])
def test_every_decimal_in_the_readmes_results_comes_from_the_committed_files(profile, start, end):
    """No hand-typed result: each decimal number the README's results section states is,
    with its sign, in that run's committed report, tables or tuning records."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(start):readme.index(end)]
    printed, raw = _committed_text(profile)
    decimals = [(sign, value) for sign, value in _signed_decimals(section) if value not in SETTINGS_NOT_RESULTS]
    assert len(decimals) >= 5  # the section was found and states results
    missing = sorted({sign + value for sign, value in decimals if not _stated_in(sign, value, printed, raw)})
    assert not missing, f"README's {profile} numbers not in results/{profile}/: {missing}"


def test_the_number_check_minds_signs_ranges_and_rounding():
    assert _signed_decimals("-0.08 dB [-0.38, +0.09], 0.29-0.64 dB") == [
        ("-", "0.08"), ("-", "0.38"), ("", "0.09"), ("", "0.29"), ("", "0.64")]
    printed, raw = "| a | -0.08 | +0.09 | 0.29 |", "lr,0.018512\ngamma,-0.84934"
    assert _stated_in("-", "0.08", printed, raw) and not _stated_in("", "0.08", printed, raw)
    assert _stated_in("", "0.09", printed, raw) and _stated_in("", "0.29", printed, raw)
    assert _stated_in("", "0.0185", printed, raw) and not _stated_in("", "0.849", printed, raw)
    assert _stated_in("-", "0.849", printed, raw) and not _stated_in("", "0.019", printed, "x 0.0185")


@pytest.mark.parametrize("profile", ["demo", "study"])
def test_the_profile_tables_times_are_the_manifests(profile):
    """The profiles table's time for a committed run is its manifest's notebook time."""
    manifest = json.loads((ROOT / "results" / profile / "manifest.json").read_text())
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{profile}`"))
    minutes = int(re.search(r"\| (\d+) min of notebooks", row).group(1))
    assert minutes == round(manifest["total_seconds"] / 60), (row, manifest["total_seconds"])


def test_the_readmes_benchmark_figures_are_the_benchmark_records():
    """The README's benchmark summary quotes bench/README.md's measured figures."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Benchmarks"):readme.index("## The built-in dataset")]
    record = (ROOT / "bench" / "README.md").read_text()
    decimals = _signed_decimals(section)
    assert len(decimals) >= 4
    missing = _missing_figures(decimals, record)
    assert not missing, f"README's benchmark figures not in bench/README.md: {missing}"


@pytest.mark.parametrize("profile", ["smoke", "demo", "study"])
def test_the_profile_tables_disk_is_the_measured_one(profile):
    """The profiles table's disk for a profile that ran here is bench/README.md's measurement."""
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{profile}`"))
    stated = row.split("|")[4].strip()
    record = (ROOT / "bench" / "README.md").read_text()
    measured = next(line for line in record[record.index("## Disk a run needs"):].splitlines()
                    if line.startswith(f"| `{profile}`"))
    assert stated == measured.split("|")[-2].strip(), (stated, measured)


def test_the_study_scale_step_times_are_the_benchmark_record():
    """The README's table of training-step costs is bench/README.md's measured one."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### The study's scale"):readme.index("## Results of the demo profile")]
    record = (ROOT / "bench" / "README.md").read_text()
    record = record[record.index("## Training step at the study's candidate scales"):]
    shown = {label.split(" (")[0]: cells for label, cells in _markdown_rows(section).items() if "kHz" in label}
    measured = {label.split(" (")[0]: cells for label, cells in _markdown_rows(record).items() if "kHz" in label}
    assert len(shown) >= 5 and shown == {label: measured[label] for label in shown}


@pytest.mark.parametrize("start, end", [("- **One rate.**", "## On a cluster"),
                                        ("`bench/generator_speed.py` measures", "Each dataset has a data card")])
def test_the_readmes_data_figures_are_the_committed_records(start, end):
    """The README's generator speed and data-check figures are those of the committed
    records (bench/records/*.txt, the scripts' output) or bench/README.md's rehearsal."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(start):readme.index(end)]
    record = "\n".join(p.read_text() for p in [ROOT / "bench" / "README.md",
                                                 *sorted((ROOT / "bench" / "records").glob("*.txt"))])
    decimals = _signed_decimals(section)
    assert len(decimals) >= 6
    missing = _missing_figures(decimals, record)
    assert not missing, f"README's data figures not in bench/records or bench/README.md: {missing}"


def test_the_readmes_rehearsal_figures_are_the_rehearsal_record():
    """The README's table of the MUSDB18-size rehearsal quotes bench/README.md's record."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### MUSDB18's size, rehearsed"):readme.index("### Where files go")]
    record = (ROOT / "bench" / "README.md").read_text()
    record = record[record.index("## MUSDB18's size, rehearsed"):]
    decimals = _signed_decimals(section)
    assert len(decimals) >= 10
    missing = _missing_figures(decimals, record)
    assert not missing, f"README's rehearsal figures not in bench/README.md: {missing}"


#: Modules tested through others, and where: small enough that their own file would repeat
#: those tests. Every other module of lib/melunmix/<layer>/ has tests/<layer>/test_<module>.py.
TESTED_ELSEWHERE = {
    "base/dataset_format": "tests/synth/test_dataset.py (another generator version is refused)",
    "datasets/prepare": "tests/datasets/test_layout.py and test_torch_datasets.py (tracks prepared for reading)",
    "study/profile_commands": "tests/training/test_distributed.py and test_tune.py (`melunmix train`, `melunmix tune`)",
    "training/epoch": "tests/training/test_train.py (the passes against Open-Unmix's recipe, validation SDR)",
    "training/randomness": "tests/training/test_train.py (a killed run resumes to the bit)",
    "training/training_data": "tests/training/test_train.py and tests/datasets/test_layout.py (prepare_data)",
}


def _untested_modules() -> list[str]:
    package = ROOT / "lib" / "melunmix"
    modules = sorted(str(path.relative_to(package).with_suffix("")) for path in package.glob("*/*.py")
                     if path.name != "__init__.py")
    return [module for module in modules if module not in TESTED_ELSEWHERE
            and not (ROOT / "tests" / Path(module).parent / f"test_{Path(module).name}.py").is_file()]


def test_the_tests_mirror_the_package():
    """tests/<layer>/test_<module>.py for every module of lib/melunmix/<layer>/, or a line
    in TESTED_ELSEWHERE saying which tests cover it."""
    assert _untested_modules() == []
    stale = [module for module in TESTED_ELSEWHERE if not (ROOT / "lib" / "melunmix" / f"{module}.py").is_file()]
    assert stale == []
