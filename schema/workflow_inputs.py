"""Inputs of the sales workflow's mutations (issue 18)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry import UNSET

from schema.contract import ContractStatus
from schema.interaction import InteractionChannel
from schema.task import TaskKind, TaskStatus


@strawberry.input(description="A task; the assignee defaults to the caller.")
class TaskInput:
    title: str
    due_at: datetime
    kind: TaskKind | None = UNSET
    assignee_id: strawberry.ID | None = UNSET
    customer_id: strawberry.ID | None = UNSET


@strawberry.input
class TaskPatch:
    title: str | None = UNSET
    due_at: datetime | None = UNSET
    status: TaskStatus | None = UNSET
    assignee_id: strawberry.ID | None = UNSET


@strawberry.input(description="A contract; its owner is the customer's owner.")
class ContractInput:
    customer_id: strawberry.ID
    title: str
    amount: Decimal
    starts_on: date
    ends_on: date


@strawberry.input
class ContractPatch:
    title: str | None = UNSET
    amount: Decimal | None = UNSET
    starts_on: date | None = UNSET
    ends_on: date | None = UNSET
    status: ContractStatus | None = UNSET


@strawberry.input(description="A payment under a contract; without `paidOn` it is planned.")
class PaymentInput:
    contract_id: strawberry.ID
    amount: Decimal
    due_on: date
    paid_on: date | None = UNSET


@strawberry.input
class InteractionPatch:
    channel: InteractionChannel | None = UNSET
    summary: str | None = UNSET
    occurred_at: datetime | None = UNSET
    next_follow_up_on: date | None = UNSET
