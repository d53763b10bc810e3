"""Appending to the hash chain inside the caller's transaction.

Design (chosen by measurement, see bench/audit_bench.py and the commits that introduced it):
every append encodes its events (all but seq, time and hashes) first, then sends one
statement that locks the single row of `audit_chain_head` (`SELECT … FOR UPDATE`), stamps
the events, hashes them (sha256 over each event's canonical bytes, chained), inserts them and
moves the head. `audit_events` carries no index on `resource_ids`: the resource index is
filled after the commit (`audit.indexer`). The lock is the chain's only serialisation point
and is held from that statement to the caller's commit — so callers append *last*, right
before committing. A batch of read events sent in autocommit holds it for that one statement;
a rollback releases it and undoes the head, so sequence numbers stay gapless and the chain can
never fork. `audit.verify` recomputes every hash in Python from the stored rows.

Early release (autocommit appends: the read-audit batcher's). A synchronous commit holds every lock
until its WAL is flushed: on this machine an fsync takes ~3.5 ms, so appenders that each commit
under the head lock queue on one fsync after another (~250 commits/s fleet-wide, ~1 000 events/s
for nested reads, measured). So an autocommit append commits with `synchronous_commit` off for its
own transaction only (set inside the statement), which releases the head as soon as the commit
record is written, and then waits for durability outside the lock with a statement that writes a
WAL record of its own and commits synchronously (`_FLUSH`): WAL is flushed in order, so when that
flush returns the append is on disk. The caller returns only after that, so a read is never
answered before its events are durable; the flushes of concurrent appenders are merged by
PostgreSQL's own group commit instead of serialised. The chain order is still the head's lock order
and the commit order (WAL order), so a crash can lose only a suffix of commits that nobody was
answered for, never a link in the middle: no gap, no fork. Anyone who saw such an event was
answered only after a flush of their own, which covers it (an event's commit record precedes its
visibility in WAL). A write's events commit in the write's own transaction, synchronously, as
before: that transaction's commit is the caller's, so its durability is not this module's to defer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from operator import countOf
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from audit.canonical import (
    CanonicalEncodingError,
    CanonicalTemplate,
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

# begins a session's transaction when nothing else has (see `_begun`)
_LOCK_HEAD = text("SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE")

# the statement's parameters are one array per column, whatever the batch's size: a VALUES
# list of 17 placeholders per event took ~0.7 ms per 20-event batch to bind (SQLAlchemy and
# asyncpg, per parameter); arrays of 20 items are encoded in C. `resource_ids` and `fields`
# are text[] columns: each event's list travels as one text[] literal (`_array_literal`),
# cast in the statement, since asyncpg's encoding of a 550-element list cost ~0.14 ms per
# event (measured). `before`, `between` and `after` are each event's canonical bytes around
# its `at` and `prev_hash` (`CanonicalTemplate.parts`)

# what the statement makes under the lock, from the head (s), the events (e) and the chain (c)
_CHAINED_VALUES = {
    "seq": "s.seq + e.n",
    "at": "s.stamp",
    "prev_hash": "c.prev_hash",
    "hash": "c.hash",
}
_CHAINED = tuple(_CHAINED_VALUES)
_PLAIN_COLUMNS = tuple(column for column in EVENT_COLUMNS if column not in _CHAINED)
_UNNESTED = (*_PLAIN_COLUMNS, "before", "between", "after")
_ELEMENT_TYPES = {
    "token_id": "uuid",
    "before": "bytea",
    "between": "bytea",
    "after": "bytea",
    "owner": "bigint",  # a guarded append's (`Guard.owners`)
}
_CASTS = {"resource_ids": "text[]", "fields": "text[]", "changes": "jsonb"}
_ARRAYS = ("resource_ids", "fields")


def _value(column: str) -> str:
    """What the insert writes to `column`: made under the lock, or the unnested item, cast."""
    if column in _CHAINED_VALUES:
        return _CHAINED_VALUES[column]
    return f"e.{column}::{_CASTS[column]}" if column in _CASTS else f"e.{column}"


@dataclass(frozen=True, slots=True)
class Guard:
    """Conditions that must still hold when the events are appended, checked by the append.

    Why in the append: the read-audit batch confirmed its requests' user rows with a statement
    of its own before appending, a round trip per batch (~0.3 ms of every read at concurrency
    1, measured). `sql` is a SELECT of one column, the 1-based numbers of the `claims` that
    hold; it reads the claims from `{claims}`, a jsonb array of them, and runs in the append's
    own statement (so on its snapshot, taken when the head is asked for: never earlier than a
    check sent before it). `owners[i]` is the claim record `i` depends on (None: none), and a
    record whose claim does not hold is not written.
    """

    sql: str
    claims: Sequence[Any]
    owners: Sequence[int | None]


def _append_statement(*, release_early: bool = False, guard: str | None = None) -> str:
    """Lock the head, stamp, hash, insert and move the head: a batch in one statement.

    `$1` is the time asked for (NULL: the database's clock), then one array per column in
    `_UNNESTED` order. The stamp is never earlier than the head's; the hashes are sha256 over
    each event's canonical bytes with its `at` and `prev_hash` spliced in, chained by a
    recursive CTE: `audit.verify` recomputes exactly these in Python. One round trip holds the
    lock for no longer than the statement (plus the caller's commit): hashing in Python needed
    the head first, so the lock was held across two round trips. Textual: compiling the
    equivalent insert().values(rows).cte() took 1 ms per append (measured).

    `release_early`: the statement also turns `synchronous_commit` off for its own transaction
    (`set_config(..., true)`, evaluated in the materialised CTE before that transaction
    commits); only for a statement sent in autocommit, see `_append_released`.

    `guard`: a `Guard.sql`; the events come with one more array, each one's owner, and the
    claims after it as jsonb. Events whose owner is not among the claims that hold are dropped
    before they are numbered, and the statement returns those that hold after the stamp.
    """
    released = (
        ", set_config('synchronous_commit', 'off', true) AS released" if release_early else ""
    )
    unnested = (*_UNNESTED, "owner") if guard else _UNNESTED
    arrays = ", ".join(
        f"${number}::{_ELEMENT_TYPES.get(column, 'text')}[]"
        for number, column in enumerate(unnested, start=2)
    )
    values = ", ".join(_value(column) for column in EVENT_COLUMNS)
    held_cte, returned = "", ""
    # the events to chain, numbered from 1 in the order given
    events = f"""e AS MATERIALIZED (
    SELECT * FROM unnest({arrays}) WITH ORDINALITY AS e({", ".join(unnested)}, n)
)"""  # noqa: S608  # column names are constants, values are bound
    if guard is not None:
        claims = f"${len(unnested) + 2}::jsonb"
        held_cte = f"held (n) AS MATERIALIZED ({guard.format(claims=claims)}), "
        # numbered after those whose claim fails are dropped: the chain gets no gap
        events = f"""given AS MATERIALIZED (
    SELECT * FROM unnest({arrays}) WITH ORDINALITY AS g({", ".join(unnested)}, place)
), e AS MATERIALIZED (
    SELECT given.*, row_number() OVER (ORDER BY given.place) AS n FROM given
    WHERE given.owner IS NULL OR given.owner IN (SELECT held.n FROM held)
)"""  # noqa: S608  # column names are constants, values are bound
        returned = ", ARRAY(SELECT held.n FROM held) AS held"
    return f"""WITH RECURSIVE {held_cte}stamped AS MATERIALIZED (
    SELECT seq, hash, stamp{released},
        convert_to('"' || to_char(stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            || '"', 'UTF8') AS at_json
    FROM (SELECT seq, hash, greatest(coalesce($1::timestamptz, clock_timestamp()), at) AS stamp
          FROM audit_chain_head WHERE id = 1 FOR UPDATE) head
), {events}, c (n, prev_hash, hash) AS (
    SELECT 0::bigint, hash::text, hash::text FROM stamped
    UNION ALL
    SELECT e.n, c.hash, encode(sha256(e.before || s.at_json || e.between
        || convert_to('"' || c.hash || '"', 'UTF8') || e.after), 'hex')
    FROM c JOIN e ON e.n = c.n + 1 CROSS JOIN stamped s
), inserted AS (
    INSERT INTO audit_events ({", ".join(EVENT_COLUMNS)})
    SELECT {values} FROM e JOIN c ON c.n = e.n CROSS JOIN stamped s
)
UPDATE audit_chain_head h
SET seq = s.seq + (SELECT count(*) FROM e), at = s.stamp,
    hash = (SELECT c.hash FROM c ORDER BY c.n DESC LIMIT 1)
FROM stamped s WHERE h.id = 1
RETURNING s.stamp{returned}"""  # noqa: S608  # column names are constants, values are bound


_APPEND = _append_statement()
_APPEND_RELEASED = _append_statement(release_early=True)
_GUARDED: dict[str, str] = {}  # Guard.sql -> its released append (a handful: one per caller)
# A transaction whose commit is flushed (synchronous commit), and WAL is flushed in order, so
# every commit before it is durable when it returns. It must write a WAL record of its own:
# PostgreSQL commits a transaction that wrote none asynchronously whatever the setting (an xid
# alone, `SELECT pg_current_xact_id()`, returned in 0.02 ms, before any fsync: measured), and a
# transactional logical message is the smallest record there is, with no row to lock (so
# concurrent flushers share one fsync) and no privilege beyond the connection's.
_FLUSH = "SELECT pg_logical_emit_message(true, 'dossier.audit.flush', '')"


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


def _bound(rows: list[dict[str, Any]], templates: list[CanonicalTemplate]) -> list[list[Any]]:
    """The statement's arrays after `$1`, in `_UNNESTED` order: one item per event."""
    columns: dict[str, list[Any]] = {
        column: [row[column] for row in rows] for column in _PLAIN_COLUMNS
    }
    for column in _ARRAYS:
        columns[column] = [_array_literal(items) for items in columns[column]]
    columns["changes"] = [
        None if changes is None else json.dumps(changes) for changes in columns["changes"]
    ]
    parts = [template.parts for template in templates]
    for index, column in enumerate(("before", "between", "after")):
        columns[column] = [part[index] for part in parts]
    return [columns[column] for column in _UNNESTED]


async def append_events(
    executor: AsyncSession | AsyncConnection,
    records: Sequence[AuditRecord],
    *,
    guard: Guard | None = None,
) -> frozenset[int]:
    """Write `records` as the next links of the chain, in the caller's open transaction.

    Never commits: the events commit or roll back with the caller's change. Call it last before
    the commit, because from here to the commit every other appender waits. Raises
    `AuditWriteError` when the events cannot be written; the caller then rolls back and
    refuses to serve. The transaction must be READ COMMITTED (the default): under REPEATABLE
    READ a concurrent append makes the head lock fail with a serialisation error.

    On a connection outside any transaction (AUTOCOMMIT, as the read-audit batcher's) the one
    statement is its own transaction, committed with the head released early (see the module
    docstring): the events are committed and flushed to disk when this returns.

    `guard` (autocommit only): write just the records whose claim holds (`Guard`); returns
    the numbers of the claims that held (without a guard: none). Records are validated before
    anything is sent, so one that cannot be written fails the whole call, as without.
    """
    if guard is not None and len(guard.owners) != len(records):
        raise AuditWriteError("a guarded append names one owner (or None) per record")
    return frozenset(await _append(executor, records, at=None, guard=guard) or ())


async def append_events_at(
    session: AsyncSession, records: Sequence[AuditRecord], at: dt.datetime
) -> None:
    """Like `append_events`, stamped `at` — for importing history, seeding and benches.

    `at` can only move forward: an earlier time than the chain head's is raised to it, so a
    backdated event cannot slip into an archived month or before an existing entry.
    """
    if at.tzinfo is None:
        raise AuditWriteError("audit timestamps must be timezone-aware")
    if at.year < 1000:  # `format_at` writes no leading zeros there, PostgreSQL's to_char does
        raise AuditWriteError("audit timestamps before the year 1000 are not supported")
    await _append(session, records, at=at)


async def _driver(connection: AsyncConnection) -> Any:
    """The asyncpg connection under SQLAlchemy's, for the one statement sent straight to it."""
    return (await connection.get_raw_connection()).driver_connection


async def _begun(session: AsyncSession, driver: Any) -> None:
    """Make sure the session's transaction has begun before sending beside SQLAlchemy.

    A statement sent straight to asyncpg before the session's first one would run outside any
    transaction, and the session's commit (or rollback) would not cover it. Callers that have
    already written (the usual case) have begun; otherwise the head is locked through the
    session, which begins it.
    """
    if not driver.is_in_transaction():
        await session.execute(_LOCK_HEAD)


async def _append(
    executor: AsyncSession | AsyncConnection,
    records: Sequence[AuditRecord],
    *,
    at: dt.datetime | None,
    release_early: bool = True,
    guard: Guard | None = None,
) -> list[int] | None:
    """`release_early=False` keeps the head locked through the fsync of an autocommit append
    too: the strategy before early release, kept for bench/audit_bench.py's comparison.
    Returns the claims that held, with a `guard` (which needs an autocommit connection)."""
    if not records and guard is None:
        return None
    # everything but seq, at and the hashes is encoded before the head is locked: from the
    # lock to the commit every other appender waits
    try:
        rows = [prepare_row(record) for record in records]
        templates = [CanonicalTemplate(row) for row in rows]
    except CanonicalEncodingError as error:
        raise AuditWriteError(str(error)) from error
    arrays = _bound(rows, templates)
    try:
        if isinstance(executor, AsyncSession):
            driver = await _driver(await executor.connection())
            await _begun(executor, driver)
        else:
            driver = await _driver(executor)
        await ensure_partition_for(executor, at or dt.datetime.now(dt.UTC))
        released = release_early and not driver.is_in_transaction()
        held: list[int] | None = None
        count_statement()
        if guard is not None:
            if not released:
                raise AuditWriteError("a guarded append is its own transaction (autocommit)")
            statement = _GUARDED.get(guard.sql)
            if statement is None:
                statement = _GUARDED[guard.sql] = _append_statement(
                    release_early=True, guard=guard.sql
                )
            claims = orjson.dumps(list(guard.claims)).decode()
            row = await driver.fetchrow(statement, at, *arrays, list(guard.owners), claims)
            stamp, held = row["stamp"], list(row["held"])
        else:
            stamp = await driver.fetchval(_APPEND_RELEASED if released else _APPEND, at, *arrays)
        if released:
            count_statement()
            await driver.execute(_FLUSH)  # simple protocol: one message, nothing to bind
        await ensure_partition_for(executor, stamp)  # for the next append, should it differ
    except (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise AuditWriteError(f"audit events could not be written: {error}") from error
    return held
