"""Insight types: aggregates over the caller's rows; a figure built from a hidden field is null.

Every figure is nullable for the same reason every field is: a figure computed from a field the
caller may not read (an amount for a service agent) resolves to null, and the response carries one
FORBIDDEN error naming that field, exactly as reading the field itself would.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import strawberry

from schema.customer import Customer
from schema.enums import (
    CustomerLevel,
    OpportunityStage,
    RfmSegment,  # re-exported: insights name it here
    TicketPriority,
    TicketStatus,
)
from schema.node import PageInfo
from schema.user import User


@strawberry.input(
    description=(
        "Narrows an insight. `departmentId` takes the department and its sub-departments; "
        "`ownerId` is the opportunity's owner in salesFunnel and the customer's owner elsewhere; "
        "`from`/`to` (to exclusive) bound when the record was created (tickets: opened). "
        "Each needs READ on the field it filters."
    )
)
class InsightFilter:
    department_id: strawberry.ID | None = None
    owner_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


SNAPSHOT_TIME = "When the figures were computed: the snapshot's refresh time if isSnapshot."


# -- salesFunnel ---------------------------------------------------------------------------------


@strawberry.type
class FunnelStage:
    stage: OpportunityStage
    count: int | None = strawberry.field(
        default=None, description="Opportunities in this stage now."
    )
    amount: Decimal | None = strawberry.field(
        default=None, description="Sum of their amounts; null when amounts are not readable."
    )
    conversion_rate: float | None = strawberry.field(
        default=None,
        description=(
            "Of the opportunities that ever reached this stage, the share that reached the next "
            "(LEAD→QUALIFIED→PROPOSAL→NEGOTIATION→WON); null for WON and LOST or without data."
        ),
    )
    median_days_in_stage: float | None = strawberry.field(
        default=None, description="Median length of completed stays in this stage, in days."
    )


@strawberry.type(description="The opportunity funnel over the caller's opportunities.")
class SalesFunnel:
    stages: list[FunnelStage] | None
    total_count: int
    total_amount: Decimal | None
    computed_at: datetime = strawberry.field(
        description="When the figures were computed: the snapshot's refresh time if isSnapshot."
    )
    is_snapshot: bool = strawberry.field(
        default=False,
        description=(
            "True when read from the periodically refreshed snapshot (no time window asked for); "
            "medians are then within 2.5 %."
        ),
    )


# -- serviceBoard --------------------------------------------------------------------------------


@strawberry.type
class StatusCount:
    status: TicketStatus
    count: int


@strawberry.type
class PriorityCount:
    priority: TicketPriority
    count: int
    sla_hours: int


@strawberry.type
class AssigneeBacklog:
    open: int
    in_progress: int
    assignee_pk: strawberry.Private[int | None] = None

    @strawberry.field(description="Null for tickets nobody is assigned to.")
    async def assignee(self, info: strawberry.Info) -> User | None:
        if self.assignee_pk is None:
            return None
        return await info.context.reader.one(info, "User", self.assignee_pk)  # type: ignore[no-any-return]


@strawberry.type(description="Tickets over the caller's customers.")
class ServiceBoard:
    total_count: int
    by_status: list[StatusCount] | None
    median_hours_to_resolve: float | None
    p90_hours_to_resolve: float | None
    satisfaction_average: float | None
    backlog: list[AssigneeBacklog] | None = strawberry.field(
        description="Open and in-progress tickets per assignee, largest backlog first."
    )
    past_sla: int | None = strawberry.field(
        description="Unresolved tickets older than their priority's SLA."
    )
    past_sla_by_priority: list[PriorityCount] | None
    computed_at: datetime = strawberry.field(description=SNAPSHOT_TIME)
    is_snapshot: bool = strawberry.field(
        default=False,
        description=(
            "True when read from the periodically refreshed snapshot (no time window asked for): "
            "counts are as of computedAt, the resolution percentiles within 2.5 %."
        ),
    )


# -- customerSegments ----------------------------------------------------------------------------


@strawberry.type
class SegmentCount:
    segment: RfmSegment
    count: int


@strawberry.type
class LevelCount:
    level: CustomerLevel
    count: int


@strawberry.type
class NamedCount:
    name: str | None = strawberry.field(description="Null for customers with no value recorded.")
    count: int


@strawberry.type(description="How the caller's customers divide up.")
class CustomerSegments:
    total_count: int
    segments: list[SegmentCount] | None
    levels: list[LevelCount] | None
    regions: list[NamedCount] | None
    industries: list[NamedCount] | None
    computed_at: datetime = strawberry.field(description=SNAPSHOT_TIME)
    is_snapshot: bool = strawberry.field(
        default=False,
        description=(
            "True when read from the periodically refreshed snapshot (no time window asked for): "
            "recency is counted to computedAt."
        ),
    )


# -- attention -----------------------------------------------------------------------------------


@strawberry.enum
class AttentionReason(Enum):
    SILENT = "SILENT"
    CHURN_RISK = "CHURN_RISK"
    OVERDUE_FOLLOW_UP = "OVERDUE_FOLLOW_UP"
    URGENT_TICKETS = "URGENT_TICKETS"
    CONTRACT_EXPIRING = "CONTRACT_EXPIRING"
    PAYMENT_OVERDUE = "PAYMENT_OVERDUE"


@strawberry.type(description="A customer that needs someone now, and why.")
class AttentionItem:
    reasons: list[AttentionReason]
    days_silent: int | None = strawberry.field(
        default=None, description="Days since the last interaction (or since creation)."
    )
    follow_up_due_on: date | None = None
    open_urgent_tickets: int | None = None
    contract_ends_on: date | None = strawberry.field(
        default=None, description="The soonest end of an active contract within the window."
    )
    overdue_payments: int | None = None
    customer_pk: strawberry.Private[int] = 0

    @strawberry.field
    async def customer(self, info: strawberry.Info) -> Customer | None:
        return await info.context.reader.one(info, "Customer", self.customer_pk)  # type: ignore[no-any-return]


@strawberry.type
class AttentionEdge:
    cursor: str
    node: AttentionItem


@strawberry.type(description="Customers needing attention, most reasons first, then by id.")
class AttentionConnection:
    edges: list[AttentionEdge]
    nodes: list[AttentionItem]
    page_info: PageInfo
    total_count: int | None = None
    withheld_reasons: list[AttentionReason] = strawberry.field(
        default_factory=list,
        description="Reasons not evaluated because they rest on fields the caller may not read.",
    )
    computed_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "When the customers' facts were taken: the snapshot's refresh time if isSnapshot."
        ),
    )
    is_snapshot: bool = strawberry.field(
        default=False,
        description=(
            "True when read from the periodically refreshed snapshot: "
            "each customer's last interaction, latest follow-up plan, won amounts and open "
            "urgent tickets are as of computedAt; silence and due dates are judged now."
        ),
    )


# -- leaderboard ---------------------------------------------------------------------------------


@strawberry.enum
class InsightPeriod(Enum):
    LAST_7_DAYS = 7
    LAST_30_DAYS = 30
    LAST_90_DAYS = 90
    LAST_365_DAYS = 365


@strawberry.type
class LeaderboardEntry:
    new_customers: int | None
    won_count: int | None
    won_amount: Decimal | None
    interactions_logged: int | None
    contract_value_signed: Decimal | None = strawberry.field(
        default=None, description="Amount of the contracts starting in the period (finance)."
    )
    amount_collected: Decimal | None = strawberry.field(
        default=None, description="Payments received in the period, by contract owner (finance)."
    )
    owner_pk: strawberry.Private[int] = 0

    @strawberry.field
    async def owner(self, info: strawberry.Info) -> User | None:
        return await info.context.reader.one(info, "User", self.owner_pk)  # type: ignore[no-any-return]


@strawberry.type(description="Per owner, over the caller's rows, in the period [from, to).")
class Leaderboard:
    entries: list[LeaderboardEntry]
    from_: datetime = strawberry.field(name="from")
    to: datetime = strawberry.field(description="computedAt: the period ends when counted.")
    computed_at: datetime = strawberry.field(description=SNAPSHOT_TIME)
    is_snapshot: bool = strawberry.field(
        default=False,
        description=(
            "True when read from the periodically refreshed snapshot: "
            "the period is the one ending at computedAt."
        ),
    )
