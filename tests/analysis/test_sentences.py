"""melunmix.analysis.sentences: a comparison in words."""

from __future__ import annotations

import pytest

from melunmix.analysis import sentences

from analysis_support import paired_row


def test_answer_sentence_wording_follows_the_holm_p():
    text = sentences.answer_sentence(paired_row())
    assert text == ("MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.10 dB median vocals SDR "
                    "[95 % CI -0.30, +0.50], 16 songs x 3 seeds; Wilcoxon p = 0.42 (Holm 0.84): "
                    "no significant difference at 5 %.")
    significant = sentences.answer_sentence(paired_row(median_diff=0.8, ci_low=0.3, p_wilcoxon=0.004,
                                                   p_holm=0.012))
    assert significant.endswith("higher than the baseline, significant at 5 % after Holm correction.")
    lower = sentences.answer_sentence(paired_row(median_diff=-0.8, p_wilcoxon=0.004, p_holm=0.012))
    assert "lower than the baseline, significant" in lower
    only_raw = sentences.answer_sentence(paired_row(p_wilcoxon=0.03, p_holm=0.09))
    assert "not significant at 5 % after Holm correction (p < 5 % before it)" in only_raw
    assert "significant at 5 % after Holm correction" not in only_raw.replace("not significant", "")
    few = sentences.answer_sentence(paired_row(n_songs=4, n_seeds=1, p_wilcoxon=1.0, p_holm=1.0))
    assert "4 songs x 1 seed;" in few and "with 4 songs the test cannot reach p < 5 %" in few
    assert "cannot reach" not in text
    with pytest.raises(ValueError, match="no paired difference of 'linunmix'"):
        sentences.answer_sentence(paired_row(), model="linunmix")
