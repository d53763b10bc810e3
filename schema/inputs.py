"""Inputs of the write mutations: every field optional, so validation reports all at once.

A field left out is `UNSET` (unchanged on update, default on create); a field given as null
clears it. Nothing here says what is required: the rule set in `validation/` does, so a form, an
import and the API refuse the same inputs with the same `{field, rule}` errors. `archivedAt`,
`version` and `createdAt` are not inputs: they follow from the mutations themselves.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from schema.enums import (
    CustomerKind,
    CustomerLevel,
    OpportunityStage,
    TicketPriority,
    TicketStatus,
)
from schema.interaction import InteractionChannel

UNSET = strawberry.UNSET


@strawberry.input(description="A new customer. Owner and department default to the caller's.")
class CustomerInput:
    name: str | None = UNSET
    kind: CustomerKind | None = UNSET
    industry: str | None = UNSET
    region: str | None = UNSET
    level: CustomerLevel | None = UNSET
    source: str | None = UNSET
    tags: list[str] | None = UNSET
    credit_code: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    id_number: str | None = UNSET
    address: str | None = UNSET
    total_spend: Decimal | None = UNSET
    owner_id: strawberry.ID | None = UNSET
    department_id: strawberry.ID | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input(description="Changes to a customer; fields left out stay as they are.")
class CustomerPatch(CustomerInput):
    pass


@strawberry.input
class ContactInput:
    customer_id: strawberry.ID
    name: str | None = UNSET
    title: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    is_decision_maker: bool | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input
class ContactPatch:
    name: str | None = UNSET
    title: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    is_decision_maker: bool | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input(description="A new opportunity; the owner defaults to the caller.")
class OpportunityInput:
    customer_id: strawberry.ID
    name: str | None = UNSET
    stage: OpportunityStage | None = UNSET
    amount: Decimal | None = UNSET
    expected_close_date: date | None = UNSET
    owner_id: strawberry.ID | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input(description="A stage may only move forward; each move is kept as history.")
class OpportunityPatch:
    name: str | None = UNSET
    stage: OpportunityStage | None = UNSET
    amount: Decimal | None = UNSET
    expected_close_date: date | None = UNSET
    owner_id: strawberry.ID | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input
class TicketInput:
    customer_id: strawberry.ID
    title: str | None = UNSET
    priority: TicketPriority | None = UNSET
    status: TicketStatus | None = UNSET
    satisfaction: int | None = UNSET
    assignee_id: strawberry.ID | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input(
    description="Status moves OPEN → IN_PROGRESS → RESOLVED → CLOSED; RESOLVED reopens."
)
class TicketPatch:
    title: str | None = UNSET
    priority: TicketPriority | None = UNSET
    status: TicketStatus | None = UNSET
    satisfaction: int | None = strawberry.field(
        default=UNSET, description="1 to 5, only once the ticket is resolved."
    )
    assignee_id: strawberry.ID | None = UNSET
    custom_fields: JSON | None = strawberry.field(
        default=UNSET, description="Custom field values by key; a null value clears the key."
    )


@strawberry.input(description="A follow-up; the author is the caller, the time defaults to now.")
class InteractionInput:
    customer_id: strawberry.ID
    channel: InteractionChannel | None = UNSET
    summary: str | None = UNSET
    occurred_at: datetime | None = UNSET
    next_follow_up_on: date | None = UNSET
