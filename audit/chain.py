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
import json
from collections.abc import Sequence
from operator import countOf
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
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
from db.statements import count_statement

# client-supplied text is cut to the column width rather than refused: a long User-Agent
# header must not make every read of that client fail closed
_TRUNCATED = {"operation": 200, "ip": 64, "user_agent": 400, "request_id": 64}
# identity columns are ours, never the client's: too long is a bug, and it fails loudly
_LIMITED = {"actor": 300, "actor_kind": 20, "action": 40, "resource_type": 60, "query_hash": 64}

_LOCK_HEAD_SQL = (
    "SELECT seq, hash, at, clock_timestamp() AS now FROM audit_chain_head WHERE id = 1 FOR UPDATE"
)
_LOCK_HEAD = text(_LOCK_HEAD_SQL)


# the insert's parameters are one array per column, whatever the batch's size: a VALUES list
# of 17 placeholders per event took ~0.7 ms per 20-event batch to bind (SQLAlchemy and
# asyncpg, per parameter); arrays of 20 items are encoded in C
_CHAINED = ("seq", "prev_hash", "hash")  # only known under the lock; `at` is one per batch
# the element type each column's array travels as; every other column is text. `resource_ids`
# and `fields` are text[] columns: each event's list travels as one text[] literal
# (`_array_literal`), cast in the statement, since asyncpg's encoding of a 550-element list
# cost ~0.14 ms per event (measured), all of it under the lock
_ELEMENT_TYPES = {"seq": "bigint", "token_id": "uuid"}
_CASTS = {"resource_ids": "text[]", "fields": "text[]", "changes": "jsonb"}
_UNNESTED = tuple(column for column in EVENT_COLUMNS if column != "at")
_PLAIN_COLUMNS = tuple(column for column in _UNNESTED if column not in _CHAINED)
_ARRAYS = ("resource_ids", "fields")


def _value(column: str) -> str:
    """What the insert writes to `column`: the batch's `at`, or the unnested item, cast."""
    if column == "at":
        return "$1::timestamptz"
    return f"e.{column}::{_CASTS[column]}" if column in _CASTS else f"e.{column}"


def _insert_statement() -> str:
    """INSERT of a batch of events and the head move, as one statement for any batch size.

    `$1` is the batch's `at`, `$2`.. one array per column in `_UNNESTED` order, then the new
    head's seq and hash. Textual: compiling insert().values(rows).cte() took 1 ms per append
    (measured), about a third of an append, all of it under the lock.
    """
    arrays = ", ".join(
        f"${number}::{_ELEMENT_TYPES.get(column, 'text')}[]"
        for number, column in enumerate(_UNNESTED, start=2)
    )
    values = ", ".join(_value(column) for column in EVENT_COLUMNS)
    head = len(_UNNESTED) + 2
    return (
        f"WITH inserted AS (INSERT INTO audit_events ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608  # column names are constants, values are bound
        f"SELECT {values} FROM unnest({arrays}) AS e({', '.join(_UNNESTED)})) "
        f"UPDATE audit_chain_head SET seq = ${head}::bigint, hash = ${head + 1}, "
        "at = $1::timestamptz WHERE id = 1"
    )


_INSERT = _insert_statement()


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


def _bound(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The insert's arrays that do not depend on the chain head, by column."""
    columns: dict[str, list[Any]] = {
        column: [row[column] for row in rows] for column in _PLAIN_COLUMNS
    }
    for column in _ARRAYS:
        columns[column] = [_array_literal(items) for items in columns[column]]
    columns["changes"] = [
        None if changes is None else json.dumps(changes) for changes in columns["changes"]
    ]
    return columns


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


async def _lock_head(
    session: AsyncSession, driver: Any
) -> tuple[int, str, dt.datetime | None, dt.datetime]:
    """Lock the chain head and read (seq, hash, at, now), in the session's transaction.

    Straight to asyncpg (`driver`, the session's own connection) once the session has begun
    its transaction, as the insert goes after it: SQLAlchemy's own work on it was ~4 % of a
    nested read's server CPU (py-spy).
    Otherwise through the session, which begins it (a statement sent beside SQLAlchemy would
    run outside any transaction, and the session's commit would not commit it).
    """
    if driver.is_in_transaction():
        count_statement()
        seq, hash_, at, now = await driver.fetchrow(_LOCK_HEAD_SQL)
    else:
        seq, hash_, at, now = (await session.execute(_LOCK_HEAD)).one()
    return seq, hash_, at, now


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
    columns = _bound(rows)
    try:
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        head_seq, head_hash, head_at, now = await _lock_head(session, driver)
        # one timestamp per batch, never earlier than the head's: `at` grows with `seq`, so a
        # month boundary cuts the chain into a prefix and a suffix (what archiving relies on)
        stamp: dt.datetime = at or now
        if head_at is not None and head_at > stamp:
            stamp = head_at
        await ensure_partition_for(session, stamp)
        stamp_text, prev_hash = format_at(stamp), head_hash
        columns["seq"] = list(range(head_seq + 1, head_seq + 1 + len(rows)))
        columns["prev_hash"], columns["hash"] = [], []
        for template in templates:
            columns["prev_hash"].append(prev_hash)
            prev_hash = template.hash(stamp_text, prev_hash)
            columns["hash"].append(prev_hash)
        count_statement()
        await driver.execute(
            _INSERT,
            stamp,
            *(columns[column] for column in _UNNESTED),
            columns["seq"][-1],
            prev_hash,
        )
    except (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise AuditWriteError(f"audit events could not be written: {error}") from error
