from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from schema.enums import OpportunityStage
from schema.node import Node
from schema.user import User

if TYPE_CHECKING:
    from schema.customer import Customer
    from schema.timeline import StageChange


@strawberry.type(description="A possible sale, moving through the funnel's stages.")
class Opportunity(Node):
    id: strawberry.ID
    name: str | None = None
    stage: OpportunityStage | None = None
    amount: Decimal | None = None
    expected_close_date: date | None = None
    version: int | None = strawberry.field(
        default=None, description="Send back as expectedVersion to refuse a stale write."
    )
    custom_fields: JSON | None = strawberry.field(
        default=None, description="Custom values by key; keys the caller may not read are left out."
    )
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int] = 0
    owner_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def customer(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.related(info, self, "customer", self.customer_id)  # type: ignore[no-any-return]

    @strawberry.field
    async def owner(self, info: strawberry.Info) -> User | None:
        return await info.context.reader.related(info, self, "owner", self.owner_id)  # type: ignore[no-any-return]

    @strawberry.field(description="Every move between stages, oldest first.")
    async def stage_history(
        self, info: strawberry.Info
    ) -> list[Annotated[StageChange, strawberry.lazy("schema.timeline")]] | None:
        return await info.context.workflow.stage_history(self)  # type: ignore[no-any-return]
