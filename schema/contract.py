"""Contracts (合同) and the payments (回款) due under them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.node import Connection, Node
from schema.user import User

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.enum
class ContractStatus(Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    TERMINATED = "TERMINATED"


@strawberry.enum
class PaymentStatus(Enum):
    PLANNED = "PLANNED"
    PAID = "PAID"
    OVERDUE = "OVERDUE"


@strawberry.type(description="A contract signed with a customer; `amount` is a finance field.")
class Contract(Node):
    id: strawberry.ID
    title: str | None = None
    amount: Decimal | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    status: ContractStatus | None = None
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

    @strawberry.field(description="Payments due under this contract, by id.")
    async def payments(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Payment] | None:
        return await info.context.reader.children(info, self, "payments", first, after)  # type: ignore[no-any-return]


@strawberry.type(description="A payment due under a contract; `amount` is a finance field.")
class Payment(Node):
    id: strawberry.ID
    amount: Decimal | None = None
    due_on: date | None = None
    paid_on: date | None = None
    status: PaymentStatus | None = None
    pk: strawberry.Private[int] = 0
    customer_id: strawberry.Private[int] = 0
    contract_id: strawberry.Private[int] = 0
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def contract(self, info: strawberry.Info) -> Contract | None:
        return await info.context.reader.related(info, self, "contract", self.contract_id)  # type: ignore[no-any-return]
