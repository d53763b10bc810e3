"""Page sizes and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from resolvers.errors import BadUserInputError

MAX_PAGE_SIZE = 500


def checked_first(first: int | None, *, argument: str = "first", default: int = 50) -> int:
    """A page size within bounds; a larger one is an error, never a silent cap."""
    if first is None:
        return default
    if first < 0:
        raise BadUserInputError(f"`{argument}` must not be negative", argument=argument)
    if first > MAX_PAGE_SIZE:
        raise BadUserInputError(f"`{argument}` may be at most {MAX_PAGE_SIZE}", argument=argument)
    return first


def encode_cursor(sort_value: Any, pk: int) -> str:
    if isinstance(sort_value, datetime):
        value: Any = ["t", sort_value.isoformat()]
    elif isinstance(sort_value, Decimal):
        value = ["d", str(sort_value)]
    else:
        value = ["v", sort_value]
    raw = json.dumps([value, pk], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, argument: str = "after") -> tuple[Any, int]:
    """(sort value, primary key) of a cursor made by `encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (tag, value), pk = json.loads(raw)
        if not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError("cursor key")
        if tag == "t":
            return datetime.fromisoformat(value), pk
        if tag == "d":
            return Decimal(value), pk
        if tag == "v" and (value is None or isinstance(value, str | int)):
            return value, pk
        raise ValueError("cursor tag")
    except (ValueError, TypeError, binascii.Error, InvalidOperation, json.JSONDecodeError) as exc:
        raise BadUserInputError("malformed cursor", argument=argument) from exc
