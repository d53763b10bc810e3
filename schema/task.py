"""Tasks (待办): what a user has to do, and by when; reminders create them unasked."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.node import Node
from schema.user import User

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.enum
class TaskKind(Enum):
    FOLLOW_UP = "FOLLOW_UP"
    CONTRACT_RENEWAL = "CONTRACT_RENEWAL"
    PAYMENT_DUE = "PAYMENT_DUE"
    CUSTOM = "CUSTOM"


@strawberry.enum
class TaskStatus(Enum):
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


@strawberry.type(description="A to-do of its assignee, about a customer or not.")
class Task(Node):
    id: strawberry.ID
    title: str | None = None
    kind: TaskKind | None = None
    status: TaskStatus | None = None
    due_at: datetime | None = None
    completed_at: datetime | None = None
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int | None] = None
    assignee_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def customer(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.related(info, self, "customer", self.customer_id)  # type: ignore[no-any-return]

    @strawberry.field
    async def assignee(self, info: strawberry.Info) -> User | None:
        return await info.context.reader.related(info, self, "assignee", self.assignee_id)  # type: ignore[no-any-return]


@strawberry.type(description="What a handover (离职交接) moved, in one transaction.")
class Transfer:
    moved_customers: int
    moved_opportunities: int
    moved_tickets: int
    moved_tasks: int
