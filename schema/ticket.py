from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from schema.enums import TicketPriority, TicketStatus
from schema.node import Node
from schema.user import User

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.type(description="A service request raised by a customer.")
class Ticket(Node):
    id: strawberry.ID
    title: str | None = None
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    satisfaction: int | None = None
    version: int | None = strawberry.field(
        default=None, description="Send back as expectedVersion to refuse a stale write."
    )
    custom_fields: JSON | None = strawberry.field(
        default=None, description="Custom values by key; keys the caller may not read are left out."
    )
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int] = 0
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
