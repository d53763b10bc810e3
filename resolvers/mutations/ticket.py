"""createTicket, updateTicket: the status lifecycle sets and clears `resolvedAt`."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import Ticket as TicketRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.mutations.children import (
    ChildKind,
    prepare_create,
    prepare_update,
    record_change,
    validated,
)
from resolvers.mutations.common import check_version, existing_user, reread, touch_customer
from resolvers.writes import require, write
from schema.inputs import TicketInput, TicketPatch
from schema.ticket import Ticket
from validation.ticket import validate_ticket_input, validate_ticket_patch

TICKET = ChildKind(
    type_name="Ticket",
    resource=Resource.TICKET,
    model=TicketRow,
    attributes={"title": "title", "priority": "priority", "status": "status",
                "satisfaction": "satisfaction"},
    references={"assigneeId": ("assignee", "assignee_id")},
)  # fmt: skip


async def _assignee(session: AsyncSession, references: dict[str, Any]) -> int | None:
    given = references.get("assigneeId")
    return None if given is None else await existing_user(session, given, "assigneeId")


async def _now(session: AsyncSession) -> Any:
    return (await session.execute(select(func.now()))).scalar_one()


@strawberry.type
class TicketMutation:
    @strawberry.mutation
    async def create_ticket(self, info: strawberry.Info, input: TicketInput) -> Ticket | None:
        context: RequestContext = info.context
        require(context, Resource.TICKET, Action.CREATE, "createTicket")
        async with write(context) as session:
            prepared = await prepare_create(context, session, TICKET, input)
            normalised = validated(lambda: validate_ticket_input(prepared.data))
            values = normalised.changes()
            assignee = await _assignee(session, prepared.references)
            row = TicketRow(customer_id=prepared.facts[2], assignee_id=assignee, version=1)
            TICKET.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(context, TICKET, row, creating=True)
            after = {TICKET.api_names[a]: v for a, v in values.items()}
            if normalised.resolved_at_change:
                row.resolved_at = after["resolvedAt"] = await _now(session)
            if "assigneeId" in prepared.references:
                after["assigneeId"] = assignee
            session.add(row)
            await session.flush()
            await touch_customer(session, row.customer_id)
            await record_change(context, session, TICKET, AuditAction.CREATE, row,
                                custom_before, after | custom_after)  # fmt: skip
            pk = row.id
        return await reread(info, "Ticket", pk)  # type: ignore[no-any-return]

    @strawberry.mutation(description="An illegal status move is BAD_USER_INPUT naming the next.")
    async def update_ticket(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        input: TicketPatch,
        expected_version: int | None = None,
    ) -> Ticket | None:
        context: RequestContext = info.context
        require(context, Resource.TICKET, Action.UPDATE, "updateTicket")
        async with write(context) as session:
            row, prepared = await prepare_update(context, session, TICKET, id, input)
            stored = {"status": row.status, "satisfaction": row.satisfaction}
            normalised = validated(lambda: validate_ticket_patch(stored, prepared.data))
            check_version(row, "ticket", expected_version)
            values = normalised.changes()
            before = TICKET.values_of(row, context.cipher) | {"resolvedAt": row.resolved_at}
            after = {TICKET.api_names[a]: v for a, v in values.items()}
            if "assigneeId" in prepared.references:
                row.assignee_id = after["assigneeId"] = await _assignee(
                    session, prepared.references
                )
            if normalised.resolved_at_change is True:
                row.resolved_at = after["resolvedAt"] = await _now(session)
            elif normalised.resolved_at_change is False:
                row.resolved_at = after["resolvedAt"] = None
            TICKET.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(
                context, TICKET, row, creating=False
            )
            row.version = row.version + 1
            await session.flush()
            await touch_customer(session, row.customer_id)
            await record_change(context, session, TICKET, AuditAction.UPDATE, row,
                                before | custom_before, after | custom_after)  # fmt: skip
            pk = row.id
        return await reread(info, "Ticket", pk)  # type: ignore[no-any-return]
