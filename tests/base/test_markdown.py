"""melunmix.base.markdown: the GitHub-flavoured tables of the study's files, the REPORT and
`melunmix score`, read back with an independent parser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from melunmix.base.markdown import markdown_table
from melunmix.base.names import RESIDUE_NOTE

from markdown_tables import parse_markdown_table


def test_markdown_table_round_trips_the_values():
    df = pd.DataFrame({"SDR": [1.776, -0.5, np.nan], "epochs": [20, 3, 1],
                       "note": ["a|b", "plain", "x"], "best": [True, False, True]},
                      index=pd.Index(["openunmix", "melunmix", "MIX"], name="method"))
    rows = parse_markdown_table(markdown_table(df, floatfmt=".2f"))
    assert rows[0] == ["method", "SDR", "epochs", "note", "best"]
    assert rows[1] == [":---", "---:", "---:", ":---", ":---"]
    body = rows[2:]
    assert [r[0] for r in body] == list(df.index)
    parsed_sdr = [np.nan if r[1] == "n/a" else float(r[1]) for r in body]
    np.testing.assert_array_equal(parsed_sdr, df["SDR"].round(2))
    assert [int(r[2]) for r in body] == df["epochs"].tolist()
    assert [r[3] for r in body] == df["note"].tolist()
    assert [r[4] == "True" for r in body] == df["best"].tolist()


def test_markdown_table_joins_multiindex_columns_and_skips_range_index():
    wide = pd.DataFrame([[1.234, 5.678]],
                        columns=pd.MultiIndex.from_tuples([("vocals", "SDR"), ("vocals", "SIR")]))
    rows = parse_markdown_table(markdown_table(wide, floatfmt=".1f"))
    assert rows[0] == ["vocals SDR", "vocals SIR"]
    assert rows[2] == ["1.2", "5.7"]
    with pytest.raises(ValueError, match="DataFrame"):
        markdown_table([[1, 2]])


def test_a_table_holding_residue_says_so_below_it():
    table = pd.DataFrame({"SAR": [12.5, np.inf]}, index=pd.Index(["IRM1", "MIX"], name="method"))
    text = markdown_table(table)
    assert parse_markdown_table(text.split("\n\n")[0])[3] == ["MIX", "inf"]
    assert text.endswith(f"\n{RESIDUE_NOTE}\n")
    assert RESIDUE_NOTE not in markdown_table(table.iloc[:1])
