"""What every mutation shares: the permission gate, its own savepoint, and its audit event."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditRecord
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import ForbiddenError


def require(context: RequestContext, resource: Resource, action: Action, operation: str) -> None:
    """Refuse an operation the caller has no rule for at all, before touching anything.

    `operation` is a root field: a mutation, or for READ a query field (`auditEvents`, `users`).
    """
    if not context.decisions.can(resource, action):
        root = "Query" if action is Action.READ else "Mutation"
        raise ForbiddenError(f"{root}.{operation}", f"Not allowed to {operation}")


@contextlib.asynccontextmanager
async def write(context: RequestContext) -> AsyncIterator[AsyncSession]:
    """A savepoint for one mutation field: its writes and events stand or fall together.

    The request's transaction commits after the whole operation, so a failed mutation leaves
    nothing behind while an earlier successful one in the same request is kept.
    """
    events: list[AuditRecord] = []
    context.extras["savepoint_events"] = events
    try:
        async with context.db.lock:
            session = context.db.session
            async with session.begin_nested():
                yield session
        # queued, not appended: the chain's lock is held from the append until the commit,
        # so events are appended last, together, right before the request commits
        context.pending_events.extend(events)
    finally:
        context.extras.pop("savepoint_events", None)


async def record(
    context: RequestContext,
    session: AsyncSession,
    action: str,
    resource_type: str,
    resource_ids: Iterable[int | str] = (),
    *,
    changes: Mapping[str, Any] | None = None,
    fields: Iterable[str] = (),
) -> None:
    """Queue the audit event of a change; it commits with the change or not at all."""
    principal, meta = context.principal, context.meta
    event = AuditRecord(
        actor=principal.name,
        actor_kind=principal.kind.value,
        action=action,
        resource_type=resource_type,
        resource_ids=[str(i) for i in resource_ids],
        fields=sorted(fields),
        changes=changes,
        operation=meta.operation,
        query_hash=meta.query_hash,
        ip=meta.ip,
        user_agent=meta.user_agent,
        request_id=meta.request_id,
        token_id=principal.token_id,
    )
    context.extras["savepoint_events"].append(event)
