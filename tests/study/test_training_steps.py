"""melunmix.study.training_steps: the half-training step."""

from __future__ import annotations

from melunmix.base.config import load_profile, run_paths
from melunmix.study import run_setup, training_steps


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
