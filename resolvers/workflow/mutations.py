"""Writes of the sales workflow: tasks, contracts, payments, and edits of follow-ups.

The order of checks is `resolvers.mutations.common`'s: the operation, the row (or the parent
of a new one) in the caller's scope (else NOT_FOUND), every field set writable there (else
FORBIDDEN), the values (else BAD_USER_INPUT). A write whose date is already inside its reminder
window creates the reminder task in the same savepoint, with its SYSTEM audit event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import Contract as ContractRow
from db.models import Customer as CustomerRow
from db.models import Interaction as InteractionRow
from db.models import Payment as PaymentRow
from db.models import Task as TaskRow
from policy.vocabulary import Action, Resource
from resolvers import reminders
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, NotFoundError
from resolvers.filters import pk_of
from resolvers.mutations.common import (
    Facts,
    change_set,
    customer_facts,
    existing_user,
    field_error,
    given,
    load_customer,
    require_writable,
    reread,
    touch_customer,
)
from resolvers.records import CONTRACT, INTERACTION, TASK, RecordSpec
from resolvers.workflow.transfer import transfer_customers
from resolvers.writes import record, require, write
from schema.contract import Contract, Payment
from schema.filters import CustomerFilter
from schema.interaction import Interaction
from schema.task import Task, TaskStatus, Transfer
from schema.workflow_inputs import (
    ContractInput,
    ContractPatch,
    InteractionPatch,
    PaymentInput,
    TaskInput,
    TaskPatch,
)

# API name → model attribute, per type
TASK_FIELDS = {"title": "title", "kind": "kind", "status": "status", "dueAt": "due_at",
               "assignee": "assignee_id", "customer": "customer_id"}  # fmt: skip
CONTRACT_FIELDS = {"title": "title", "amount": "amount", "startsOn": "starts_on",
                   "endsOn": "ends_on", "status": "status"}  # fmt: skip
PAYMENT_FIELDS = {"amount": "amount", "dueOn": "due_on", "paidOn": "paid_on", "status": "status"}
INTERACTION_FIELDS = {"channel": "channel", "summary": "summary", "occurredAt": "occurred_at",
                      "nextFollowUpOn": "next_follow_up_on"}  # fmt: skip


def refuse_nulls(data: dict[str, Any], fields: dict[str, str], model: Any) -> None:
    """A patch may clear an optional field, never a required one (its column is NOT NULL):
    `occurredAt: null` was a database error answered INTERNAL."""
    columns = model.__table__.c
    for name, value in data.items():
        column = fields.get(name)
        if value is None and column in columns and not columns[column].nullable:
            raise BadUserInputError(f"`{name}` cannot be null", argument=f"input.{name}")


async def load_scoped(
    context: RequestContext, session: AsyncSession, spec: RecordSpec, model: Any, pk: int,
    action: Action,
) -> tuple[Any, Facts]:  # fmt: skip
    """A row in the caller's `action` scope, locked, with its customer's facts; else NOT_FOUND."""
    allowed = context.decisions.rows(spec.resource, action)
    if allowed.is_never:
        raise NotFoundError(spec.resource.value)
    statement = (
        select(model, CustomerRow.owner_id, CustomerRow.department_id)
        .select_from(spec.from_clause())
        .where(
            spec.table.c.id == pk,
            spec.rows_sql(allowed, context.principal.user_id),
            *spec.live(),
        )
        .with_for_update(of=spec.table)
        .execution_options(populate_existing=True)
    )
    found = (await session.execute(statement)).one_or_none()
    if found is None:
        raise NotFoundError(spec.resource.value)
    row, owner, department = found
    return row, (owner, department, row.customer_id or 0)


def _title(value: Any, field: str = "title") -> str:
    cleaned = " ".join(str(value or "").split())
    if not cleaned:
        raise field_error(field, "required", "must not be empty")
    if len(cleaned) > 300:
        raise field_error(field, "max_length", "at most 300 characters")
    return cleaned


def _amount(value: Decimal, field: str, *, positive: bool) -> Decimal:
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise field_error(
            field, "range", "must be positive" if positive else "must not be negative"
        )
    if value != value.quantize(Decimal("0.01")) or abs(value) >= Decimal("1e12"):
        raise field_error(field, "precision", "at most 12 digits and 2 decimals")
    return value


def _period(starts_on: date, ends_on: date) -> None:
    if ends_on < starts_on:
        raise field_error("endsOn", "period", "must not be before startsOn")


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise field_error(field, "timezone", "needs a time zone offset")
    return value


def _payment_status(due_on: date, paid_on: date | None) -> str:
    if paid_on is not None:
        return "PAID"
    return "OVERDUE" if due_on < datetime.now(UTC).date() else "PLANNED"


async def _record(
    context: RequestContext, session: AsyncSession, action: AuditAction, resource: Resource,
    pk: int, before: dict[str, Any], after: dict[str, Any],
) -> None:  # fmt: skip
    changes = change_set(resource, before, after)
    await record(context, session, action, resource.value, [pk], changes=changes, fields=changes)


def _queue_system(context: RequestContext, events: list[Any]) -> None:
    context.extras["savepoint_events"].extend(events)


def _values(row: Any, names: dict[str, str]) -> dict[str, Any]:
    return {name: getattr(row, attribute) for name, attribute in names.items()}


@strawberry.type
class WorkflowMutation:
    # -- tasks --------------------------------------------------------------------------------

    @strawberry.mutation(description="A task; without a customer it can only be the caller's.")
    async def create_task(self, info: strawberry.Info, input: TaskInput) -> Task | None:
        context: RequestContext = info.context
        require(context, Resource.TASK, Action.CREATE, "createTask")
        async with write(context) as session:
            data = given(input)
            assignee = context.principal.user_id
            if input.assignee_id not in (None, strawberry.UNSET):
                assignee = await existing_user(session, input.assignee_id, "input.assigneeId")
            customer_pk = None
            facts: Facts = (assignee, None, 0)
            if input.customer_id not in (None, strawberry.UNSET):
                customer_pk = pk_of(input.customer_id, "Customer", "input.customerId")
                customer = await load_customer(
                    context, session, customer_pk, Resource.TASK, Action.CREATE
                )
                facts = customer_facts(customer)
            elif assignee != context.principal.user_id:
                raise NotFoundError("customer")  # another's task must be about a customer
            names = [n.removesuffix("Id") for n in data]
            require_writable(context, Resource.TASK, "Task", names, Action.CREATE, facts)
            kind = data.get("kind") or "CUSTOM"
            row = TaskRow(title=_title(input.title), kind=kind, status="OPEN",
                          due_at=_aware(input.due_at, "dueAt"), assignee_id=assignee,
                          customer_id=customer_pk)  # fmt: skip
            session.add(row)
            await session.flush()
            await _record(context, session, AuditAction.CREATE, Resource.TASK, row.id, {},
                          _values(row, TASK_FIELDS))  # fmt: skip
            pk = row.id
        return await reread(info, "Task", pk)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def update_task(
        self, info: strawberry.Info, id: strawberry.ID, input: TaskPatch
    ) -> Task | None:
        context: RequestContext = info.context
        require(context, Resource.TASK, Action.UPDATE, "updateTask")
        async with write(context) as session:
            pk = pk_of(id, "Task", "id")
            row, facts = await load_scoped(context, session, TASK, TaskRow, pk, Action.UPDATE)
            data = given(input)
            refuse_nulls(data, TASK_FIELDS, TaskRow)
            names = [n.removesuffix("Id") for n in data]
            require_writable(context, Resource.TASK, "Task", names, Action.UPDATE, facts)
            before = _values(row, TASK_FIELDS)
            if "title" in data:
                row.title = _title(data["title"])
            if data.get("dueAt") is not None:
                row.due_at = _aware(data["dueAt"], "dueAt")
            if "assigneeId" in data:
                if data["assigneeId"] is None:
                    raise field_error("assigneeId", "required", "a task needs an assignee")
                row.assignee_id = await existing_user(
                    session, data["assigneeId"], "input.assigneeId"
                )
            if data.get("status") is not None:
                row.status = data["status"]
                row.completed_at = datetime.now(UTC) if row.status == "DONE" else None
            await session.flush()
            await _record(context, session, AuditAction.UPDATE, Resource.TASK, pk, before,
                          _values(row, TASK_FIELDS))  # fmt: skip
        return await reread(info, "Task", pk)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Marks the task DONE now.")
    async def complete_task(self, info: strawberry.Info, id: strawberry.ID) -> Task | None:
        return await WorkflowMutation.update_task(  # type: ignore[no-any-return, misc, call-arg]
            self,  # type: ignore[arg-type]  # the decorated method, called as a function
            info,
            id,
            TaskPatch(status=TaskStatus.DONE),
        )

    # -- contracts and payments ---------------------------------------------------------------

    @strawberry.mutation(description="Owned by the customer's owner; renewal reminded when due.")
    async def create_contract(self, info: strawberry.Info, input: ContractInput) -> Contract | None:
        context: RequestContext = info.context
        require(context, Resource.CONTRACT, Action.CREATE, "createContract")
        async with write(context) as session:
            customer_pk = pk_of(input.customer_id, "Customer", "input.customerId")
            customer = await load_customer(
                context, session, customer_pk, Resource.CONTRACT, Action.CREATE
            )
            names = [n for n in given(input) if n != "customerId"]
            require_writable(context, Resource.CONTRACT, "Contract", names, Action.CREATE,
                             customer_facts(customer))  # fmt: skip
            _period(input.starts_on, input.ends_on)
            row = ContractRow(customer_id=customer_pk, title=_title(input.title),
                              amount=_amount(input.amount, "amount", positive=False),
                              starts_on=input.starts_on, ends_on=input.ends_on, status="ACTIVE",
                              owner_id=customer.owner_id)  # fmt: skip
            session.add(row)
            await session.flush()
            after = _values(row, CONTRACT_FIELDS) | {"ownerId": row.owner_id}
            await _record(context, session, AuditAction.CREATE, Resource.CONTRACT, row.id, {},
                          after)  # fmt: skip
            _queue_system(context, await reminders.remind_now(
                session, reminders.CONTRACT_RENEWAL, [row.id]))  # fmt: skip
            pk = row.id
        return await reread(info, "Contract", pk)  # type: ignore[no-any-return]

    @strawberry.mutation
    async def update_contract(
        self, info: strawberry.Info, id: strawberry.ID, input: ContractPatch
    ) -> Contract | None:
        context: RequestContext = info.context
        require(context, Resource.CONTRACT, Action.UPDATE, "updateContract")
        async with write(context) as session:
            pk = pk_of(id, "Contract", "id")
            row, facts = await load_scoped(
                context, session, CONTRACT, ContractRow, pk, Action.UPDATE
            )
            data = given(input)
            refuse_nulls(data, CONTRACT_FIELDS, ContractRow)
            require_writable(context, Resource.CONTRACT, "Contract", data, Action.UPDATE, facts)
            before = _values(row, CONTRACT_FIELDS)
            for name, value in data.items():
                if value is None:
                    raise field_error(name, "required", "must not be null")
                if name == "title":
                    value = _title(value)
                elif name == "amount":
                    value = _amount(value, "amount", positive=False)
                setattr(row, CONTRACT_FIELDS[name], value)
            _period(row.starts_on, row.ends_on)
            await session.flush()
            await _record(context, session, AuditAction.UPDATE, Resource.CONTRACT, pk, before,
                          _values(row, CONTRACT_FIELDS))  # fmt: skip
            _queue_system(context, await reminders.remind_now(
                session, reminders.CONTRACT_RENEWAL, [pk]))  # fmt: skip
        return await reread(info, "Contract", pk)  # type: ignore[no-any-return]

    @strawberry.mutation(description="PAID with `paidOn`, else PLANNED or OVERDUE by `dueOn`.")
    async def record_payment(self, info: strawberry.Info, input: PaymentInput) -> Payment | None:
        context: RequestContext = info.context
        require(context, Resource.PAYMENT, Action.CREATE, "recordPayment")
        async with write(context) as session:
            contract_pk = pk_of(input.contract_id, "Contract", "input.contractId")
            # the contract must be readable, and the payment creatable on its customer
            contract, facts = await load_scoped(
                context, session, CONTRACT, ContractRow, contract_pk, Action.READ
            )
            if not context.decisions.rows(Resource.PAYMENT, Action.CREATE).holds_for(*facts):
                raise NotFoundError("contract")
            names = [n for n in given(input) if n != "contractId"]
            require_writable(context, Resource.PAYMENT, "Payment", names, Action.CREATE, facts)
            paid_on = None if input.paid_on is strawberry.UNSET else input.paid_on
            row = PaymentRow(contract_id=contract_pk, customer_id=contract.customer_id,
                             amount=_amount(input.amount, "amount", positive=True),
                             due_on=input.due_on, paid_on=paid_on,
                             status=_payment_status(input.due_on, paid_on))  # fmt: skip
            session.add(row)
            await session.flush()
            await _record(context, session, AuditAction.CREATE, Resource.PAYMENT, row.id, {},
                          _values(row, PAYMENT_FIELDS) | {"contractId": contract_pk})  # fmt: skip
            _queue_system(context, await reminders.remind_now(
                session, reminders.PAYMENT_DUE, [row.id]))  # fmt: skip
            pk = row.id
        return await reread(info, "Payment", pk)  # type: ignore[no-any-return]

    # -- follow-ups ---------------------------------------------------------------------------

    @strawberry.mutation(description="Old and new values go to the audit trail.")
    async def update_interaction(
        self, info: strawberry.Info, id: strawberry.ID, input: InteractionPatch
    ) -> Interaction | None:
        from resolvers.mutations.children import validated
        from validation.interaction import validate_interaction_input

        context: RequestContext = info.context
        require(context, Resource.INTERACTION, Action.UPDATE, "updateInteraction")
        async with write(context) as session:
            pk = pk_of(id, "Interaction", "id")
            row, facts = await load_scoped(
                context, session, INTERACTION, InteractionRow, pk, Action.UPDATE
            )
            data = given(input)
            refuse_nulls(data, INTERACTION_FIELDS, InteractionRow)
            require_writable(context, Resource.INTERACTION, "Interaction", data, Action.UPDATE,
                             facts)  # fmt: skip
            before = _values(row, INTERACTION_FIELDS)
            merged = {k: v for k, v in before.items() if v is not None} | data
            values = validated(lambda: validate_interaction_input(merged)).changes()
            for attribute, value in values.items():
                if attribute in INTERACTION_FIELDS.values():
                    setattr(row, attribute, value.value if hasattr(value, "value") else value)
            await session.flush()
            if "occurred_at" in values:
                await touch_customer(session, row.customer_id, row.occurred_at)
            await _record(context, session, AuditAction.UPDATE, Resource.INTERACTION, pk,
                          before, _values(row, INTERACTION_FIELDS))  # fmt: skip
            _queue_system(context, await reminders.remind_now(
                session, reminders.FOLLOW_UP, [pk]))  # fmt: skip
        return await reread(info, "Interaction", pk)  # type: ignore[no-any-return]

    # -- handover -----------------------------------------------------------------------------

    @strawberry.mutation(
        description="离职交接: the customers with their open opportunities, tickets and tasks."
    )
    async def transfer_customers(
        self,
        info: strawberry.Info,
        from_user_id: strawberry.ID,
        to_user_id: strawberry.ID,
        filter: CustomerFilter | None = None,
    ) -> Transfer:
        context: RequestContext = info.context
        require(context, Resource.CUSTOMER, Action.UPDATE, "transferCustomers")
        async with write(context) as session:
            return await transfer_customers(context, session, from_user_id, to_user_id, filter)
