"""Cell values on their way into and out of spreadsheets.

A spreadsheet treats a cell starting with `=`, `+`, `-` or `@` as a formula, and some also act
on a leading tab or carriage return (OWASP, "CSV Injection"). An exported text cell starting
with one of them gets a leading apostrophe, the convention Excel itself shows for "text, not a
formula"; an import strips that apostrophe again, so an export imports back unchanged.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"
LIST_SEPARATOR = ", "


def neutralise(text: str) -> str:
    """The text as a cell that no spreadsheet evaluates."""
    return TEXT_MARK + text if text.startswith(FORMULA_TRIGGERS) else text


def restore(text: str) -> str:
    """Undo `neutralise`: an apostrophe guarding a formula character is dropped."""
    if text.startswith(TEXT_MARK) and text[1:2] and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def as_text(value: Any) -> str | None:
    """The text form of a stored value, as a CSV cell shows it (before neutralising)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if type(value) is str else as_text(value)
    assert text is not None
    return TEXT_MARK + text if text.startswith(FORMULA_TRIGGERS) else text


def xlsx_cell(value: Any) -> Any:
    """Numbers and booleans stay typed; everything else is neutralised text.

    Datetimes go out as ISO text: Excel has no time zones, and openpyxl refuses aware values.
    """
    if value is None:
        return None
    if type(value) is str:
        return TEXT_MARK + value if value.startswith(FORMULA_TRIGGERS) else value
    if isinstance(value, bool | int | Decimal | float):
        return value
    text = as_text(value)
    return None if text is None else neutralise(text)


def import_cell(value: Any) -> str | None:
    """A spreadsheet cell as the text the validators expect; None for an empty cell.

    XLSX hands numbers and dates: a phone typed as 13800138000 arrives as an int, 2.0 as a
    float; both become the text a person would have typed.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    text = restore(str(value))
    return text if text.strip() else None
