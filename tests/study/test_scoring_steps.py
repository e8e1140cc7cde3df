"""melunmix.study.scoring_steps: the comparisons a run makes."""

from __future__ import annotations

from melunmix.study import run_setup, scoring_steps

from study_support import make_run


def test_several_seeds_get_their_own_folders_and_paired_comparisons(tmp_path):
    run = make_run(tmp_path, [1, 2], models=("baseline", "proposed"))
    runs = run_setup.model_runs(run)
    assert [r.method for r in runs] == ["openunmix-seed1", "openunmix-seed2", "melunmix-seed1", "melunmix-seed2"]
    assert runs[1].out_dir == tmp_path / "smoke" / "models" / "openunmix" / "seed2"
    assert scoring_steps.comparisons(run) == [("melunmix-seed1", "openunmix-seed1"), ("melunmix-seed2", "openunmix-seed2")]
