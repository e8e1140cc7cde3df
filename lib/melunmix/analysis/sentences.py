"""The study's comparisons in words: one row of the paired differences as a sentence."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.names import BASELINE, PROPOSED, method_label
from .inference import MIN_SEEDS_EQUIVALENCE


def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def answer_sentence(
    paired,
    model: str = PROPOSED,
    baseline: str = BASELINE,
    target: str = "vocals",
    metric: str = "SDR",
    alpha: float = 0.05,
) -> str:
    """One row of :func:`paired_differences` in words, e.g.

    ``"MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.10 dB median vocals SDR
    [95 % CI -0.30, +0.50], 16 songs x 3 seeds; Wilcoxon p = 0.42 (Holm 0.84): no
    significant difference at 5 %."``

    The verdict follows the Holm-corrected p only: "significant at 5 % after Holm
    correction" when ``p_holm < alpha``; "not significant after Holm correction" when
    only the uncorrected p is below ``alpha``; else "no significant difference". When
    the number of songs is too small for the exact test ever to reach ``alpha``
    (``2 / 2**n_songs >= alpha``: 5 songs or fewer at 5 %) the sentence says so (a
    percentile bootstrap over so few songs is too narrow, too), and it names songs left
    out and seeds that were averaged rather than paired.

    Then the level of trained networks: the seed-level test's p with 2 seeds or more;
    with one seed, that one network is a demonstration, not evidence. Last the
    equivalence verdict of tables that have one (``eq_low``, ``eq_high``, ``delta``):
    "equivalent within +-delta" when the 90 % interval lies inside, "inconclusive" when
    neither a difference nor equivalence is shown.

    Parameters
    ----------
    paired : DataFrame or path
        :func:`paired_differences`, or its CSV (``tables/paired_differences.csv``).
    model, baseline, target, metric : str
        The row.
    alpha : float
        Significance level.
    """
    row = _answer_row(paired, model, baseline, target, metric)
    n_songs = int(row["n_songs"])
    head = f"{method_label(model)} - {method_label(baseline)}: "
    if n_songs == 0:
        return head + f"no song has {target} {metric} scores for both; nothing to compare."
    percent = f"{alpha * 100:g} %"
    return (head + _size_clause(row, target, metric) + _test_clause(row, baseline, alpha)
            + _seed_clause(row) + _equivalence_clause(row, percent) + ".")


def _answer_row(paired, model: str, baseline: str, target: str, metric: str) -> pd.Series:
    """The row of :func:`paired_differences` (a table or its CSV) for this comparison."""
    table = paired
    if isinstance(paired, (str, os.PathLike)):
        path = Path(paired)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; result_tables.write_tables writes it "
                                    "(notebook 05) when the baseline and a model are scored")
        table = pd.read_csv(path)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"paired: expected the paired_differences table, got {type(paired).__name__}")
    found = table[(table["model"] == model) & (table["baseline"] == baseline)
                  & (table["target"] == target) & (table["metric"] == metric)]
    if found.empty:
        pairs = sorted(set(zip(table["model"], table["baseline"])))
        raise ValueError(f"no paired difference of {model!r} against {baseline!r} on {target} "
                         f"{metric}; the table holds (model, baseline) {pairs}")
    return found.iloc[0]


def _size_clause(row: pd.Series, target: str, metric: str) -> str:
    """The difference, its interval and what it rests on (songs, seeds, songs left out)."""
    n_songs, n_seeds = int(row["n_songs"]), int(row["n_seeds"])
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if row["pairing"] == "mean":
        n_base = int(row["n_seeds_baseline"])
        seeds += (f" (baseline {n_base} seed{'s' if n_base != 1 else ''}; no common seed, so "
                  "seed means are compared, not paired)")
    text = f"{row['median_diff']:+.2f} dB median {target} {metric}"
    if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
        text += f" [{row['level'] * 100:g} % CI {row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
    text += f", {n_songs} song{'s' if n_songs != 1 else ''} x {seeds}"
    excluded = int(row.get("n_songs_excluded", 0) or 0)
    if excluded:
        text += (f", {excluded} song{'s' if excluded != 1 else ''} left out (not scored, or "
                 "no score, for every seed of both)")
    return text


def _test_clause(row: pd.Series, baseline: str, alpha: float) -> str:
    """The song-level test (Wilcoxon, Holm) and its verdict."""
    percent = f"{alpha * 100:g} %"
    n_songs = int(row["n_songs"])
    p, p_holm = float(row["p_wilcoxon"]), float(row["p_holm"])
    text = f"; Wilcoxon p = {format_p(p)} (Holm {format_p(p_holm)}): "
    verdict = str(row.get("verdict", "")) if "verdict" in row.index else None
    if verdict not in (None, "", "higher", "lower", "descriptive") and np.isfinite(p_holm) \
            and p_holm < alpha:  # the songs say "different", the trained networks do not
        text += (f"significant over songs at {percent} after Holm correction, but not at the level "
                 "of trained networks (the interval over songs and seeds, or the test over seeds, "
                 "allows no difference)")
    elif np.isfinite(p_holm) and p_holm < alpha:
        direction = "higher" if row["median_diff"] > 0 else "lower"
        than = "the baseline" if baseline == BASELINE else method_label(baseline)
        text += f"{direction} than {than}, significant at {percent} after Holm correction"
    elif np.isfinite(p) and p < alpha:
        text += f"not significant at {percent} after Holm correction (p < {percent} before it)"
    else:
        text += f"no significant difference at {percent}"
    if 2.0 ** (1 - n_songs) >= alpha:
        text += (f"; with {n_songs} song{'s' if n_songs != 1 else ''} the test cannot reach "
                 f"p < {percent} and a bootstrap interval is unreliable")
    return text


def _seed_clause(row: pd.Series) -> str:
    """The level of trained networks: the seed-level test, or one network's caveat."""
    n_seeds = int(row["n_seeds"])
    if "p_seed" not in row.index:
        return ""
    if n_seeds < 2:
        return "; one trained network per model: a demonstration, not evidence"
    if np.isfinite(float(row["p_seed"])):
        test = "t-test" if row["pairing"] == "seed" else "Welch t-test of the seed medians"
        return f"; over the {n_seeds} seeds ({test}) p = {format_p(float(row['p_seed']))}"
    return ""


def _equivalence_clause(row: pd.Series, percent: str) -> str:
    """The equivalence verdict of tables that have one (``eq_low``, ``eq_high``, ``delta``)."""
    if not ({"eq_low", "eq_high", "delta"} <= set(row.index) and np.isfinite(float(row["eq_low"]))):
        return ""
    low, high, delta = float(row["eq_low"]), float(row["eq_high"]), float(row["delta"])
    verdict = str(row.get("verdict", ""))
    interval = f"90 % CI [{low:+.2f}, {high:+.2f}]"
    if verdict == "equivalent":
        return f"; {interval} inside +-{delta:g} dB: equivalent (two one-sided tests at {percent})"
    if verdict == "inconclusive":
        inside = -delta < low and high < delta
        return (f"; {interval} {'inside' if inside else 'not inside'} +-{delta:g} dB: inconclusive "
                + (f"(equivalence needs {MIN_SEEDS_EQUIVALENCE} seeds or more)" if inside else
                   "(neither a difference nor equivalence shown)"))
    return ""
