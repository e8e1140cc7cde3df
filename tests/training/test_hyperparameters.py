"""melunmix.training.hyperparameters: the one shared recipe of per-model searches."""

from __future__ import annotations

import json

import pytest

from melunmix.training.hyperparameters import (BEST_PARAMS_NAME, RECIPE_FIT_NAME, SHARED_RECIPE_NAME,
                                               resolve_hyperparameters, shared_recipe)

from test_tune import _read_csv, _write_search, make_settings

# Caches in a temporary folder, not the repository's.
pytestmark = pytest.mark.usefixtures("temporary_cache")


def test_shared_recipe_is_the_common_values_best_on_average_and_training_reads_it(tmp_path):
    space = {"lr": [1e-3, 3e-2, "log"], "lr_decay_gamma": [0.5, 1.0, "linear"], "batch_size": [2, 8, "linear"]}
    settings = make_settings(train={"models": ["openunmix", "melunmix"], "use_tuned": True},
                             tune={"per_model": True, "shared_recipe": True, "space": space})
    tuning = tmp_path / "tuning"
    a, b, c, d, e = (0.003, 0.9), (0.01, 0.85), (0.02, 0.8), (0.005, 0.95), (0.004, 0.7)
    _write_search(tuning / "openunmix", [("COMPLETE", *a, 0.50), ("COMPLETE", *b, 0.40), ("COMPLETE", *c, 0.30),
                                         ("COMPLETE", *e, 0.10)])
    # e is the best for the baseline, but it diverged for the other model: not a candidate
    _write_search(tuning / "melunmix", [("COMPLETE", *a, 0.50), ("COMPLETE", *b, 0.80), ("COMPLETE", *d, 0.45),
                                        ("FAIL", *e, "")])
    # mean of loss / own best: b (0.4/0.1 + 0.8/0.45) / 2 = 2.89 beats a (0.5/0.1 + 0.5/0.45) / 2 = 3.06,
    # though a is the better of the two for melunmix: each model weighs by its own best
    recipe = shared_recipe(settings, tuning)
    assert recipe["params"] == {"lr": b[0], "lr_decay_gamma": b[1], "batch_size": 4}
    assert type(recipe["params"]["batch_size"]) is int  # an integer setting stays one (read from text)
    fit = {row["model"]: row for row in _read_csv(tuning / RECIPE_FIT_NAME)}
    assert float(fit["openunmix"]["gap_pct"]) == pytest.approx(300.0)  # 0.40 against its own 0.10
    assert int(fit["openunmix"]["shared_rank"]) == 3 and int(fit["openunmix"]["own_best_trial"]) == 3
    assert float(fit["melunmix"]["gap_pct"]) == pytest.approx(100 * (0.80 / 0.45 - 1), abs=1e-3)
    assert int(fit["melunmix"]["shared_rank"]) == 3 and int(fit["melunmix"]["nb_complete"]) == 3
    saved = json.loads((tuning / SHARED_RECIPE_NAME).read_text())
    assert saved["search"]["candidates"] == 2 and saved["search"]["models"] == ["openunmix", "melunmix"]
    for model in ("openunmix", "melunmix"):
        hp, tuned, source = resolve_hyperparameters(settings, tuning, model_name=model)
        assert source == tuning / SHARED_RECIPE_NAME and (hp.lr, hp.lr_decay_gamma, hp.batch_size) == (*b, 4)
    # one search unfinished: no recipe yet, training keeps the profile's values
    (tuning / "melunmix" / BEST_PARAMS_NAME).unlink()
    assert shared_recipe(settings, tuning) is None
    assert resolve_hyperparameters(settings, tuning, model_name="openunmix")[1] is None
    # nothing tried by both: refused with the fix
    (tuning / "melunmix").rename(tmp_path / "old")
    _write_search(tuning / "melunmix", [("COMPLETE", *d, 0.45)])
    with pytest.raises(ValueError, match="startup_trials"):
        shared_recipe(settings, tuning)
