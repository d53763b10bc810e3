"""Page sizes and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from resolvers.errors import BadUserInputError
from schema.node import MAX_BIGINT, integer_pk

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


def argument_given(info: Any, name: str) -> bool:
    """Whether the client wrote argument `name` on this field (a default is not written);
    `info` is Strawberry's Info or graphql-core's resolve info."""
    raw = getattr(info, "_raw_info", info)
    return any(arg.name.value == name for arg in raw.field_nodes[0].arguments or ())


def backward_page(
    first: int | None, after: str | None, last: int | None, before: str | None, *, first_given: bool
) -> int | None:
    """The page size of a backward page (`last`/`before`), or None for a forward one; mixing
    the two directions is refused, since which one wins would be a guess."""
    if last is None and before is None:
        return None
    if after is not None or first_given:
        raise BadUserInputError(
            "page forward (`first`/`after`) or backward (`last`/`before`), not both",
            argument="last" if last is not None else "before",
        )
    return checked_first(last, argument="last")


def encode_cursor(sort_value: Any, pk: int) -> str:
    """`<tag>:<value>:<pk>`, base64url: cheap enough to make for every edge of a page."""
    if sort_value is None:
        raw = f"n::{pk}"
    elif isinstance(sort_value, bool):
        raise TypeError("no cursor for booleans")
    elif isinstance(sort_value, int):
        raw = f"i:{sort_value}:{pk}"
    elif isinstance(sort_value, datetime):
        raw = f"t:{sort_value.isoformat()}:{pk}"
    elif isinstance(sort_value, Decimal):
        raw = f"d:{sort_value}:{pk}"
    else:
        raw = f"s:{sort_value}:{pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


CURSOR_TYPES: dict[str, type] = {"i": int, "t": datetime, "d": Decimal, "s": str}


def decode_cursor(
    cursor: str, *, argument: str = "after", expect: type | None = None
) -> tuple[Any, int]:
    """(sort value, primary key) of a cursor made by `encode_cursor`.

    `expect` is the type the ordering's column holds: a cursor made for another ordering (or
    forged) is refused here rather than compared with a column of another type in SQL.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, rest = raw.split(":", 1)
        text, pk_text = rest.rsplit(":", 1)
        key = integer_pk(pk_text)
        if key is None or "\x00" in raw:
            raise ValueError("cursor key")
        pk = key
        value: Any
        if tag == "n" and text == "":
            value = None
        elif tag == "i":
            if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit():
                raise ValueError("cursor value")
            value = int(text)
            if abs(value) > MAX_BIGINT:
                raise ValueError("cursor value")
        elif tag == "t":
            value = datetime.fromisoformat(text)
        elif tag == "d":
            value = Decimal(text)
        elif tag == "s":
            value = text
        else:
            raise ValueError("cursor tag")
        if expect is not None and value is not None and not isinstance(value, expect):
            raise ValueError("cursor of another ordering")
        return value, pk
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError) as exc:
        raise BadUserInputError("malformed cursor", argument=argument) from exc
