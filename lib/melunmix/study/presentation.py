"""How the notebooks show things: display settings, audio players, saved figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


#: Environment variable giving the resolution (dots per inch) of the figures a notebook
#: shows inline. ``scripts/refresh_notebooks.py`` sets it to :data:`COMMITTED_INLINE_DPI`
#: so that the committed notebooks stay small; interactive sessions and ``melunmix
#: reproduce`` keep matplotlib's own resolution. The PNG files under ``figures/`` always
#: keep :data:`melunmix.analysis.figure_style.DEFAULT_DPI`.
INLINE_DPI_ENV = "MELUNMIX_INLINE_DPI"


#: The inline resolution of the committed notebooks.
COMMITTED_INLINE_DPI = 72  # a screen's normal resolution: the metric table's numbers stay readable


#: pandas' display options in the notebooks (their tables are compared as text by nbval).
PANDAS_OPTIONS = {"display.width": 160, "display.max_columns": 20}


def notebook_display(inline_dpi: int | None = None) -> None:
    """How the study's notebooks show things: the set-up cell's one call.

    Sets pandas' display width and column count (:data:`PANDAS_OPTIONS`), ignores the
    ``UserWarning`` s that museval, musdb and stempeg print on every track, and, inside a
    Jupyter kernel with the inline backend (``%matplotlib inline``), draws inline figures
    at ``inline_dpi`` dots per inch; the figures saved under ``figures/`` keep their own
    resolution, and a figure's size (its ``<Figure size WxH>`` text) does not change.

    Parameters
    ----------
    inline_dpi : int, optional
        Resolution of the inline PNGs; default ``$MELUNMIX_INLINE_DPI`` when set (the
        committed copies), otherwise matplotlib's figure resolution.
    """
    import warnings

    for option, value in PANDAS_OPTIONS.items():
        pd.set_option(option, value)
    warnings.filterwarnings("ignore", category=UserWarning, module="museval|musdb|stempeg")
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:  # no IPython: nothing is shown inline
        return
    if inline_dpi is None:
        value = os.environ.get(INLINE_DPI_ENV, "").strip()
        if not value:
            return
        try:
            inline_dpi = int(value)
        except ValueError:
            raise ValueError(f"{INLINE_DPI_ENV}={value!r} is not a whole number of dots per inch") from None
    backend = InlineBackend.instance()
    # Updates the PNG formatter of the running shell (when %matplotlib inline set it up)
    # and is kept for a later %matplotlib inline.
    backend.print_figure_kwargs = {**backend.print_figure_kwargs, "dpi": int(inline_dpi)}


#: Audio players in notebooks: mono, this rate and at most this many seconds, so that the
#: committed notebooks stay small (a player is base64 WAV inside the notebook file).
PREVIEW_RATE = 16000


PREVIEW_SECONDS = 6.0


def audio_player(audio: np.ndarray, rate: float, seconds: float = PREVIEW_SECONDS,
                 preview_rate: int = PREVIEW_RATE):
    """An IPython audio player of a short, mono, low-rate copy of ``audio`` (channels, samples).

    The first ``seconds`` of the channel average, resampled with soxr to ``preview_rate``.
    The figures and files are made from the full audio; only what the notebook embeds is
    reduced.
    """
    import soxr
    from IPython.display import Audio

    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    mono = mono[: int(round(seconds * rate))]
    return Audio(soxr.resample(mono, float(rate), float(preview_rate)), rate=int(preview_rate))


def saved_figure(path: str | os.PathLike):
    """A figure that shows a PNG saved by an earlier step, at its own size, without redrawing it.

    For a notebook that shows a figure another notebook drew and saved (06 shows 04's
    loss curves): the inline backend displays it as any figure, at the notebook's inline
    resolution (:func:`notebook_display`).

    Parameters
    ----------
    path : path-like
        A PNG under ``figures/``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes filling the figure, without ticks; the figure's size in inches is the
        image's pixels over the resolution the PNG records (else
        :data:`melunmix.analysis.figure_style.DEFAULT_DPI`).

    Raises
    ------
    FileNotFoundError
        No such file (one line: run the step that draws it first).
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..analysis.figure_style import DEFAULT_DPI  # matplotlib only when drawing

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the notebook that draws it first")
    with Image.open(path) as image:
        dpi = round(float(image.info.get("dpi", (DEFAULT_DPI,))[0])) or DEFAULT_DPI  # PNG stores dots per metre
        pixels = np.asarray(image.convert("RGBA"))
    height, width = pixels.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(pixels, interpolation="antialiased")
    ax.set_axis_off()
    return fig
