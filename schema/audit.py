"""The audit trail as compliance officers read it."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from schema.node import Node


@strawberry.type(description="One tamper-evident entry: who saw or changed what, when.")
class AuditEvent(Node):
    id: strawberry.ID
    seq: int | None = None
    at: datetime | None = None
    actor: str | None = None
    actor_kind: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_ids: list[strawberry.ID] | None = None
    fields: list[str] | None = None
    changes: JSON | None = None
    operation: str | None = strawberry.field(
        default=None, description="GraphQL operation name, or the query hash's prefix."
    )
    query_hash: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    token_id: str | None = None
    hash: str | None = None
    prev_hash: str | None = None


@strawberry.input
class AuditEventFilter:
    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None
