"""melunmix.study.example_audio: the separation examples."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from melunmix.study import example_audio, run_setup

from study_support import make_run


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
