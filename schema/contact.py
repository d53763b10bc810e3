from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from schema.node import Node

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.type(description="A person at a customer.")
class Contact(Node):
    id: strawberry.ID
    name: str | None = None
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    is_decision_maker: bool | None = None
    version: int | None = strawberry.field(
        default=None, description="Send back as expectedVersion to refuse a stale write."
    )
    custom_fields: JSON | None = strawberry.field(
        default=None, description="Custom values by key; keys the caller may not read are left out."
    )
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int] = 0
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def customer(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.related(info, self, "customer", self.customer_id)  # type: ignore[no-any-return]
