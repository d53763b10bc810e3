"""The Relay `Node` interface, global ids and generic connections."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Generic, TypeVar

import strawberry

NodeType = TypeVar("NodeType")


class InvalidGlobalIdError(ValueError):
    """The id is not one this API issued."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def to_global_id(type_name: str, pk: int | str) -> str:
    # binascii directly: this runs for every object of every page
    raw = binascii.b2a_base64(f"{type_name}:{pk}".encode(), newline=False)
    return raw.translate(_URLSAFE).rstrip(b"=").decode()


def from_global_id(global_id: str) -> tuple[str, str]:
    """(type name, primary key) of an id made by `to_global_id`, and only in the form it makes:
    another spelling of the same bytes (padding, the standard alphabet) is not an id we issued."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidGlobalIdError(global_id) from exc
    type_name, sep, pk = raw.partition(":")
    if not sep or not type_name or not pk or to_global_id(type_name, pk) != global_id:
        raise InvalidGlobalIdError(global_id)
    return type_name, pk


MAX_BIGINT = 2**63 - 1
# ASCII digits only: str.isdigit() and int() also take "²", "３" and "٣", which made
# superscripts an INTERNAL error and fullwidth digits aliases of real ids
_INTEGER_KEY = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)


def integer_pk(text: str) -> int | None:
    """The bigint key `text` spells in canonical form (ASCII digits, no leading zero, within
    PostgreSQL's BIGINT), or None."""
    if _INTEGER_KEY.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_BIGINT else None


@strawberry.interface(description="An object with a global id; `node(id)` fetches any of them.")
class Node:
    id: strawberry.ID


@strawberry.type(
    description="Relay's page info. Forward pages (`first`/`after`) answer hasPreviousPage "
    "false and backward pages (`last`/`before`) compute both, as Relay allows."
)
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = None
    has_previous_page: bool = False
    start_cursor: str | None = None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type(description="A page of results, Relay style; `totalCount` counts every page.")
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]]
    nodes: list[NodeType]
    page_info: PageInfo
    total_count: int | None = None
