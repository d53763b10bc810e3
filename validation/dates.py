"""Dates and times as forms, GraphQL scalars and spreadsheets hand them to us."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from validation.errors import FieldError, Rule
from validation.text import require_text

# naive times from imports are read as China time; the offset has had no DST since 1991
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
_DATE_SEPARATORS = re.compile(r"[/.年月]")


def normalise_date(value: Any, *, field: str) -> date:
    """A calendar date from a `date`, a midnight `datetime` or text "2026-12-31", "2026/12/31",
    "2026年12月31日"."""
    if isinstance(value, datetime):
        if value.time() != time(0) or value.tzinfo is not None:
            raise FieldError(field, Rule.TYPE, "expected a date, got a date and time")
        found = value.date()
    elif isinstance(value, date):
        found = value
    else:
        text = unicodedata.normalize("NFKC", require_text(value, field)).strip().rstrip("日")
        text = _DATE_SEPARATORS.sub("-", text)
        if not text:
            raise FieldError(field, Rule.REQUIRED, "must not be blank")
        parts = text.split("-")
        if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
            raise FieldError(field, Rule.FORMAT, "must be a date like 2026-12-31")
        if len(parts[0]) != 4 or len(parts[1]) > 2 or len(parts[2]) > 2:
            raise FieldError(field, Rule.FORMAT, "must be a date like 2026-12-31")
        try:
            found = date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            raise FieldError(field, Rule.FORMAT, f"{text} is not a calendar date") from None
    if not EARLIEST <= found <= LATEST:
        raise FieldError(field, Rule.RANGE, f"must be between {EARLIEST} and {LATEST}")
    return found


def normalise_datetime(value: Any, *, field: str) -> datetime:
    """An aware `datetime` in UTC; naive values (spreadsheets) are read as China time."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        raise FieldError(field, Rule.TYPE, "expected a date and time, got a date")
    else:
        text = unicodedata.normalize("NFKC", require_text(value, field)).strip()
        if not text:
            raise FieldError(field, Rule.REQUIRED, "must not be blank")
        try:
            found = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(
                field, Rule.FORMAT, "must be an ISO 8601 time like 2026-11-23T10:00:00+08:00"
            ) from None
    if found.tzinfo is None or found.utcoffset() is None:
        found = found.replace(tzinfo=CHINA_TIME)
    if not EARLIEST <= found.date() <= LATEST:
        raise FieldError(field, Rule.RANGE, f"must be between {EARLIEST} and {LATEST}")
    return found.astimezone(UTC)
