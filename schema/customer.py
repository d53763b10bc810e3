"""The customer, root of the 360° view."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from schema.enums import CustomerKind, CustomerLevel, RfmSegment
from schema.node import Connection, Node
from schema.quality import CustomerQuality
from schema.user import Department, User

if TYPE_CHECKING:
    from schema.contact import Contact
    from schema.contract import Contract
    from schema.interaction import Interaction
    from schema.opportunity import Opportunity
    from schema.privacy import Consent
    from schema.task import Task
    from schema.ticket import Ticket
    from schema.timeline import TimelineConnection


@strawberry.type(description="A company or person we sell to. Any field may be null by policy.")
class Customer(Node):
    id: strawberry.ID
    name: str | None = None
    kind: CustomerKind | None = None
    industry: str | None = None
    region: str | None = strawberry.field(default=None, description="Canonical region name.")
    level: CustomerLevel | None = None
    source: str | None = strawberry.field(default=None, description="Acquisition channel.")
    tags: list[str] | None = None
    credit_code: str | None = strawberry.field(default=None, description="统一社会信用代码.")
    phone: str | None = strawberry.field(default=None, description="Sensitive; E.164.")
    email: str | None = None
    id_number: str | None = strawberry.field(default=None, description="Sensitive.")
    address: str | None = None
    total_spend: Decimal | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_interaction_at: datetime | None = None
    version: int | None = strawberry.field(
        default=None, description="Send back as expectedVersion to refuse a stale write."
    )
    custom_fields: JSON | None = strawberry.field(
        default=None, description="Custom values by key; keys the caller may not read are left out."
    )
    segment: RfmSegment | None = strawberry.field(
        default=None,
        description="RFM segment of its won deals; readable where their stage and amount are.",
    )
    pk: strawberry.Private[int] = 0
    owner_id: strawberry.Private[int | None] = None
    department_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def owner(self, info: strawberry.Info) -> User | None:
        return await info.context.reader.related(info, self, "owner", self.owner_id)  # type: ignore[no-any-return]

    @strawberry.field
    async def department(self, info: strawberry.Info) -> Department | None:
        return await info.context.reader.related(info, self, "department", self.department_id)  # type: ignore[no-any-return]

    @strawberry.field
    async def contacts(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Contact, strawberry.lazy("schema.contact")]] | None:
        return await info.context.reader.children(info, self, "contacts", first, after)  # type: ignore[no-any-return]

    @strawberry.field
    async def opportunities(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Opportunity, strawberry.lazy("schema.opportunity")]] | None:
        return await info.context.reader.children(info, self, "opportunities", first, after)  # type: ignore[no-any-return]

    @strawberry.field
    async def tickets(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Ticket, strawberry.lazy("schema.ticket")]] | None:
        return await info.context.reader.children(info, self, "tickets", first, after)  # type: ignore[no-any-return]

    @strawberry.field(description="Follow-ups (跟进记录), oldest first.")
    async def interactions(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Interaction, strawberry.lazy("schema.interaction")]] | None:
        return await info.context.reader.children(info, self, "interactions", first, after)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Consents by purpose (granted and withdrawn), oldest first; there wherever "
        "the customer is readable."
    )
    async def consents(
        self, info: strawberry.Info
    ) -> list[Annotated[Consent, strawberry.lazy("schema.privacy")]] | None:
        return await info.context.consents_of(self.pk)  # type: ignore[no-any-return]

    @strawberry.field(description="3C data quality: complete, current, accurate.")
    async def quality(self, info: strawberry.Info) -> CustomerQuality | None:
        return await info.context.quality.of(self)  # type: ignore[no-any-return]

    @strawberry.field(description="Contracts signed with this customer, by id.")
    async def contracts(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Contract, strawberry.lazy("schema.contract")]] | None:
        return await info.context.reader.children(info, self, "contracts", first, after)  # type: ignore[no-any-return]

    @strawberry.field(description="Tasks about this customer, by id.")
    async def tasks(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Annotated[Task, strawberry.lazy("schema.task")]] | None:
        return await info.context.reader.children(info, self, "tasks", first, after)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Follow-ups, stage changes, tickets, contracts, payments: newest first."
    )
    async def timeline(
        self, info: strawberry.Info, first: int | None = 50, after: str | None = None
    ) -> Annotated[TimelineConnection, strawberry.lazy("schema.timeline")] | None:
        return await info.context.workflow.timeline(self, first, after)  # type: ignore[no-any-return]
