"""Cells of the CSV and TSV files mrczbench writes (report tables, `compare --csv`, the
conversion manifest's .tsv), made safe to open in a spreadsheet.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets (CSV injection): a contender label or a file
name such as `=HYPERLINK(...)` would become a live formula. As the OWASP guidance on CSV
injection says, such cells are written with a leading `'`, which spreadsheets show as text;
numbers (also negative ones written as text) are left as they are."""
from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, or a text cell that a spreadsheet would run as a formula prefixed by `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _number(value):
        return "'" + value
    return value


def safe_table(frame):
    """A copy of a pandas DataFrame with every text cell made safe (safe_cell)."""
    from pandas.api.types import is_numeric_dtype
    return frame.apply(lambda column: column if is_numeric_dtype(column) else column.map(safe_cell))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
