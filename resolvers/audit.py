"""`auditEvents`: the trail, newest first, for callers allowed READ on `audit`.

Reading the trail is itself recorded: the events returned are noted in the request's read log
like any other record, so the officer's look at the log becomes an entry of its own.
"""

from __future__ import annotations

from typing import Any

import strawberry

from audit.queries import AuditFilter, count_events, list_events
from db.models import AuditEvent as AuditEventRow
from policy.vocabulary import Action, Resource
from resolvers.audit_changes import customer_facts_of, readable_changes
from resolvers.context import RequestContext
from resolvers.pagination import checked_first, decode_cursor, encode_cursor
from resolvers.records import SPECS
from resolvers.selection import requested_connection
from resolvers.writes import require
from schema.audit import AuditEvent, AuditEventFilter
from schema.node import (
    Connection,
    Edge,
    InvalidGlobalIdError,
    PageInfo,
    from_global_id,
    to_global_id,
)

TYPE_OF_RESOURCE = {spec.resource.value: spec.type_name for spec in SPECS.values()}


def resource_filter(filter: AuditEventFilter) -> tuple[str | None, str | None]:
    """A global id narrows to its record and type; anything else is matched as stored."""
    resource_type, resource_id = filter.resource_type, filter.resource_id
    if resource_id is None:
        return resource_type, None
    try:
        type_name, pk = from_global_id(resource_id)
    except InvalidGlobalIdError:
        return resource_type, str(resource_id)
    for resource, name in TYPE_OF_RESOURCE.items():
        if name == type_name:
            return resource_type or resource, pk
    return resource_type, str(resource_id)


def _event(row: AuditEventRow, changes: Any = None) -> AuditEvent:
    type_name = TYPE_OF_RESOURCE.get(row.resource_type or "")
    ids = [
        strawberry.ID(to_global_id(type_name, i) if type_name and i.isdigit() else i)
        for i in row.resource_ids
    ]
    return AuditEvent(
        id=strawberry.ID(to_global_id("AuditEvent", row.seq)),
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        actor_kind=row.actor_kind,
        action=row.action,
        resource_type=row.resource_type,
        resource_ids=ids,
        fields=list(row.fields),
        changes=row.changes if changes is None else changes,
        operation=row.operation or (row.query_hash[:12] if row.query_hash else None),
        query_hash=row.query_hash,
        ip=row.ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
        token_id=str(row.token_id) if row.token_id else None,
        hash=row.hash,
        prev_hash=row.prev_hash,
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(description="The audit trail, newest first. Needs READ on `audit`.")
    async def audit_events(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: AuditEventFilter | None = None,
    ) -> Connection[AuditEvent]:
        context: RequestContext = info.context
        require(context, Resource.AUDIT, Action.READ, "auditEvents")
        limit = checked_first(first)
        filter = filter or AuditEventFilter()
        resource_type, resource_id = resource_filter(filter)
        criteria = AuditFilter(
            actor=filter.actor,
            action=filter.action,
            resource_type=resource_type,
            resource_id=resource_id,
            from_=filter.from_,
            to=filter.to,
        )
        after_seq = decode_cursor(after)[1] if after is not None else None
        async with context.db.lock:
            rows, has_next = await list_events(
                context.db.session, criteria, first=limit, after_seq=after_seq
            )
            total = None
            if requested_connection(info, "AuditEvent").total_count:
                total = await count_events(context.db.session, criteria)
        facts = await customer_facts_of(context, rows)  # takes the lock itself
        events = [_event(row, readable_changes(context, row, facts)) for row in rows]
        cursors = [encode_cursor(None, row.seq) for row in rows]
        context.reads.note(Resource.AUDIT.value, (row.seq for row in rows), ["auditEvents"])
        return _page(events, cursors, has_next, total)


def _page(events: list[Any], cursors: list[str], has_next: bool, total: int | None) -> Any:
    return Connection(
        edges=[Edge(cursor=c, node=e) for c, e in zip(cursors, events, strict=True)],
        nodes=events,
        page_info=PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None),
        total_count=total,
    )
