"""Handover (离职交接): a user's customers, with what is open on them, to another user.

Set-based: one locking read of the customers (with, per row, whether the caller may write the
owner field once it names the new owner), then one `UPDATE … RETURNING` per table. A handover
of 1 000 customers is six statements, and every moved id is named by an owner-change event.
All of it runs in the mutation's savepoint: a failure anywhere moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import User as UserRow
from policy.predicates import ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.filters import CUSTOMER_FILTERS, compile_filter, pk_of
from resolvers.mutations.common import existing_user
from resolvers.records import CONTRACTS, CUSTOMER, CUSTOMERS, OPPORTUNITIES, TASKS, TICKETS
from resolvers.writes import record
from schema.task import Transfer

OPEN_STAGES_EXCLUDED = ("WON", "LOST")
OPEN_TICKETS = ("OPEN", "IN_PROGRESS")
LIVE_CONTRACTS = ("DRAFT", "ACTIVE")


@dataclass(frozen=True)
class Moved:
    customers: list[int]
    opportunities: list[int]
    tickets: list[int]
    tasks: list[int]
    contracts: list[int]

    def answer(self) -> Transfer:
        return Transfer(
            moved_customers=len(self.customers), moved_opportunities=len(self.opportunities),
            moved_tickets=len(self.tickets), moved_tasks=len(self.tasks),
        )  # fmt: skip


async def transfer_customers(
    context: RequestContext, session: AsyncSession, from_id: str, to_id: str, filter: Any
) -> Transfer:
    """The caller needs UPDATE on `customer.owner` on each row both before and after."""
    source = pk_of(from_id, "User", "fromUserId")
    if await session.get(UserRow, source) is None:
        raise BadUserInputError("no such user", argument="fromUserId")
    target = await existing_user(session, to_id, "toUserId")
    if target == source:
        raise BadUserInputError("`toUserId` must differ from `fromUserId`", argument="toUserId")
    decisions = context.decisions
    rows = decisions.rows(Resource.CUSTOMER, Action.UPDATE)
    owner_rule = decisions.field(Resource.CUSTOMER, "owner", Action.UPDATE)
    if owner_rule.is_never:
        raise ForbiddenError("Customer.owner", "Not allowed to write Customer.owner")
    facts = CUSTOMER.scope_columns()
    after = ScopeColumns(literal(target, Integer), CUSTOMERS.c.department_id, CUSTOMERS.c.id)
    where = compile_filter(CUSTOMER, decisions, CUSTOMER_FILTERS, filter, context.cipher)
    statement = (
        select(CUSTOMERS.c.id, case((owner_rule.sql(after), True), else_=False).label("ok"))
        .where(
            CUSTOMERS.c.owner_id == source,
            CUSTOMERS.c.archived_at.is_(None),
            rows.sql(facts),
            owner_rule.sql(facts),
            *where,
        )
        .order_by(CUSTOMERS.c.id)
        .with_for_update()
    )
    found = (await session.execute(statement)).all()
    if any(not row.ok for row in found):
        raise ForbiddenError(
            "Customer.owner", "Not allowed to write Customer.owner in the new owner's scope"
        )
    moved = await move_ownership(session, source, target, [row.id for row in found])
    await audit_moves(context, session, source, target, moved)
    return moved.answer()


async def move_ownership(
    session: AsyncSession, source: int, target: int, customer_ids: list[int] | None
) -> Moved:
    """Customers `customer_ids` of `source` (None: everything `source` owns, on any customer)
    to `target`, with their open opportunities, tickets, tasks and live contracts."""

    def on(table: Any) -> list[Any]:
        return [] if customer_ids is None else [table.c.customer_id.in_(customer_ids or [-1])]

    async def moved(statement: Any) -> list[int]:
        return sorted((await session.execute(statement)).scalars().all())

    customers: list[int] = []
    if customer_ids is None:
        customers = await moved(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.owner_id == source, CUSTOMERS.c.archived_at.is_(None))
            .values(owner_id=target, version=CUSTOMERS.c.version + 1)
            .returning(CUSTOMERS.c.id)
        )
    elif customer_ids:
        customers = await moved(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.id.in_(customer_ids))
            .values(owner_id=target, version=CUSTOMERS.c.version + 1)
            .returning(CUSTOMERS.c.id)
        )
    if customer_ids is not None and not customer_ids:
        return Moved([], [], [], [], [])
    opportunities = await moved(
        update(OPPORTUNITIES)
        .where(
            OPPORTUNITIES.c.owner_id == source,
            OPPORTUNITIES.c.stage.not_in(OPEN_STAGES_EXCLUDED),
            OPPORTUNITIES.c.archived_at.is_(None),
            *on(OPPORTUNITIES),
        )
        .values(owner_id=target, version=OPPORTUNITIES.c.version + 1)
        .returning(OPPORTUNITIES.c.id)
    )
    tickets = await moved(
        update(TICKETS)
        .where(
            TICKETS.c.assignee_id == source,
            TICKETS.c.status.in_(OPEN_TICKETS),
            TICKETS.c.archived_at.is_(None),
            *on(TICKETS),
        )
        .values(assignee_id=target, version=TICKETS.c.version + 1)
        .returning(TICKETS.c.id)
    )
    tasks = await moved(
        update(TASKS)
        .where(and_(TASKS.c.assignee_id == source, TASKS.c.status == "OPEN", *on(TASKS)))
        .values(assignee_id=target)
        .returning(TASKS.c.id)
    )
    contracts = await moved(
        update(CONTRACTS)
        .where(
            CONTRACTS.c.owner_id == source,
            CONTRACTS.c.status.in_(LIVE_CONTRACTS),
            *on(CONTRACTS),
        )
        .values(owner_id=target)
        .returning(CONTRACTS.c.id)
    )
    return Moved(customers, opportunities, tickets, tasks, contracts)


async def audit_moves(
    context: RequestContext, session: AsyncSession, source: int, target: int, moved: Moved
) -> None:
    """One owner-change event per resource, naming every moved id."""
    for resource, field, ids in (
        ("customer", "owner", moved.customers),
        ("opportunity", "owner", moved.opportunities),
        ("ticket", "assignee", moved.tickets),
        ("task", "assignee", moved.tasks),
        ("contract", "owner", moved.contracts),
    ):
        if ids:
            await record(context, session, AuditAction.UPDATE, resource, ids,
                         changes={f"{field}Id": {"old": source, "new": target}},
                         fields=[field])  # fmt: skip


async def still_owned(session: AsyncSession, user_id: int) -> dict[str, int]:
    """What `user_id` still owns or is assigned that is open: counts per kind."""
    from sqlalchemy import func

    def count(table: Any, column: Any, *where: Any) -> Any:
        return select(func.count()).select_from(table).where(column == user_id, *where)

    statement = select(
        count(CUSTOMERS, CUSTOMERS.c.owner_id, CUSTOMERS.c.archived_at.is_(None))
        .scalar_subquery().label("customers"),
        count(OPPORTUNITIES, OPPORTUNITIES.c.owner_id,
              OPPORTUNITIES.c.stage.not_in(OPEN_STAGES_EXCLUDED),
              OPPORTUNITIES.c.archived_at.is_(None)).scalar_subquery().label("opportunities"),
        count(TICKETS, TICKETS.c.assignee_id, TICKETS.c.status.in_(OPEN_TICKETS),
              TICKETS.c.archived_at.is_(None)).scalar_subquery().label("tickets"),
        count(TASKS, TASKS.c.assignee_id, TASKS.c.status == "OPEN")
        .scalar_subquery().label("tasks"),
        count(CONTRACTS, CONTRACTS.c.owner_id, CONTRACTS.c.status.in_(LIVE_CONTRACTS))
        .scalar_subquery().label("contracts"),
    )  # fmt: skip
    row = (await session.execute(statement)).one()
    return dict(row._mapping)
