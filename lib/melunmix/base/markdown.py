"""GitHub-flavoured Markdown tables of DataFrames: what the study's tables, the REPORT and
``melunmix score`` print. Below the statistics and the report, which both write tables.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .names import RESIDUE_NOTE

__all__ = ["markdown_table", "escape", "format_cell"]


def escape(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def format_cell(value: Any, floatfmt: str, na_rep: str) -> str:
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value))
    if isinstance(value, Mapping):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return na_rep
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), floatfmt)
    return escape(value)


def _label(key: Any) -> str:
    """Column or index label; tuples of a MultiIndex joined by a space (``vocals SDR``)."""
    if isinstance(key, tuple):
        return " ".join(str(k) for k in key if str(k) != "")
    return "" if key is None else str(key)


def markdown_table(df: pd.DataFrame, floatfmt: str = ".2f", index: bool | None = None,
                   na_rep: str = "n/a") -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    df : DataFrame
        Any frame; MultiIndex columns (e.g. ``(target, metric)``) are joined with a space,
        so ``("vocals", "SDR")`` becomes the header ``vocals SDR``.
    floatfmt : str
        Format spec of real numbers (``".2f"``: dB with 2 decimals); integers are written
        without decimals, booleans as ``True``/``False``.
    index : bool, optional
        Include the index as the first column. Default: yes unless it is the default
        ``0..n-1`` range.
    na_rep : str
        Text of missing values (NaN, None).

    Returns
    -------
    str
        Header, alignment row (numbers right-aligned) and one line per row, ending in a
        newline. Pipes and newlines inside cells are escaped. A table holding ``inf``
        (residue, :func:`melunmix.analysis.score_frames.mark_residue`) is followed by :data:`RESIDUE_NOTE`.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"markdown_table needs a pandas DataFrame, got {type(df).__name__}")
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
    header = [escape(_label(c)) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df.iloc[:, j]) and
               not pd.api.types.is_bool_dtype(df.iloc[:, j]) for j in range(df.shape[1])]
    rows = [[format_cell(v, floatfmt, na_rep) for v in row]
            for row in df.itertuples(index=False, name=None)]
    if index:
        names = [n for n in df.index.names if n is not None]
        header = [escape(" / ".join(map(str, names)))] + header
        numeric = [False] + numeric
        rows = [[escape(_label(key))] + row for key, row in zip(df.index, rows)]
    align = ["---:" if is_number else ":---" for is_number in numeric]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    residue = any(isinstance(v, numbers.Real) and v == np.inf
                  for row in df.itertuples(index=False, name=None) for v in row)
    return "\n".join(lines) + "\n" + (f"\n{RESIDUE_NOTE}\n" if residue else "")
