"""Root reads of the records that hang off a customer: contacts, opportunities, tickets."""

from __future__ import annotations

from typing import Any

import strawberry

from resolvers.filters import FilterRule, compile_filter, id_rule, prefix_clause
from resolvers.pagination import argument_given
from resolvers.records import (
    CONTACT,
    CONTACTS,
    OPPORTUNITIES,
    OPPORTUNITY,
    TICKET,
    TICKETS,
    RecordSpec,
)
from resolvers.selection import requested_connection
from schema.contact import Contact
from schema.filters import ContactFilter, OpportunityFilter, TicketFilter
from schema.node import Connection
from schema.opportunity import Opportunity
from schema.ticket import Ticket

CONTACT_FILTERS = (
    id_rule("customer_id", "filter.customerId", "customer", "Customer", CONTACTS.c.customer_id),
    FilterRule("name_prefix", "filter.namePrefix", "name", prefix_clause(CONTACTS.c.name)),
    FilterRule(
        "is_decision_maker", "filter.isDecisionMaker", "isDecisionMaker",
        lambda v: CONTACTS.c.is_decision_maker == v,
    ),
)  # fmt: skip
OPPORTUNITY_FILTERS = (
    id_rule(
        "customer_id", "filter.customerId", "customer", "Customer", OPPORTUNITIES.c.customer_id
    ),
    FilterRule("stage", "filter.stage", "stage", lambda v: OPPORTUNITIES.c.stage == v),
    id_rule("owner_id", "filter.ownerId", "owner", "User", OPPORTUNITIES.c.owner_id),
)
TICKET_FILTERS = (
    id_rule("customer_id", "filter.customerId", "customer", "Customer", TICKETS.c.customer_id),
    FilterRule("status", "filter.status", "status", lambda v: TICKETS.c.status == v),
    FilterRule("priority", "filter.priority", "priority", lambda v: TICKETS.c.priority == v),
    id_rule("assignee_id", "filter.assigneeId", "assignee", "User", TICKETS.c.assignee_id),
)


async def _page(
    info: strawberry.Info,
    spec: RecordSpec,
    rules: tuple[FilterRule, ...],
    first: int | None,
    after: str | None,
    filter: Any,
    last: int | None = None,
    before: str | None = None,
) -> Any:
    context = info.context
    where = compile_filter(spec, context.decisions, rules, filter, context.cipher)
    requested = requested_connection(info, spec.type_name)
    return await context.reader.page(
        spec, requested, first=first, after=after, where=where,
        last=last, before=before, first_given=argument_given(info, "first"),
    )  # fmt: skip


@strawberry.type
class RecordsQuery:
    @strawberry.field
    async def contacts(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: ContactFilter | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Contact]:
        return await _page(info, CONTACT, CONTACT_FILTERS, first, after, filter, last, before)  # type: ignore[no-any-return]

    @strawberry.field
    async def opportunities(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: OpportunityFilter | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Opportunity]:
        return await _page(
            info, OPPORTUNITY, OPPORTUNITY_FILTERS, first, after, filter, last, before
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def tickets(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: TicketFilter | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Ticket]:
        return await _page(info, TICKET, TICKET_FILTERS, first, after, filter, last, before)  # type: ignore[no-any-return]
