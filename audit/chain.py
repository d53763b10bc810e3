"""Appending to the hash chain inside the caller's transaction.

Design (chosen by measurement, see bench/audit_bench.py and the commit that introduced it):
every append encodes its events (all but seq, time and hashes) first, then locks the single
row of `audit_chain_head` with `SELECT … FOR UPDATE`, computes the hashes in Python, and
inserts the events and moves the head in one statement. `audit_events` carries no index on
`resource_ids`: the resource index is filled after the commit (`audit.indexer`). The lock is
the chain's only serialisation point and is held from that first statement to the caller's
commit — so callers append *last*, right before committing. A request's read event therefore
holds it for two round trips and a commit; a rollback releases it and undoes the head, so
sequence numbers stay gapless and the chain can never fork.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from operator import countOf
from typing import Any

import orjson
from sqlalchemy import DateTime, Text, TextClause, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from audit.canonical import (
    CanonicalEncodingError,
    CanonicalTemplate,
    format_at,
    normalise_changes,
)
from audit.events import AuditRecord
from audit.partitions import ensure_partition_for
from db.models.audit import EVENT_COLUMNS

# client-supplied text is cut to the column width rather than refused: a long User-Agent
# header must not make every read of that client fail closed
_TRUNCATED = {"operation": 200, "ip": 64, "user_agent": 400, "request_id": 64}
# identity columns are ours, never the client's: too long is a bug, and it fails loudly
_LIMITED = {"actor": 300, "actor_kind": 20, "action": 40, "resource_type": 60, "query_hash": 64}

_LOCK_HEAD = text(
    "SELECT seq, hash, at, clock_timestamp() AS now FROM audit_chain_head WHERE id = 1 FOR UPDATE"
)


_COLUMNS = EVENT_COLUMNS
# arrays travel as one text[] literal each (`_array_literal`), cast in the statement: asyncpg's
# encoding of a 550-element list cost ~0.14 ms per event (measured), all of it under the lock
_ARRAYS = ("resource_ids", "fields")
_TYPES: dict[str, Any] = {
    "at": DateTime(timezone=True),
    "token_id": Uuid(),
    "resource_ids": Text(),
    "fields": Text(),
    "changes": JSONB(none_as_null=True),
}
# what is only known under the lock; every other parameter is bound before it is taken
_CHAINED = ("seq", "at", "prev_hash", "hash")
_PLAIN_COLUMNS = tuple(
    column for column in _COLUMNS if column not in _CHAINED and column not in _ARRAYS
)


@functools.lru_cache(maxsize=64)
def _insert_statement(count: int) -> TextClause:
    """INSERT of `count` events and the head move, as one statement.

    Textual and cached per batch size: compiling the equivalent insert().values(rows).cte()
    took 1 ms per append (measured), about a third of an append, all of it under the lock.
    """

    def placeholder(column: str, index: int) -> str:
        name = f":{column}_{index}"
        return f"CAST({name} AS text[])" if column in _ARRAYS else name

    values = ", ".join(
        "(" + ", ".join(placeholder(column, index) for column in _COLUMNS) + ")"
        for index in range(count)
    )
    statement = text(
        f"WITH inserted AS (INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES {values}) "  # noqa: S608  # column names are constants, values are bound
        "UPDATE audit_chain_head SET seq = :head_seq, hash = :head_hash, at = :head_at "
        "WHERE id = 1"
    )
    binds = [
        bindparam(f"{column}_{index}", type_=type_)
        for index in range(count)
        for column, type_ in _TYPES.items()
    ]
    return statement.bindparams(*binds, bindparam("head_at", type_=DateTime(timezone=True)))


class AuditWriteError(RuntimeError):
    """The events could not be written; the caller must roll back and refuse (fail closed)."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _strings(items: Any) -> list[str]:
    """`[str(item) for item in items]`, without calling `str` when every item is a str already.

    The ids come as strings (api/graphql); calling `str` on each of 550 cost ~17 µs, counting
    their types in C ~5 µs. Exact `str` only: a subclass may write itself otherwise.
    """
    if type(items) is list and countOf(map(type, items), str) == len(items):
        return items.copy()
    return list(map(str, items))


def _once_each(ids: list[str]) -> list[str]:
    """`ids` with repeats dropped, first occurrences in order.

    An event names a record once however often its writer listed it: the resource indexer
    (`audit.indexer`) relies on it instead of deduplicating every event's ids itself, which
    cost a third of its batch. A set of 550 ids costs ~10 µs here.
    """
    return ids if len(set(ids)) == len(ids) else list(dict.fromkeys(ids))


def prepare_row(record: AuditRecord) -> dict[str, Any]:
    """The stored, hashable form of a record (without seq, at and hashes); validates it."""
    row: dict[str, Any] = {
        "actor": str(record.actor),
        "actor_kind": str(record.actor_kind),
        "action": str(record.action),
        "resource_type": _text(record.resource_type),
        "resource_ids": _once_each(_strings(record.resource_ids)),
        "fields": _strings(record.fields),
        "changes": normalise_changes(record.changes),
        "operation": _text(record.operation),
        "query_hash": _text(record.query_hash),
        "ip": _text(record.ip),
        "user_agent": _text(record.user_agent),
        "request_id": _text(record.request_id),
        "token_id": record.token_id,
    }
    if isinstance(record.resource_ids, str) or isinstance(record.fields, str):
        raise AuditWriteError("resource_ids and fields are sequences of strings, not a string")
    if row["changes"] is not None and not isinstance(row["changes"], dict):
        raise AuditWriteError("changes must be a mapping of field name to old/new values")
    for name, limit in _TRUNCATED.items():
        if row[name] is not None:
            row[name] = row[name][:limit]
    for name, limit in _LIMITED.items():
        if row[name] is not None and len(row[name]) > limit:
            raise AuditWriteError(f"audit {name} longer than {limit} characters")
    if not row["actor"] or not row["action"] or not row["actor_kind"]:
        raise AuditWriteError("an audit event needs an actor, an actor kind and an action")
    texts = [value for value in row.values() if isinstance(value, str)]
    # one scan of one joined string: 550 ids checked one by one cost ~50 µs
    if "\x00" in "".join(texts + row["resource_ids"] + row["fields"]):
        raise AuditWriteError("NUL characters cannot be recorded")
    return row


def _array_literal(items: list[str]) -> str:
    """`items` as a PostgreSQL text[] literal: every element quoted, `\\` and `"` escaped.

    orjson's JSON array of strings is that literal, brackets aside, unless it escaped
    something: `\\` and `"` are escaped alike, but JSON also escapes controls, which the array
    would read as the letter after the backslash. 2.5 µs for 550 ids instead of 10 µs. Else
    `items` hold no NUL (`prepare_row` refuses it), so NUL can stand in for the separators
    while the whole is escaped in two passes instead of element by element.
    """
    try:
        encoded = orjson.dumps(items)
    except orjson.JSONEncodeError:  # a lone surrogate: PostgreSQL refuses it, not this
        encoded = b"\\"
    if b"\\" not in encoded:
        return "{" + encoded[1:-1].decode("utf-8") + "}"
    body = "\x00".join(items).replace("\\", "\\\\").replace('"', '\\"')
    return '{"' + body.replace("\x00", '","') + '"}'


@functools.lru_cache(maxsize=64)
def _parameter_names(index: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of event `index`'s parameters bound before the lock: columns, then arrays."""
    return (
        tuple(f"{column}_{index}" for column in _PLAIN_COLUMNS),
        tuple(f"{column}_{index}" for column in _ARRAYS),
    )


def _bound(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The insert's parameters that do not depend on the chain head.

    Names made once per position, values fetched in C: formatting 17 names per event and
    testing each column cost ~3 µs an event.
    """
    parameters: dict[str, Any] = {}
    for index, row in enumerate(rows):
        names, arrays = _parameter_names(index)
        parameters.update(zip(names, map(row.__getitem__, _PLAIN_COLUMNS), strict=True))
        parameters.update(
            zip(arrays, (_array_literal(row[column]) for column in _ARRAYS), strict=True)
        )
    return parameters


async def append_events(session: AsyncSession, records: Sequence[AuditRecord]) -> None:
    """Write `records` as the next links of the chain, in the caller's open transaction.

    Never commits: the events commit or roll back with the caller's change. Call it last before
    the commit, because from here to the commit every other appender waits. Raises
    `AuditWriteError` when the events cannot be written; the caller then rolls back and
    refuses to serve. The transaction must be READ COMMITTED (the default): under REPEATABLE
    READ a concurrent append makes the head lock fail with a serialisation error.
    """
    await _append(session, records, at=None)


async def append_events_at(
    session: AsyncSession, records: Sequence[AuditRecord], at: dt.datetime
) -> None:
    """Like `append_events`, stamped `at` — for importing history, seeding and benches.

    `at` can only move forward: an earlier time than the chain head's is raised to it, so a
    backdated event cannot slip into an archived month or before an existing entry.
    """
    if at.tzinfo is None:
        raise AuditWriteError("audit timestamps must be timezone-aware")
    await _append(session, records, at=at)


async def _append(
    session: AsyncSession, records: Sequence[AuditRecord], *, at: dt.datetime | None
) -> None:
    if not records:
        return
    # everything but seq, at and the hashes is encoded before the head is locked: from the
    # lock to the commit every other appender waits
    try:
        rows = [prepare_row(record) for record in records]
        templates = [CanonicalTemplate(row) for row in rows]
    except CanonicalEncodingError as error:
        raise AuditWriteError(str(error)) from error
    parameters = _bound(rows)
    statement = _insert_statement(len(rows))
    try:
        head = (await session.execute(_LOCK_HEAD)).one()
        # one timestamp per batch, never earlier than the head's: `at` grows with `seq`, so a
        # month boundary cuts the chain into a prefix and a suffix (what archiving relies on)
        stamp: dt.datetime = at or head.now
        if head.at is not None and head.at > stamp:
            stamp = head.at
        await ensure_partition_for(session, stamp)
        seq, prev_hash, stamp_text = head.seq, head.hash, format_at(stamp)
        for index, template in enumerate(templates):
            seq += 1
            parameters[f"seq_{index}"] = seq
            parameters[f"at_{index}"] = stamp
            parameters[f"prev_hash_{index}"] = prev_hash
            parameters[f"hash_{index}"] = prev_hash = template.hash(stamp_text, prev_hash)
        parameters.update(head_seq=seq, head_hash=prev_hash, head_at=stamp)
        await session.execute(statement, parameters)
    except SQLAlchemyError as error:
        raise AuditWriteError(f"audit events could not be written: {error}") from error
