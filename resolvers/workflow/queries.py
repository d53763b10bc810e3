"""Root reads of the sales workflow: `tasks`, `contracts`, `interactions`, with filters."""

from __future__ import annotations

from typing import Any

import strawberry

from resolvers.filters import FilterRule, compile_filter, id_rule
from resolvers.records import (
    CONTRACT,
    CONTRACTS,
    INTERACTION,
    INTERACTIONS,
    TASK,
    TASKS,
    RecordSpec,
)
from resolvers.selection import requested_connection
from schema.contract import Contract
from schema.interaction import Interaction
from schema.node import Connection
from schema.task import Task
from schema.workflow_filters import ContractFilter, InteractionFilter, TaskFilter

TASK_FILTERS = (
    id_rule("assignee_id", "filter.assigneeId", "assignee", "User", TASKS.c.assignee_id),
    FilterRule("status", "filter.status", "status", lambda v: TASKS.c.status == v),
    FilterRule("kind", "filter.kind", "kind", lambda v: TASKS.c.kind == v),
    id_rule("customer_id", "filter.customerId", "customer", "Customer", TASKS.c.customer_id),
    FilterRule("due_before", "filter.dueBefore", "dueAt", lambda v: TASKS.c.due_at < v),
    FilterRule("due_after", "filter.dueAfter", "dueAt", lambda v: TASKS.c.due_at >= v),
)
CONTRACT_FILTERS = (
    id_rule("customer_id", "filter.customerId", "customer", "Customer", CONTRACTS.c.customer_id),
    id_rule("owner_id", "filter.ownerId", "owner", "User", CONTRACTS.c.owner_id),
    FilterRule("status", "filter.status", "status", lambda v: CONTRACTS.c.status == v),
    FilterRule("ends_before", "filter.endsBefore", "endsOn", lambda v: CONTRACTS.c.ends_on < v),
)
INTERACTION_FILTERS = (
    id_rule("customer_id", "filter.customerId", "customer", "Customer", INTERACTIONS.c.customer_id),
    id_rule("author_id", "filter.authorId", "author", "User", INTERACTIONS.c.author_id),
    FilterRule("from_", "filter.from", "occurredAt", lambda v: INTERACTIONS.c.occurred_at >= v),
    FilterRule("to", "filter.to", "occurredAt", lambda v: INTERACTIONS.c.occurred_at < v),
    FilterRule("channel", "filter.channel", "channel", lambda v: INTERACTIONS.c.channel == v),
)


async def _page(
    info: strawberry.Info,
    spec: RecordSpec,
    rules: tuple[FilterRule, ...],
    first: int | None,
    after: str | None,
    filter: Any,
    extra: list[Any] | None = None,
) -> Any:
    context = info.context
    where = [
        *compile_filter(spec, context.decisions, rules, filter, context.cipher),
        *(extra or []),
    ]
    requested = requested_connection(info, spec.type_name)
    return await context.reader.page(spec, requested, first=first, after=after, where=where)


@strawberry.type
class WorkflowQuery:
    @strawberry.field(description="Tasks the caller may see; `filter.mine` for its own.")
    async def tasks(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: TaskFilter | None = None,
    ) -> Connection[Task]:
        extra = []
        if filter is not None and filter.mine:
            # the caller's own assignments: no field of anyone else's row is revealed
            extra.append(TASKS.c.assignee_id == info.context.principal.user_id)
        return await _page(info, TASK, TASK_FILTERS, first, after, filter, extra)  # type: ignore[no-any-return]

    @strawberry.field
    async def contracts(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: ContractFilter | None = None,
    ) -> Connection[Contract]:
        return await _page(info, CONTRACT, CONTRACT_FILTERS, first, after, filter)  # type: ignore[no-any-return]

    @strawberry.field
    async def interactions(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: InteractionFilter | None = None,
    ) -> Connection[Interaction]:
        return await _page(info, INTERACTION, INTERACTION_FILTERS, first, after, filter)  # type: ignore[no-any-return]
