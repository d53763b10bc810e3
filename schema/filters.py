"""Filter and order inputs of the root connections."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.enums import (
    CustomerKind,
    CustomerLevel,
    OpportunityStage,
    SortDirection,
    TicketPriority,
    TicketStatus,
)


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


@strawberry.input
class ContactFilter:
    customer_id: strawberry.ID | None = None
    name_prefix: str | None = None
    is_decision_maker: bool | None = None


@strawberry.input
class OpportunityFilter:
    customer_id: strawberry.ID | None = None
    stage: OpportunityStage | None = None
    owner_id: strawberry.ID | None = None


@strawberry.input
class TicketFilter:
    customer_id: strawberry.ID | None = None
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assignee_id: strawberry.ID | None = None
