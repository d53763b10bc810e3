"""The transactional outbox: every change's event row, written in the change's own transaction.

A write's audit records already say what changed (`AuditRecord`: action, resource, ids, fields);
`enqueue` derives one outbox row per changed record from them and inserts it in the caller's
open transaction, so an event exists exactly when its change (and its audit event) committed:
a rolled-back write leaves no event, a committed one cannot lack it. The same statement fans the
event out to `webhook_deliveries` for every active webhook subscribed to it, and announces the
new outbox ids with `pg_notify`, which PostgreSQL delivers only when the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from audit.events import AuditAction, AuditRecord

NOTIFY_CHANNEL = "dossier_events"
# one NOTIFY payload stays well below PostgreSQL's 8000-byte limit
IDS_PER_NOTIFY = 400

# record types that have events; anything else (users, policies, tokens) is not "a record"
RECORD_TYPES = frozenset(
    {"customer", "contact", "opportunity", "ticket", "interaction", "task", "contract", "payment"}
)
VERBS = {
    AuditAction.CREATE: "created",
    AuditAction.IMPORT: "created",
    AuditAction.UPDATE: "updated",
    AuditAction.ARCHIVE: "archived",
    AuditAction.DELETE: "deleted",
}


@dataclass(frozen=True)
class OutboxEvent:
    event: str
    resource_type: str
    resource_id: str
    changed_fields: tuple[str, ...]
    actor: str


def _fields_of(record: AuditRecord) -> tuple[str, ...]:
    if record.fields:
        return tuple(sorted(record.fields))
    if record.changes and record.action in (AuditAction.CREATE, AuditAction.UPDATE):
        return tuple(sorted(record.changes))
    return ()


def events_of(records: Iterable[AuditRecord]) -> list[OutboxEvent]:
    """The outbox rows a batch of write records stands for, in order."""
    found: list[OutboxEvent] = []
    for record in records:
        kind = record.resource_type
        if kind not in RECORD_TYPES or not record.resource_ids:
            continue
        fields = _fields_of(record)
        actor = record.actor
        if record.action == AuditAction.MERGE:
            # the kept record absorbed the other; the other is archived into it
            keep, *merged = record.resource_ids
            found.append(OutboxEvent(f"{kind}.merged", kind, keep, fields, actor))
            found.extend(OutboxEvent(f"{kind}.archived", kind, pk, (), actor) for pk in merged)
            continue
        verb = VERBS.get(record.action)  # type: ignore[call-overload]  # StrEnum keys match str
        if verb is None:
            continue
        for pk in record.resource_ids:
            found.append(OutboxEvent(f"{kind}.{verb}", kind, pk, fields, actor))
            if kind == "opportunity" and verb == "updated" and "stage" in fields:
                found.append(OutboxEvent("opportunity.stage_changed", kind, pk, fields, actor))
    return found


_ENQUEUE = text(
    f"""
    WITH o AS (
        INSERT INTO outbox_events (event, resource_type, resource_id, changed_fields, actor)
        SELECT e, t, i, CASE WHEN f = '' THEN '{{}}'::text[] ELSE string_to_array(f, ',') END, a
        FROM unnest(CAST(:events AS text[]), CAST(:types AS text[]), CAST(:ids AS text[]),
                    CAST(:fields AS text[]), CAST(:actors AS text[])) AS u(e, t, i, f, a)
        RETURNING id, event
    ), d AS (
        INSERT INTO webhook_deliveries (webhook_id, outbox_id, event)
        SELECT w.id, o.id, o.event
        FROM o JOIN webhooks w ON w.active AND (
            o.event = ANY(w.events)
            OR split_part(o.event, '.', 1) || '.*' = ANY(w.events)
            OR '*' = ANY(w.events))
    )
    SELECT count(pg_notify('{NOTIFY_CHANNEL}', ids)) FROM (
        SELECT string_agg(id::text, ',' ORDER BY id) AS ids
        FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {IDS_PER_NOTIFY} AS chunk FROM o)
             AS numbered
        GROUP BY chunk
    ) AS chunks
    """  # noqa: S608  # only module constants are formatted in; every value is bound
)


async def enqueue(session: AsyncSession | AsyncConnection, records: Sequence[AuditRecord]) -> None:
    """Write the outbox rows of `records` in the caller's open transaction (never commits).

    Records that change no record (reads, logins, policy or user changes) add nothing, and
    then no statement is sent.
    """
    events = events_of(records)
    if not events:
        return
    await session.execute(
        _ENQUEUE,
        {
            "events": [e.event for e in events],
            "types": [e.resource_type for e in events],
            "ids": [e.resource_id for e in events],
            "fields": [",".join(e.changed_fields) for e in events],
            "actors": [e.actor for e in events],
        },
    )
