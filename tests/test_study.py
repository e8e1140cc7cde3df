"""The notebook steps' glue: method names per seed, comparisons, dataset table."""


import numpy as np
import pytest
import soundfile as sf

from melunmix.study import example_audio, exploration, run_setup, scoring_steps, training_steps
from melunmix.base.config import PROFILES_DIR, load_profile, run_paths


def make_run(tmp_path, seeds, models=("openunmix", "melunmix")):
    settings = load_profile("smoke", overrides={"train": {"seeds": list(seeds), "models": list(models)}})
    return run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data")


def test_one_seed_methods_are_model_names(tmp_path):
    runs = run_setup.model_runs(make_run(tmp_path, [42]))
    assert [(r.model, r.method) for r in runs] == [("openunmix", "openunmix"), ("melunmix", "melunmix")]
    assert runs[0].weights == tmp_path / "smoke" / "models" / "openunmix" / "vocals.pth"
    assert scoring_steps.comparisons(make_run(tmp_path, [42])) == [("melunmix", "openunmix")]


def test_several_seeds_get_their_own_folders_and_paired_comparisons(tmp_path):
    run = make_run(tmp_path, [1, 2], models=("baseline", "proposed"))
    runs = run_setup.model_runs(run)
    assert [r.method for r in runs] == ["openunmix-seed1", "openunmix-seed2", "melunmix-seed1", "melunmix-seed2"]
    assert runs[1].out_dir == tmp_path / "smoke" / "models" / "openunmix" / "seed2"
    assert scoring_steps.comparisons(run) == [("melunmix-seed1", "openunmix-seed1"), ("melunmix-seed2", "openunmix-seed2")]


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


def test_half_training_step_only_where_half_trained_weights_are_scored(tmp_path):
    from melunmix.base.files import write_json
    from melunmix.base.names import HISTORY_JSON_NAME

    settings = load_profile("smoke", overrides={"train": {"seeds": [1], "epochs": 6}})
    run = run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data")
    assert training_steps.half_training_step(run) is None  # nothing trained yet
    out_dir = run_setup.model_runs(run)[0].out_dir
    out_dir.mkdir(parents=True)
    write_json(out_dir / HISTORY_JSON_NAME, {"steps_per_epoch": 14})
    assert training_steps.half_training_step(run) == 3 * 14
    off = load_profile("smoke", overrides={"train": {"seeds": [1], "epochs": 6}, "evaluate": {"half_training": False}})
    assert training_steps.half_training_step(run_setup.Run(off, run.paths, run.data_root)) is None


def test_model_runs_follow_the_profile_target(tmp_path):
    settings = load_profile("smoke", overrides={"data": {"targets": ["drums"]}})
    runs = run_setup.model_runs(run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data"), half=True)
    assert {r.weights.name for r in runs} == {"drums.pth", "drums_half.pth"}


def test_musdb_profiles_refuse_generated_data_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("MUSDB_ROOT", raising=False)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    with pytest.raises(ValueError, match="profile 'poster' is the study on MUSDB18.*MUSDB_ROOT.*--data-root.*--stand-in"):
        run_setup.open_run("poster", results_dir=tmp_path)


def test_dataset_table_measures_loudness_and_vocal_activity(tmp_path):
    rate = 8000
    root = tmp_path / "data"
    t = np.arange(4 * rate) / rate
    for subset, name in (("train", "A - Song"), ("test", "B - Song")):
        folder = root / subset / name
        folder.mkdir(parents=True)
        vocals = np.zeros((len(t), 2), np.float32)
        vocals[: 2 * rate] = 0.5  # constant 0.5 for 2 s: -6.02 dBFS over the sung part, silent after
        other = np.stack([0.1 * np.sin(2 * np.pi * 220 * t)] * 2, 1).astype(np.float32)
        stems = {"vocals": vocals, "drums": other, "bass": other, "other": other}
        stems["mixture"] = sum(stems.values())
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", audio, rate, subtype="FLOAT")
    # the profile's rate is the songs' (songs at another rate are refused: test_roots_any_folder.py)
    settings = load_profile("smoke", overrides={"data": {"root": str(root), "sample_rate": rate}})
    run = run_setup.Run(settings, run_paths(settings, tmp_path), root)
    table = exploration.dataset_table(run)
    assert list(table["track"]) == ["A - Song", "B - Song"] and list(table["split"]) == ["train", "test"]
    row = table.iloc[0]
    assert row["duration_s"] == 4.0
    assert row["vocals_db"] == pytest.approx(20 * np.log10(0.5 * np.sqrt(0.5)), abs=0.01)
    assert row["other_db"] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.01)
    assert row["vocals_active"] == 0.5


@pytest.mark.parametrize("seeds", [[42], [1, 2]])
def test_examples_are_titled_for_a_reader_with_one_seed_per_model(tmp_path, seeds):
    run = make_run(tmp_path, seeds)
    folder = run.paths.root / example_audio.EXAMPLES_DIR / "Some Song"
    folder.mkdir(parents=True)
    rate = 8000
    names = ["mixture", "vocals"] + [f"{item.method}_vocals" for item in run_setup.model_runs(run)]
    for index, name in enumerate(names):
        sf.write(folder / f"{name}.wav", np.full((rate, 2), 0.01 * (index + 1), dtype=np.float32), rate)
    song, panels, found_rate = example_audio.load_examples(run)
    seed = f", seed {seeds[0]}" if len(seeds) > 1 else ""
    assert song == "Some Song" and found_rate == rate
    assert list(panels) == ["Mixture", "True vocals", f"Open-Unmix (baseline){seed}: vocals estimate",
                            f"MelUnmix (mel, proposed){seed}: vocals estimate"]
    # each title holds its own file's audio: the first seed's estimate, not another's
    first = f"{run_setup.model_runs(run)[0].method}_vocals"
    assert panels[list(panels)[2]][0, 0] == pytest.approx(0.01 * (names.index(first) + 1), abs=1e-4)


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
