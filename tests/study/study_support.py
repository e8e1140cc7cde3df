"""A run of the smoke profile on a temporary folder, for the study tests."""

from melunmix.base.config import load_profile, run_paths
from melunmix.study import run_setup


def make_run(tmp_path, seeds, models=("openunmix", "melunmix")):
    settings = load_profile("smoke", overrides={"train": {"seeds": list(seeds), "models": list(models)}})
    return run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data")
