"""melunmix.study.run_setup: a run opened from a profile, its model runs and method names, external models, what a run says about itself."""

import pytest

from melunmix.base.config import PROFILES_DIR, load_profile, run_paths
from melunmix.study import run_setup, scoring_steps

from study_support import make_run


def test_one_seed_methods_are_model_names(tmp_path):
    runs = run_setup.model_runs(make_run(tmp_path, [42]))
    assert [(r.model, r.method) for r in runs] == [("openunmix", "openunmix"), ("melunmix", "melunmix")]
    assert runs[0].weights == tmp_path / "smoke" / "models" / "openunmix" / "vocals.pth"
    assert scoring_steps.comparisons(make_run(tmp_path, [42])) == [("melunmix", "openunmix")]


def test_four_models_and_half_training_methods(tmp_path):
    run = make_run(tmp_path, [7], models=("openunmix", "melunmix", "mfccunmix", "control"))
    runs = run_setup.model_runs(run, half=True)
    assert [r.method for r in runs] == ["openunmix", "melunmix", "mfccunmix", "linunmix", "openunmix-half",
                                        "melunmix-half", "mfccunmix-half", "linunmix-half"]
    assert runs[5].weights == tmp_path / "smoke" / "models" / "melunmix" / "vocals_half.pth"
    assert runs[1].weights == tmp_path / "smoke" / "models" / "melunmix" / "vocals.pth"
    assert scoring_steps.comparisons(run) == [("melunmix", "openunmix"), ("mfccunmix", "openunmix"),
                                      ("linunmix", "openunmix")]
    several = run_setup.model_runs(make_run(tmp_path, [1, 2], models=("openunmix",)), half=True)
    assert [r.method for r in several] == ["openunmix-seed1", "openunmix-seed2", "openunmix-half-seed1",
                                           "openunmix-half-seed2"]


def test_model_runs_follow_the_profile_target(tmp_path):
    settings = load_profile("smoke", overrides={"data": {"targets": ["drums"]}})
    runs = run_setup.model_runs(run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data"), half=True)
    assert {r.weights.name for r in runs} == {"drums.pth", "drums_half.pth"}


def test_musdb_profiles_refuse_generated_data_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    with pytest.raises(ValueError, match="profile 'poster' is the study on MUSDB18.*MUSDB_ROOT.*--data-root.*--stand-in"):
        run_setup.open_run("poster", results_dir=tmp_path)


def test_a_model_trained_elsewhere_may_not_take_a_name_of_the_studys_methods(tmp_path):
    weights = tmp_path / "umxhq"
    weights.mkdir()
    # A model, an alias of one (umx is Open-Unmix), an oracle in any case, a seed or half suffix.
    for name in ("openunmix", "umx", "IRM1", "irm1", "mix", "openunmix-seed9", "mine-half"):
        settings = load_profile("smoke", overrides={"evaluate": {"models": {name: str(weights)}}})
        run = run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data")
        with pytest.raises(ValueError, match=rf"evaluate.models: '{name}' is a name of the study's own methods"):
            scoring_steps.evaluate_all(run, test_tracks=[])
    settings = load_profile("smoke", overrides={"evaluate": {"models": {"umxhq-published": "nowhere/umxhq"}}})
    with pytest.raises(FileNotFoundError, match=r"evaluate.models: 'umxhq-published': .*nowhere/umxhq does not exist"):
        run_setup.check_external_models(settings)
    # open_run (every notebook's first step) checks them: notebook 01 stops, not 05 hours later.
    import yaml

    profile = tmp_path / "mine.yaml"
    smoke = yaml.safe_load((PROFILES_DIR / "smoke.yaml").read_text())
    smoke.setdefault("evaluate", {})["models"] = {"umxhq-published": "nowhere/umxhq"}
    profile.write_text(yaml.safe_dump(smoke))
    with pytest.raises(FileNotFoundError, match="nowhere/umxhq does not exist"):
        run_setup.open_run(str(profile), results_dir=tmp_path)
    settings = load_profile("smoke", overrides={"evaluate": {"models": {"umxhq-published": str(weights)}}})
    assert run_setup.check_external_models(settings) == {"umxhq-published": weights.resolve()}
    with pytest.raises(ValueError, match="needs the path of a model file or folder, got None"):
        run_setup.check_external_models(load_profile("smoke", overrides={"evaluate": {"models": {"x": None}}}))


def test_a_run_says_which_code_made_it_where_its_results_are_and_what_smoke_numbers_mean(tmp_path):
    import re

    described = make_run(tmp_path, [42]).describe().splitlines()
    assert re.fullmatch(r"code: melunmix \S+(, commit [0-9a-f]{12}(-dirty)?)?", described[3]), described
    assert described[4] == f"results: {tmp_path / 'smoke'}"  # outside the checkout: as it is
    from melunmix.base.config import home_dir

    inside = run_setup.Run(load_profile("smoke"), run_paths(load_profile("smoke"), home_dir() / "results"), tmp_path)
    assert inside.describe().splitlines()[4] == "results: results/smoke"  # inside: no machine's folders
    assert "numbers mean nothing" in described[5] and "results/study/REPORT.md" in described[5]
    demo = load_profile("demo")
    assert "numbers mean nothing" not in run_setup.Run(demo, run_paths(demo, tmp_path), tmp_path / "data").describe()
