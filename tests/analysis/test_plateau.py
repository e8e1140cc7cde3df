"""melunmix.analysis.plateau: the plateau rule."""

from __future__ import annotations

import numpy as np
import pytest

from melunmix.analysis import plateau


def test_plateau_rule_last_quarter_gain_or_early_stopping():
    # 8 epochs: the last quarter is epochs 7-8; best before 5.0, best overall 4.95: 1 %
    flat = [9.0, 7.0, 6.0, 5.5, 5.2, 5.0, 4.98, 4.95]
    assert plateau.last_quarter_gain(flat) == pytest.approx(0.01)
    assert plateau.at_plateau(flat)
    # still learning: the last quarter gains 10 %
    learning = [9.0, 8.0, 7.0, 6.5, 6.0, 5.0, 4.8, 4.5]
    assert plateau.last_quarter_gain(learning) == pytest.approx(0.1)
    assert not plateau.at_plateau(learning)
    assert plateau.at_plateau(learning, stop_reason="early_stopping")
    # the last quarter got worse: no gain at all; 5 epochs -> last quarter is 2 epochs
    assert plateau.last_quarter_gain([5.0, 4.0, 3.0, 3.5, 3.6]) == 0.0
    assert np.isnan(plateau.last_quarter_gain([3.0]))
    assert not plateau.at_plateau([3.0])
    # diverged at the end: NaN losses are not a plateau
    assert np.isnan(plateau.last_quarter_gain([1.0, 0.9, 0.8, np.nan, np.nan]))
    assert not plateau.at_plateau([1.0, 0.9, 0.8, np.nan, np.nan])
