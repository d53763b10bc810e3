"""Follow-ups (跟进记录): who talked to a customer, how, about what, and when to call again."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.node import Node
from schema.user import User

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.enum
class InteractionChannel(Enum):
    CALL = "CALL"
    VISIT = "VISIT"
    EMAIL = "EMAIL"
    WECHAT = "WECHAT"
    MEETING = "MEETING"


@strawberry.type(description="A follow-up with a customer; it moves `lastInteractionAt`.")
class Interaction(Node):
    id: strawberry.ID
    channel: InteractionChannel | None = None
    summary: str | None = None
    occurred_at: datetime | None = None
    next_follow_up_on: date | None = None
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int] = 0
    author_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def customer(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.related(info, self, "customer", self.customer_id)  # type: ignore[no-any-return]

    @strawberry.field
    async def author(self, info: strawberry.Info) -> User | None:
        return await info.context.reader.related(info, self, "author", self.author_id)  # type: ignore[no-any-return]
