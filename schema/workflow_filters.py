"""Filters of the sales workflow's root connections (issue 18)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from schema.contract import ContractStatus
from schema.interaction import InteractionChannel
from schema.task import TaskKind, TaskStatus


@strawberry.input(description="Every condition must hold. `mine`: assigned to the caller.")
class TaskFilter:
    assignee_id: strawberry.ID | None = None
    mine: bool | None = None
    status: TaskStatus | None = None
    kind: TaskKind | None = None
    customer_id: strawberry.ID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


@strawberry.input(description="Every condition must hold. Filtering on a field needs READ on it.")
class ContractFilter:
    customer_id: strawberry.ID | None = None
    owner_id: strawberry.ID | None = None
    status: ContractStatus | None = None
    ends_before: date | None = None


@strawberry.input(description="Every condition must hold. `from`/`to` bound `occurredAt`.")
class InteractionFilter:
    customer_id: strawberry.ID | None = None
    author_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None
    channel: InteractionChannel | None = None
