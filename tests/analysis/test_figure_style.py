"""melunmix.analysis.figure_style: one colour per method in every figure, figure files written atomically."""

import matplotlib
import numpy as np

from melunmix.analysis import figure_style
from melunmix.base import names
from melunmix.base.names import MODELS


def test_method_colours_are_consistent_and_distinct():
    assert figure_style.method_color("baseline") == figure_style.method_color("openunmix") \
        == figure_style.method_color("openunmix/seed42") == figure_style.method_color("openunmix-seed7")
    assert figure_style.method_color("proposed") == figure_style.method_color("melunmix")
    assert figure_style.method_color("melunmix-half-seed3") == figure_style.METHOD_COLORS["melunmix-half"]
    known = list(names.METHOD_ORDER)
    assert list(figure_style.METHOD_COLORS) == known  # one colour per method of the registry
    assert len({figure_style.method_color(m) for m in known}) == len(known)
    # a half-training checkpoint: its model's hue, lighter
    for model in MODELS:
        full = np.array(matplotlib.colors.to_rgb(figure_style.method_color(model)))
        half = np.array(matplotlib.colors.to_rgb(figure_style.method_color(f"{model}-half")))
        np.testing.assert_allclose(half, full + (1 - full) * 0.5, atol=1 / 255)
    # an unknown method keeps its colour between calls and avoids the known ones
    assert figure_style.method_color("my_method") == figure_style.method_color("my_method")
    assert figure_style.method_color("my_method") not in {figure_style.method_color(m) for m in known}
    assert names.order_methods(["MIX", "zzz", "melunmix", "IRM1", "openunmix"]) == \
        ["openunmix", "melunmix", "zzz", "IRM1", "MIX"]
    assert names.method_label("melunmix-seed1") == "MelUnmix (mel, proposed) seed1"
    assert names.method_label("other-seed1") == "other-seed1"


