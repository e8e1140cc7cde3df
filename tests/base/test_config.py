from pathlib import Path

import pytest
import yaml

from melunmix.base.config import (
    PROFILES_DIR, Settings, load_profile, run_paths, settings_from_dict,
)

PROFILES = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def test_the_four_profiles_exist():
    assert {"smoke", "demo", "poster", "umx"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_load_and_are_yaml_native(name):
    settings = load_profile(name)
    assert settings.name == name
    # papermill only carries YAML-native values: the resolved settings must round-trip
    assert settings_from_dict(yaml.safe_load(yaml.safe_dump(settings.to_dict()))) == settings


def test_poster_profile_has_the_posters_settings():
    s = load_profile("poster")
    assert (s.data.sample_rate, s.data.seq_dur, s.data.samples_per_track) == (44100, 6.0, 64)
    assert (s.train.epochs, s.model.hidden_size, s.stft.n_fft, s.stft.n_hop) == (20, 512, 4096, 1024)
    assert (s.stft.bandwidth, s.evaluate.niter) == (16000, 1)
    assert s.tune.sample_rate < s.data.sample_rate


def test_umx_profile_is_the_open_unmix_recipe():
    s = load_profile("umx")
    assert s.train.epochs == 1000 and s.train.patience == 140
    assert (s.train.lr_decay_gamma, s.train.lr_decay_patience, s.train.lr_decay_cooldown) == (0.3, 80, 10)


def test_unknown_key_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml\.train: unknown setting\(s\) \['epoch'\]"):
        load_profile(bad)


def test_missing_profile_lists_available():
    with pytest.raises(FileNotFoundError, match="available: .*smoke"):
        load_profile("nope")


def test_overrides_merge_deeply():
    s = load_profile("smoke", overrides={"data": {"root": "/x"}, "train": {"epochs": 7}})
    base = load_profile("smoke")
    assert s.data.root == "/x" and s.train.epochs == 7
    assert s.data.seq_dur == base.data.seq_dur and s.train.batch_size == base.train.batch_size


def test_run_paths(tmp_path):
    paths = run_paths(Settings(name="p"), tmp_path)
    assert paths.root == tmp_path / "p"
    assert paths.model_dir("openunmix", 3) == tmp_path / "p" / "models" / "openunmix" / "seed3"
    assert paths.eval.name == "eval" and paths.report.name == "REPORT.md"


@pytest.mark.parametrize("section,key,value,message", [
    ("train", "epochs", "two", r"train\.epochs: expected int, got 'two'"),
    ("train", "seeds", 42, r"train\.seeds: expected list\[int\], got 42"),
    ("model", "hidden_size", 32.5, r"model\.hidden_size: expected int, got 32\.5"),
    ("train", "epochs", -3, r"train\.epochs must be positive, got -3"),
    ("train", "batch_size", 0, r"train\.batch_size must be positive, got 0"),
    ("stft", "n_fft", -1024, r"stft\.n_fft must be positive"),
    ("train", "weight_decay", -1e-5, r"train\.weight_decay must be zero or positive"),
    ("train", "progress", "yes", r"train\.progress: expected bool"),
    ("evaluate", "jobs", 0, r"evaluate\.jobs must be positive"),
    ("train", "jobs", 0, r"train\.jobs must be positive"),
    ("tune", "startup_trials", 0, r"tune\.startup_trials must be positive"),
    ("train", "seeds", [], r"train\.seeds is empty: list at least one training seed"),
    ("train", "models", [], r"train\.models is empty: list at least one model"),
    ("data", "targets", [], r"data\.targets is empty"),
])
def test_wrong_types_and_values_fail_when_the_profile_loads(tmp_path, section, key, value, message):
    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ValueError, match=message):
        load_profile(bad)


def test_ints_are_accepted_where_floats_are_expected_and_none_where_optional():
    s = load_profile("smoke", overrides={"data": {"seq_dur": 2, "valid_seq_dur": None}, "evaluate": {"jobs": None}})
    assert s.data.seq_dur == 2 and s.data.valid_seq_dur is None and s.evaluate.jobs is None


def test_malformed_yaml_is_one_line_naming_the_file_and_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("train:\n  epochs: 3\n   batch_size: [4\n")
    with pytest.raises(ValueError, match=r"broken\.yaml is not valid YAML \(line \d+, column \d+\)") as err:
        load_profile(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text,first,second", [
    ("model:\n  hidden_size: 16\n  nb_layers: 2\n  hidden_size: 24\n", 2, 4),
    ("model: {hidden_size: 16}\ntrain: {epochs: 2}\nmodel: {nb_layers: 2}\n", 1, 3),
    ("model: {hidden_size: 16, hidden_size: 24}\n", 1, 1),
])
def test_a_key_given_twice_is_refused_naming_it_and_its_lines(tmp_path, text, first, second):
    twice = tmp_path / "twice.yaml"
    twice.write_text(text)
    with pytest.raises(ValueError, match=rf"twice\.yaml: '\w+' is given twice \(lines {first} and {second}\)"):
        load_profile(twice)
    # YAML itself lets the last win: the profile loader is what refuses.
    assert isinstance(yaml.safe_load(text), dict)
