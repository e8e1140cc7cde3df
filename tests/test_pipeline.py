"""The study runner (papermill, for real) and the command line."""

import json

import nbformat
import pytest

from melunmix import cli, pipeline

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


def test_reproduce_only_selected(study_dir, tmp_path):
    runs = pipeline.reproduce("smoke", results_dir=tmp_path / "r", notebooks_dir=study_dir, only=["01"],
                              progress=False)
    assert [r.name for r in runs] == ["01_first.ipynb"] and runs[0].seconds > 0
    manifest = json.loads((tmp_path / "r" / "smoke" / "manifest.json").read_text())
    assert manifest["total_seconds"] > 0


def test_manifest_fingerprints_the_profiles_dataset(tmp_path):
    from melunmix import datasets
    from melunmix.config import load_profile

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
    write_notebook(study_dir / "02_second.ipynb", "from melunmix.config import load_profile\n"
                   "print('loaded', load_profile(profile).description)")
    monkeypatch.chdir(tmp_path)
    runs = pipeline.reproduce("prof/my.yaml", results_dir=tmp_path / "r", notebooks_dir=study_dir, only=["02"],
                              progress=False)
    executed = nbformat.read(runs[0].output, 4)
    assert "loaded mine" in executed.cells[-1].outputs[0]["text"]


def test_cli_only_an_unknown_notebook_is_an_error(study_dir, capsys):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "07"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--only 07: no such notebook" in err and "01_explore_data.ipynb" in err


def test_cli_make_dataset_onto_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "a file"
    target.write_text("not a folder")
    assert cli.main(["make-dataset", "--out", str(target), "--train", "2", "--valid", "1", "--test", "1",
                     "--duration", "4", "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("melunmix make-dataset: error:") and "is a file" in err
