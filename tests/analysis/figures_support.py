"""Score tables, histories and audio shared by the figure tests."""

from pathlib import Path

import numpy as np
import pandas as pd


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


RATE = 8000


def assert_png(path: Path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert not list(Path(path).parent.glob(".*.tmp*")), "temporary file left behind"


def assert_same_db(actual, expected):
    """Equal dB images: 1e-3 dB where loud; at -80 dB float32 rounding of the STFT shows,
    so quiet bins are compared as powers relative to the maximum."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    loud = expected > -50.0
    np.testing.assert_allclose(actual[loud], expected[loud], atol=1e-3)
    np.testing.assert_allclose(10 ** (actual / 10), 10 ** (expected / 10), rtol=1e-5, atol=1e-7)


def sine(freq, seconds=1.0, rate=RATE, amplitude=0.5, nb_channels=1):
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (nb_channels, 1)).astype(np.float32)


def history(losses_train, losses_valid):
    return pd.DataFrame({"epoch": np.arange(1, len(losses_train) + 1), "train_loss": losses_train,
                         "valid_loss": losses_valid, "lr": 1e-3})


def cell_texts(fig):
    """{(row, column): text} of a metric table figure's cells."""
    ax = fig.axes[0]
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts if not hasattr(t, "xyann")}


def paired_table(models=("melunmix", "mfccunmix", "linunmix-half"), songs=16, seeds=3):
    """A paired_differences table with known values: model i has median i - 1 dB."""
    rows = []
    for i, model in enumerate(models):
        for target in ("vocals", "accompaniment"):
            for k, metric in enumerate(("SDR", "SIR", "ISR", "SAR")):
                value = i - 1.0 + 0.1 * k
                rows.append(dict(model=model, baseline="openunmix", target=target, metric=metric,
                                 pairing="seed", n_songs=songs, n_songs_excluded=0, n_seeds=seeds,
                                 n_seeds_baseline=seeds, median_diff=value, mean_diff=value,
                                 ci_low=value - 0.5, ci_high=value + 0.25, level=0.95,
                                 p_wilcoxon=0.01 if i == 0 else 0.5,
                                 p_holm=0.03 if i == 0 else 0.9))
    return pd.DataFrame(rows)
