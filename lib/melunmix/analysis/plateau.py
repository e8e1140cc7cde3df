"""When a training run has stopped learning: the plateau rule (REFERENCE.md, "Plateau")."""

from __future__ import annotations

from typing import Sequence

import numpy as np


#: The plateau rule (REFERENCE.md, "Plateau"): a run is at its plateau when early stopping
#: ended it, or when its last quarter of epochs improved its best validation loss by less
#: than this fraction (:func:`last_quarter_gain`).
PLATEAU_GAIN = 0.02


def last_quarter_gain(valid_losses: Sequence[float]) -> float:
    """How much a run's last quarter of epochs improved its best validation loss.

    With ``n`` epochs the last quarter is the last ``ceil(n / 4)``; the gain is
    ``(best before it - best overall) / best before it`` (0 when the last quarter did not
    improve the best; NaN for a run of one epoch, without a finite loss before the last
    quarter, or with a non-finite loss in it: a diverged run is not at its plateau). Compare with :data:`PLATEAU_GAIN`.

    Examples
    --------
    >>> last_quarter_gain([10.0, 8.0, 7.0, 6.93])   # the last epoch gains 1 %
    0.01
    """
    losses = np.asarray(list(valid_losses), dtype=float)
    quarter = int(np.ceil(len(losses) / 4))
    before = losses[: len(losses) - quarter]
    if len(losses) < 2 or not np.isfinite(before).any() or not np.isfinite(losses[-quarter:]).all():
        return float("nan")  # a run that diverged (NaN, inf) at its end is not at a plateau
    best_before = float(np.nanmin(before))
    best = float(np.nanmin(np.where(np.isfinite(losses), losses, np.inf)))
    return round((best_before - best) / best_before, 12)


def at_plateau(valid_losses: Sequence[float], stop_reason: str | None = None) -> bool:
    """The plateau rule: early stopping ended the run, or its last quarter gained less than
    :data:`PLATEAU_GAIN` (:func:`last_quarter_gain`)."""
    if stop_reason == "early_stopping":
        return True
    gain = last_quarter_gain(valid_losses)
    return bool(np.isfinite(gain) and gain < PLATEAU_GAIN)
