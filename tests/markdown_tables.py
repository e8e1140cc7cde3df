"""Reading back the Markdown tables the package writes (tests of base/markdown and study/report)."""

import re


def parse_markdown_table(text: str) -> list[list[str]]:
    """Rows of cells of a Markdown table, escapes undone."""
    rows = []
    for line in text.strip().splitlines():
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([c.strip().replace("\\|", "|").replace("\\\\", "\\") for c in cells])
    return rows
