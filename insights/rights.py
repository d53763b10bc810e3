"""What an insight may aggregate: the caller's rows, and per field where it is readable.

The rules every insight follows:
- rows: the aggregate runs over the caller's row scope only (`decisions.rows`), compiled onto the
  customer each record hangs off; a caller with no rows gets zeros, never the totals;
- a *value* (an amount, a satisfaction score, a date whose spread is reported) the caller may not
  read makes every figure built from it null, with one FORBIDDEN error naming the field;
- a *dimension* (the stage or status rows are counted by) hidden on visible rows does the same;
  with no visible rows at all there is nothing to count by, and the counts are simply zero;
- a field readable on some visible rows only (a row-dependent mask) is aggregated over those rows
  (`CASE WHEN <mask> THEN value END`), and when a row in scope was left out the response also
  carries the FORBIDDEN error, as a list with some values withheld does. Refusing outright would
  hide figures the caller may read row by row anyway; the error says the figure is partial.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    FromClause,
    Table,
    case,
    cast,
    func,
    not_,
    null,
    select,
)

from policy.predicates import Predicate, ScopeColumns
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.filters import pk_of
from resolvers.records import CUSTOMERS
from schema.insights import InsightFilter

TYPE_NAMES: dict[Resource, str] = {
    Resource.CUSTOMER: "Customer",
    Resource.OPPORTUNITY: "Opportunity",
    Resource.TICKET: "Ticket",
    Resource.INTERACTION: "Interaction",
    Resource.CONTRACT: "Contract",
    Resource.PAYMENT: "Payment",
}

# every guarded record is a customer or hangs off one: scope facts come from `customers`
CUSTOMER_FACTS = ScopeColumns(CUSTOMERS.c.owner_id, CUSTOMERS.c.department_id, CUSTOMERS.c.id)


@dataclass(frozen=True)
class Gate:
    """Whether a figure built from one field may be shown, and on which rows it is readable."""

    type_field: str
    denied: bool = False
    mask: ColumnElement[bool] | None = None  # None: readable on every row in scope

    def column(self, value: Any) -> Any:
        """`value` where readable, NULL elsewhere (everywhere when denied)."""
        if self.denied:  # typed: a bare NULL in GROUP BY is an error in PostgreSQL
            return cast(null(), value.type)
        if self.mask is None:
            return value
        return case((self.mask, value))

    @property
    def is_partial(self) -> bool:
        return self.mask is not None and not self.denied


class InsightScope:
    """The rows of one resource an insight aggregates, and the gates of its fields."""

    def __init__(self, context: RequestContext, resource: Resource, table: Table) -> None:
        self.context = context
        self.resource = resource
        self.table = table
        self.rows: Predicate = context.decisions.rows(resource, Action.READ)

    @property
    def is_empty(self) -> bool:
        return self.rows.is_never

    def from_clause(self) -> FromClause:
        if self.table is CUSTOMERS:
            return CUSTOMERS
        return self.table.join(CUSTOMERS, CUSTOMERS.c.id == self.table.c.customer_id)

    def where(self) -> list[ColumnElement[bool]]:
        """Row scope as SQL, without archived rows or children of archived customers."""
        clauses = [self.rows.sql(CUSTOMER_FACTS), CUSTOMERS.c.archived_at.is_(None)]
        if self.table is not CUSTOMERS and "archived_at" in self.table.c:
            clauses.append(self.table.c.archived_at.is_(None))
        return clauses

    def value(self, field: str) -> Gate:
        """Gate of a field whose values a figure is computed from."""
        decision = self.context.decisions.field(self.resource, field, Action.READ)
        type_field = f"{TYPE_NAMES[self.resource]}.{field}"
        if decision.is_never:
            return Gate(type_field, denied=True)
        if decision.is_always:
            return Gate(type_field)
        return Gate(type_field, mask=decision.sql(CUSTOMER_FACTS))

    def dimension(self, field: str) -> Gate:
        """Gate of a field rows are counted by: with no rows in scope, nothing is revealed."""
        if self.is_empty:
            return Gate(f"{TYPE_NAMES[self.resource]}.{field}")
        return self.value(field)

    def require_readable(self, field: str, why: str) -> None:
        """Filtering by a field reveals it: it must be readable on every row in scope."""
        if not self.context.decisions.field(self.resource, field, Action.READ).is_always:
            type_field = f"{TYPE_NAMES[self.resource]}.{field}"
            raise ForbiddenError(type_field, f"Not allowed to {why} {type_field}")

    def note_read(self, insight: str, fields: Iterable[str], ids: Iterable[int] = ()) -> None:
        """The audit event: this resource was read through `insight`, with these fields."""
        self.context.reads.note(self.resource.value, ids, [f"insight:{insight}", *fields])


async def rows_of(context: RequestContext, statement: Executable) -> list[Any]:
    """Result rows as plain tuples: the column types of an aggregate are the caller's to know."""
    return list((await context.db.execute(statement)).all())


async def row_of(context: RequestContext, statement: Executable) -> Any:
    return (await context.db.execute(statement)).one()


def withhold(context: RequestContext, *gates: Gate) -> bool:
    """Report every denied gate as FORBIDDEN; True when any figure must be null."""
    denied = False
    for gate in gates:
        if gate.denied:
            context.deny(gate.type_field)
            denied = True
    return denied


async def report_partial(
    scope: InsightScope, where: Sequence[ColumnElement[bool]], gates: Sequence[Gate]
) -> None:
    """FORBIDDEN for each row-dependent gate that left out a row in scope (one extra statement,
    only when some gate is row-dependent: the demo policies have none on aggregated fields)."""
    partial = [gate for gate in gates if gate.is_partial]
    if not partial or scope.is_empty:
        return
    columns = [func.bool_or(not_(gate.mask)).label(f"g{i}") for i, gate in enumerate(partial)]  # type: ignore[arg-type]  # mask is set on partial gates
    statement = select(*columns).select_from(scope.from_clause()).where(*scope.where(), *where)
    row = await row_of(scope.context, statement)
    for gate, left_out in zip(partial, row, strict=True):
        if left_out:
            scope.context.deny(gate.type_field)


@dataclass(frozen=True)
class Window:
    """The `from`/`to` bounds of a filter, `to` exclusive."""

    start: datetime | None
    end: datetime | None

    def clauses(self, column: Any) -> list[ColumnElement[bool]]:
        clauses = []
        if self.start is not None:
            clauses.append(column >= self.start)
        if self.end is not None:
            clauses.append(column < self.end)
        return clauses


def filter_clauses(
    scope: InsightScope,
    filter: InsightFilter | None,
    *,
    owner: tuple[InsightScope, str, Any],
    created: tuple[InsightScope, str, Any],
) -> list[ColumnElement[bool]]:
    """SQL of an `InsightFilter`, after checking the caller may read what it filters by.

    `owner` and `created` name the scope, policy field and column the owner and date bounds
    apply to, which differ per insight (an opportunity's owner, a ticket's opening time).
    """
    if filter is None:
        return []
    clauses: list[ColumnElement[bool]] = []
    customers = InsightScope(scope.context, Resource.CUSTOMER, CUSTOMERS)
    if filter.department_id is not None:
        customers.require_readable("department", "filter by")
        department = pk_of(filter.department_id, "Department", "filter.departmentId")
        tree = scope.context.policy_store.current().departments.subtree(department)
        clauses.append(CUSTOMERS.c.department_id.in_(sorted(tree)))
    if filter.owner_id is not None:
        owner_scope, owner_field, owner_column = owner
        owner_scope.require_readable(owner_field, "filter by")
        clauses.append(owner_column == pk_of(filter.owner_id, "User", "filter.ownerId"))
    if filter.from_ is not None or filter.to is not None:
        if filter.from_ is not None and filter.to is not None and filter.from_ >= filter.to:
            raise BadUserInputError("`from` must be before `to`", argument="filter.from")
        created_scope, created_field, created_column = created
        created_scope.require_readable(created_field, "filter by")
        clauses += Window(filter.from_, filter.to).clauses(created_column)
    return clauses


def on_facts(scope: InsightScope, gate: Gate, facts: ScopeColumns) -> Gate:
    """`gate` with its row-dependent mask compiled onto other scope facts: a snapshot's columns.

    A mask is a predicate over a customer's owner, department and id, so it holds alike on every
    row a snapshot aggregated under the same facts.
    """
    if not gate.is_partial:
        return gate
    field = gate.type_field.split(".", 1)[1]
    decision = scope.context.decisions.field(scope.resource, field, Action.READ)
    return Gate(gate.type_field, mask=decision.sql(facts))


def snapshot_filter(
    context: RequestContext, filter: InsightFilter | None, facts: ScopeColumns
) -> list[ColumnElement[bool]]:
    """The department and (customer) owner bounds of a filter on a snapshot's facts; call
    `filter_clauses` first, which checks the caller may filter by them."""
    clauses: list[ColumnElement[bool]] = []
    if filter is not None and filter.department_id is not None:
        department = pk_of(filter.department_id, "Department", "filter.departmentId")
        tree = context.policy_store.current().departments.subtree(department)
        clauses.append(facts.department_id.in_(sorted(tree)))
    if filter is not None and filter.owner_id is not None:
        clauses.append(facts.owner_id == pk_of(filter.owner_id, "User", "filter.ownerId"))
    return clauses


async def report_partial_on(
    context: RequestContext,
    source: FromClause,
    where: Sequence[ColumnElement[bool]],
    gates: Sequence[Gate],
) -> None:
    """`report_partial` over a snapshot: FORBIDDEN for each gate whose mask left out a row."""
    partial = [gate for gate in gates if gate.is_partial]
    if not partial:
        return
    columns = [func.bool_or(not_(gate.mask)).label(f"g{i}") for i, gate in enumerate(partial)]  # type: ignore[arg-type]  # mask is set on partial gates
    row = await row_of(context, select(*columns).select_from(source).where(*where))
    for gate, left_out in zip(partial, row, strict=True):
        if left_out:
            context.deny(gate.type_field)
