"""Reading the trail: the filtered, newest-first pages of `auditEvents` and streamed exports.

Pages use keyset pagination on `seq` (the chain order), never OFFSET: page 1 000 of five million
events costs what page 1 costs. Each filter has an index (`actor, seq`; `action, seq`;
`audit_resource_index` for resource ids), and `from_`/`to` prune whole monthly partitions and
bound seq through `at, seq` (`_seq_range`). bench/audit_targets.py measures every filter at
5M events (p95 under 50 ms).

A resource id filter is complete without waiting for the indexer (`audit.indexer`): the
watermark is read first, then one statement takes the events `audit_resource_index` lists up to
it and scans the events above it for `resource_ids @> ARRAY[id]`. Index rows up to a
watermark, once committed, stay until their month is archived with its events, so a watermark
read a statement earlier is still exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Subquery,
    and_,
    column,
    func,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from audit.canonical import format_at
from audit.indexer import Watermark, read_watermark
from db.models.audit import EVENT_COLUMNS, AuditEvent, AuditResourceIndex

EXPORT_COLUMNS = EVENT_COLUMNS
STREAM_BATCH = 2_000


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """docs/api.md's `AuditEventFilter`; every criterion is optional and they combine with AND.

    `from_` is inclusive and `to` exclusive, so consecutive windows never count an event twice.
    """

    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    from_: dt.datetime | None = None
    to: dt.datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        """Every criterion but `resource_id`, which `_filtered` joins in from the index."""
        clauses: list[ColumnElement[bool]] = _seq_range(self.from_, self.to)
        if self.actor is not None:
            clauses.append(AuditEvent.actor == self.actor)
        if self.action is not None:
            clauses.append(AuditEvent.action == str(self.action))
        if self.resource_type is not None:
            clauses.append(AuditEvent.resource_type == self.resource_type)
        if self.from_ is not None:
            clauses.append(AuditEvent.at >= self.from_)
        if self.to is not None:
            clauses.append(AuditEvent.at < self.to)
        return clauses


def _seq_range(from_: dt.datetime | None, to: dt.datetime | None) -> list[ColumnElement[bool]]:
    """A time range as the range of seq it covers, beside the `at` criteria themselves.

    Appends never stamp an event earlier than the one before it (`audit.chain`: the stamp is
    at least the head's), so the events with `from_ <= at < to` are exactly those from the
    first event at or after `from_` to the last one before `to`, each found by one probe of
    `ix_audit_events_at_seq`. Without these bounds a newest-first page of a range walked the
    seq index backwards from the month's newest event to `to` (a month of 5M events spread
    over five is a million rows); with them it starts at the range's newest event. When no
    event lies at or after `from_` (or before `to`) the bound is NULL and nothing matches,
    which is the right answer.
    """
    clauses: list[ColumnElement[bool]] = []
    if from_ is not None:
        low = (
            select(AuditEvent.seq)
            .where(AuditEvent.at >= from_)
            .order_by(AuditEvent.at, AuditEvent.seq)
            .limit(1)
            .scalar_subquery()
        )
        clauses.append(AuditEvent.seq >= low)
    if to is not None:
        high = (
            select(AuditEvent.seq)
            .where(AuditEvent.at < to)
            .order_by(AuditEvent.at.desc(), AuditEvent.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        clauses.append(AuditEvent.seq <= high)
    return clauses


def resource_hits(
    resource_id: str,
    resource_type: str | None,
    watermark: Watermark,
    *,
    after_seq: int | None = None,
) -> Subquery:
    """(seq, low, high) of every event naming `resource_id`: indexed up to `watermark`, scanned
    above. The event's `at` lies in [low, high], which lets the join back to the events prune
    their month partitions (an index row's events all lie in one month).

    The index rows up to the watermark are unnested: each holds the seqs of one batch of
    events, and lies wholly below or wholly above any watermark, so `first_seq <= watermark`
    picks the rows and `seq <= watermark` says so for each seq too. The two parts are disjoint,
    so UNION ALL counts each event once.
    """
    index = AuditResourceIndex.__table__.c
    seqs = (
        func.unnest(index.seqs)
        .table_valued(column("seq", BigInteger))
        .render_derived()
        .lateral("hit")
    )
    indexed = (
        select(seqs.c.seq, index.at.label("low"), index.last_at.label("high"))
        .select_from(AuditResourceIndex.__table__)
        .join(seqs, true())
        .where(
            index.resource_id == resource_id,
            index.first_seq <= watermark.seq,
            seqs.c.seq <= watermark.seq,
        )
    )
    if resource_type is not None:
        # (id, type, first_seq) is the index's key
        indexed = indexed.where(index.resource_type == resource_type)
    events = AuditEvent.__table__.c
    # containment, not ANY(): @> is what the events' array supports best; the tail is short
    tail = select(events.seq, events.at.label("low"), events.at.label("high")).where(
        events.seq > watermark.seq, events.resource_ids.contains([resource_id])
    )
    if watermark.at is not None:
        tail = tail.where(events.at >= watermark.at)  # plans only the tail's months
    if after_seq is not None:
        indexed = indexed.where(index.first_seq < after_seq, seqs.c.seq < after_seq)
        tail = tail.where(events.seq < after_seq)
    return union_all(indexed, tail).subquery("hits")


# a page by resource id joins a few dozen index rows to their events: the planner's parallel
# plan for it spent ~15 ms starting workers on a 7 ms query (EXPLAIN ANALYZE at 5M events, cold
# pages); the setting is transaction-local, so it ends with the request's transaction
_SERIAL = text("SET LOCAL max_parallel_workers_per_gather = 0")


async def _filtered(
    session: AsyncSession, filter: AuditFilter, *columns: Any, after_seq: int | None = None
) -> Select[Any]:
    """SELECT `columns` (default: the event) of the events matching `filter`."""
    statement = select(*columns) if columns else select(AuditEvent)
    if filter.resource_id is not None:
        await session.execute(_SERIAL)
        watermark = await read_watermark(session)
        hits = resource_hits(
            str(filter.resource_id), filter.resource_type, watermark, after_seq=after_seq
        )
        statement = statement.select_from(AuditEvent).join(
            hits,
            and_(
                AuditEvent.seq == hits.c.seq,
                AuditEvent.at >= hits.c.low,
                AuditEvent.at <= hits.c.high,
            ),
        )
    elif after_seq is not None:
        statement = statement.where(AuditEvent.seq < after_seq)
    return statement.where(*filter.clauses())


async def list_events(
    session: AsyncSession, filter: AuditFilter, *, first: int, after_seq: int | None = None
) -> tuple[list[AuditEvent], bool]:
    """One page, newest first: events with `seq < after_seq`, and whether more follow.

    The cursor of an event is its `seq`; the caller encodes it (Relay `endCursor`) and caps
    `first` (docs/api.md: at most 500, larger is an error).
    """
    if first < 0:
        raise ValueError("first must not be negative")
    statement = await _filtered(session, filter, after_seq=after_seq)
    order = AuditEvent.seq.desc()
    if filter.resource_id is not None:
        # a resource appears in few events: walking the seq index backwards until 51 of them
        # turn up read a million rows (p95 515 ms at 1M events, bench); `seq + 0` hides that
        # index so the planner starts from the resource index instead
        order = (AuditEvent.seq + 0).desc()
    statement = statement.order_by(order).limit(first + 1)
    events = list((await session.scalars(statement)).all())
    return events[:first], len(events) > first


async def count_events(session: AsyncSession, filter: AuditFilter) -> int:
    """`totalCount` of a filter (a real count: cheap when filtered, a scan when not)."""
    statement = await _filtered(session, filter, func.count())
    if filter.resource_id is None:
        statement = statement.select_from(AuditEvent)
    return int((await session.execute(statement)).scalar_one())


def event_document(event: AuditEvent | Row[Any]) -> dict[str, Any]:
    """An event (model or row) as exported: JSON-ready, timestamps in UTC as hashed."""
    return {
        "seq": event.seq,
        "at": format_at(event.at),
        "actor": event.actor,
        "actor_kind": event.actor_kind,
        "token_id": str(event.token_id) if event.token_id is not None else None,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_ids": list(event.resource_ids),
        "fields": list(event.fields),
        "changes": event.changes,
        "operation": event.operation,
        "query_hash": event.query_hash,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = str(value)
    # spreadsheet formula injection: a cell starting with = + - @ would be executed by Excel
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


async def stream_events(
    session: AsyncSession, filter: AuditFilter, fmt: Literal["csv", "jsonl"] | ExportFormat
) -> AsyncIterator[bytes]:
    """Export the filtered events in chain order (oldest first) as CSV or JSON Lines.

    Rows come through a server-side cursor in batches of STREAM_BATCH and each batch is
    yielded as one chunk, so memory stays bounded whatever the size of the trail. The session
    must stay open (and in its transaction) until the iterator is exhausted.
    """
    export_format = ExportFormat(fmt)
    # plain rows, not ORM objects: nothing accumulates in the caller's identity map
    statement = await _filtered(session, filter, *AuditEvent.__table__.c)
    statement = statement.order_by(AuditEvent.seq).execution_options(yield_per=STREAM_BATCH)
    if export_format is ExportFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        yield buffer.getvalue().encode("utf-8")
    result = await session.stream(statement)
    try:
        async for partition in result.partitions():
            if export_format is ExportFormat.CSV:
                buffer = io.StringIO()
                writer = csv.writer(buffer, lineterminator="\r\n")
                for event in partition:
                    document = event_document(event)
                    writer.writerow([_csv_cell(document[column]) for column in EXPORT_COLUMNS])
                yield buffer.getvalue().encode("utf-8")
            else:
                lines = [
                    json.dumps(event_document(event), ensure_ascii=False, separators=(",", ":"))
                    for event in partition
                ]
                yield ("\n".join(lines) + "\n").encode("utf-8")
    finally:
        await result.close()  # a consumer that stops early must not leave the cursor open
