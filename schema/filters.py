"""Filter and order inputs of the root connections."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from schema.enums import (
    CustomerKind,
    CustomerLevel,
    OpportunityStage,
    RfmSegment,
    SortDirection,
    TicketPriority,
    TicketStatus,
)


@strawberry.input(
    description="One custom field's value; needs READ on `<resource>.cf.<key>` on every row. "
    "On a MULTI_CHOICE field, `eq` and `in` match records having that option."
)
class CustomFieldFilter:
    key: str
    eq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    gte: JSON | None = None
    lte: JSON | None = None


@strawberry.input(description="Every condition must hold. Filtering on a field needs READ on it.")
class CustomerFilter:
    name_prefix: str | None = None
    region: str | None = None
    industry: str | None = None
    level: CustomerLevel | None = None
    kind: CustomerKind | None = None
    owner_id: strawberry.ID | None = None
    department_id: strawberry.ID | None = None
    updated_since: datetime | None = None
    email: str | None = None
    credit_code: str | None = None
    tag: str | None = None
    tags_all: list[str] | None = strawberry.field(default=None, description="Has every tag.")
    tags_any: list[str] | None = strawberry.field(default=None, description="Has one of them.")
    total_spend_gte: Decimal | None = None
    total_spend_lte: Decimal | None = None
    last_interaction_before: datetime | None = strawberry.field(
        default=None, description="Last follow-up before then (never followed up: not matched)."
    )
    segment: RfmSegment | None = strawberry.field(
        default=None, description="The RFM segment (`Customer.segment`)."
    )
    custom_field: CustomFieldFilter | None = None


@strawberry.enum
class CustomerOrderField(Enum):
    ID = "id"
    NAME = "name"
    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"
    TOTAL_SPEND = "totalSpend"
    LEVEL = "level"


@strawberry.input(description="Ordering on a field needs READ on it on every visible row.")
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.ID
    direction: SortDirection = SortDirection.ASC
    custom_field: str | None = strawberry.field(
        default=None, description="A custom field's key; when given, it orders instead of field."
    )


@strawberry.input
class ContactFilter:
    customer_id: strawberry.ID | None = None
    name_prefix: str | None = None
    is_decision_maker: bool | None = None
    custom_field: CustomFieldFilter | None = None


@strawberry.input
class OpportunityFilter:
    customer_id: strawberry.ID | None = None
    stage: OpportunityStage | None = None
    owner_id: strawberry.ID | None = None
    custom_field: CustomFieldFilter | None = None


@strawberry.input
class TicketFilter:
    customer_id: strawberry.ID | None = None
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assignee_id: strawberry.ID | None = None
    custom_field: CustomFieldFilter | None = None
