"""How each GraphQL type is read from its table: fields, columns, scope facts and conversions.

One `RecordSpec` per type is the single description every read path uses — root lists, nested
connections, `node(id)` and related objects — so a field cannot be guarded on one path and
forgotten on another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, case, literal, null, or_

from db.crypto import CLEAR, KEY_SEPARATOR
from db.models import (
    Contact,
    Contract,
    Customer,
    Department,
    Interaction,
    Opportunity,
    Payment,
    Task,
    Ticket,
    User,
)
from policy.predicates import Predicate, ScopeColumns
from policy.vocabulary import Resource
from resolvers.rfm import customer_segment
from schema import contact as contact_schema
from schema import contract as contract_schema
from schema import customer as customer_schema
from schema import interaction as interaction_schema
from schema import opportunity as opportunity_schema
from schema import task as task_schema
from schema import ticket as ticket_schema
from schema import user as user_schema
from schema.contract import ContractStatus, PaymentStatus
from schema.enums import (
    CustomerKind,
    CustomerLevel,
    OpportunityStage,
    RfmSegment,
    TicketPriority,
    TicketStatus,
)
from schema.interaction import InteractionChannel
from schema.task import TaskKind, TaskStatus

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]  # declarative tables are Tables
CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
OPPORTUNITIES: Table = Opportunity.__table__  # type: ignore[assignment]
TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
INTERACTIONS: Table = Interaction.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
DEPARTMENTS: Table = Department.__table__  # type: ignore[assignment]
TASKS: Table = Task.__table__  # type: ignore[assignment]
CONTRACTS: Table = Contract.__table__  # type: ignore[assignment]
PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]


def _enum(kind: type[Enum]) -> Callable[[Any], Any]:
    members = {m.value: m for m in kind}

    def convert(value: Any) -> Any:
        return None if value is None else members[value]

    convert.enum = kind  # type: ignore[attr-defined]  # lets SQL writers map values to names
    return convert


@dataclass(frozen=True)
class FieldSpec:
    """One GraphQL field: its policy name, its attribute, and where its value comes from."""

    name: str
    attr: str
    column: str | None = None  # None for relations: their value comes from a loader
    convert: Callable[[Any], Any] | None = None
    encrypted_as: str | None = None  # FieldCipher label of an encrypted column
    target: str | None = None  # type name of a related record or connection
    foreign_key: str | None = None  # attribute holding a related record's id
    children_of: str | None = None  # for connections: the child spec's link column
    # `customFields`: one JSON object whose keys are guarded one by one (`resolvers.masking`)
    is_custom: bool = False
    # a value computed in SQL rather than read from `column` (then only a label)
    expression: Callable[[], ColumnElement[Any]] | None = None


@dataclass(frozen=True)
class RecordSpec:
    type_name: str
    resource: Resource
    table: Table
    build: type
    fields: Mapping[str, FieldSpec]
    private: Mapping[str, str]  # attribute → column, always fetched
    # tables the scope facts come from, and how they join to `table`
    scope_columns: Callable[[], ScopeColumns]
    joins_customer: bool = False
    has_archive: bool = True
    # the customer is optional (a task): joined outer, its absent facts match no scoped rule
    customer_optional: bool = False
    # a row assigned to the caller is in its scope whatever its customer (the caller's tasks)
    assignee_column: str | None = None
    relations: Mapping[str, FieldSpec] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "relations",
            {name: f for name, f in self.fields.items() if f.column is None},
        )

    def from_clause(self) -> FromClause:
        if self.joins_customer:
            return self.table.join(
                CUSTOMERS,
                CUSTOMERS.c.id == self.table.c.customer_id,
                isouter=self.customer_optional,
            )
        return self.table

    def rows_sql(self, allowed: Predicate, user_id: int | None) -> ColumnElement[bool]:
        """The row scope as SQL on `from_clause()`: the customer's, plus the caller's own
        assigned rows for a type with an assignee (once any rule opens the resource)."""
        clause = allowed.sql(self.scope_columns())
        if self.assignee_column is None or user_id is None or allowed.is_never:
            return clause
        return or_(clause, self.table.c[self.assignee_column] == user_id)

    def live(self) -> list[ColumnElement[bool]]:
        """Soft-deleted rows, and children of archived customers, are not there for readers."""
        clauses: list[ColumnElement[bool]] = []
        if self.has_archive:
            clauses.append(self.table.c.archived_at.is_(None))
        if self.joins_customer:
            clauses.append(CUSTOMERS.c.archived_at.is_(None))
        return clauses


def _customer_facts() -> ScopeColumns:
    return ScopeColumns(CUSTOMERS.c.owner_id, CUSTOMERS.c.department_id, CUSTOMERS.c.id)


def _user_facts() -> ScopeColumns:
    return ScopeColumns(USERS.c.id, USERS.c.department_id, literal(None))


def _department_facts() -> ScopeColumns:
    return ScopeColumns(null(), DEPARTMENTS.c.id, literal(None))


def _f(name: str, attr: str, column: str | None = None, **kw: Any) -> tuple[str, FieldSpec]:
    return name, FieldSpec(name=name, attr=attr, column=column, **kw)


def sealed_with_key(table: Table, column: str, clear: str | None = None) -> ColumnElement[Any]:
    """An encrypted column as reads select it: `value|wrapped data key` when the row has a
    data key (db.crypto decrypts that string alone), so no read needs a second statement.
    With `clear`, a row whose value still sits in that clear column (written before it was
    encrypted) gives `=value`, which db.crypto passes through."""
    value, data_key = table.c[column], table.c.data_key
    sealed = case((data_key.is_(None), value), else_=value + KEY_SEPARATOR + data_key)
    if clear is None:
        return sealed
    return case((value.is_(None), CLEAR + table.c[clear]), else_=sealed)


def _sealed(
    table: Table, column: str, clear: str | None = None
) -> Callable[[], ColumnElement[Any]]:
    return lambda: sealed_with_key(table, column, clear)


def _segment() -> ColumnElement[Any]:
    return customer_segment()


CUSTOM_FIELDS = "customFields"
_CUSTOM = _f(CUSTOM_FIELDS, "custom_fields", "custom_fields", is_custom=True)


CUSTOMER = RecordSpec(
    type_name="Customer",
    resource=Resource.CUSTOMER,
    table=CUSTOMERS,
    build=customer_schema.Customer,
    fields=dict(
        [
            _f("name", "name", "name"),
            _f("kind", "kind", "kind", convert=_enum(CustomerKind)),
            _f("industry", "industry", "industry"),
            _f("region", "region", "region"),
            _f("level", "level", "level", convert=_enum(CustomerLevel)),
            _f("source", "source", "source"),
            _f("tags", "tags", "tags"),
            _f("creditCode", "credit_code", "credit_code"),
            _f(
                "phone",
                "phone",
                "phone_enc",
                encrypted_as="customer.phone",
                expression=_sealed(CUSTOMERS, "phone_enc"),
            ),
            _f(
                "email",
                "email",
                "email_enc",
                encrypted_as="customer.email",
                expression=_sealed(CUSTOMERS, "email_enc", "email"),
            ),
            _f(
                "idNumber",
                "id_number",
                "id_number_enc",
                encrypted_as="customer.id_number",
                expression=_sealed(CUSTOMERS, "id_number_enc"),
            ),
            _f(
                "address",
                "address",
                "address_enc",
                encrypted_as="customer.address",
                expression=_sealed(CUSTOMERS, "address_enc", "address"),
            ),
            _f("totalSpend", "total_spend", "total_spend"),
            _f("createdAt", "created_at", "created_at"),
            _f("updatedAt", "updated_at", "updated_at"),
            _f("lastInteractionAt", "last_interaction_at", "last_interaction_at"),
            _f("version", "version", "version"),
            _f("owner", "owner", target="User", foreign_key="owner_id"),
            _f("department", "department", target="Department", foreign_key="department_id"),
            _f("contacts", "contacts", target="Contact"),
            _f("opportunities", "opportunities", target="Opportunity"),
            _f("tickets", "tickets", target="Ticket"),
            _f("interactions", "interactions", target="Interaction"),
            _f("quality", "quality"),  # computed by resolvers.mutations.quality
            _f("segment", "segment", "segment", convert=_enum(RfmSegment), expression=_segment),
            _CUSTOM,
            _f("contracts", "contracts", target="Contract"),
            _f("tasks", "tasks", target="Task"),
            _f("timeline", "timeline"),  # computed by resolvers.timeline
        ]
    ),
    private={"pk": "id", "owner_id": "owner_id", "department_id": "department_id"},
    scope_columns=_customer_facts,
)

CONTACT = RecordSpec(
    type_name="Contact",
    resource=Resource.CONTACT,
    table=CONTACTS,
    build=contact_schema.Contact,
    fields=dict(
        [
            _f("name", "name", "name"),
            _f("title", "title", "title"),
            _f(
                "phone",
                "phone",
                "phone_enc",
                encrypted_as="contact.phone",
                expression=_sealed(CONTACTS, "phone_enc"),
            ),
            _f(
                "email",
                "email",
                "email_enc",
                encrypted_as="contact.email",
                expression=_sealed(CONTACTS, "email_enc", "email"),
            ),
            _f("isDecisionMaker", "is_decision_maker", "is_decision_maker"),
            _CUSTOM,
            _f("version", "version", "version"),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
)

OPPORTUNITY = RecordSpec(
    type_name="Opportunity",
    resource=Resource.OPPORTUNITY,
    table=OPPORTUNITIES,
    build=opportunity_schema.Opportunity,
    fields=dict(
        [
            _f("name", "name", "name"),
            _f("stage", "stage", "stage", convert=_enum(OpportunityStage)),
            _f("amount", "amount", "amount"),
            _f("expectedCloseDate", "expected_close_date", "expected_close_date"),
            _CUSTOM,
            _f("version", "version", "version"),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
            _f("owner", "owner", target="User", foreign_key="owner_id"),
            _f("stageHistory", "stage_history"),  # computed by resolvers.stage_history
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "owner_id": "owner_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
)

TICKET = RecordSpec(
    type_name="Ticket",
    resource=Resource.TICKET,
    table=TICKETS,
    build=ticket_schema.Ticket,
    fields=dict(
        [
            _f("title", "title", "title"),
            _f("status", "status", "status", convert=_enum(TicketStatus)),
            _f("priority", "priority", "priority", convert=_enum(TicketPriority)),
            _f("openedAt", "opened_at", "opened_at"),
            _f("resolvedAt", "resolved_at", "resolved_at"),
            _f("satisfaction", "satisfaction", "satisfaction"),
            _CUSTOM,
            _f("version", "version", "version"),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
            _f("assignee", "assignee", target="User", foreign_key="assignee_id"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "assignee_id": "assignee_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
)

INTERACTION = RecordSpec(
    type_name="Interaction",
    resource=Resource.INTERACTION,
    table=INTERACTIONS,
    build=interaction_schema.Interaction,
    fields=dict(
        [
            _f("channel", "channel", "channel", convert=_enum(InteractionChannel)),
            _f("summary", "summary", "summary"),
            _f("occurredAt", "occurred_at", "occurred_at"),
            _f("nextFollowUpOn", "next_follow_up_on", "next_follow_up_on"),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
            _f("author", "author", target="User", foreign_key="author_id"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "author_id": "author_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
    has_archive=False,
)

TASK = RecordSpec(
    type_name="Task",
    resource=Resource.TASK,
    table=TASKS,
    build=task_schema.Task,
    fields=dict(
        [
            _f("title", "title", "title"),
            _f("kind", "kind", "kind", convert=_enum(TaskKind)),
            _f("status", "status", "status", convert=_enum(TaskStatus)),
            _f("dueAt", "due_at", "due_at"),
            _f("completedAt", "completed_at", "completed_at"),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
            _f("assignee", "assignee", target="User", foreign_key="assignee_id"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "assignee_id": "assignee_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
    has_archive=False,
    customer_optional=True,
    assignee_column="assignee_id",
)

CONTRACT = RecordSpec(
    type_name="Contract",
    resource=Resource.CONTRACT,
    table=CONTRACTS,
    build=contract_schema.Contract,
    fields=dict(
        [
            _f("title", "title", "title"),
            _f("amount", "amount", "amount"),
            _f("startsOn", "starts_on", "starts_on"),
            _f("endsOn", "ends_on", "ends_on"),
            _f("status", "status", "status", convert=_enum(ContractStatus)),
            _f("customer", "customer", target="Customer", foreign_key="customer_id"),
            _f("owner", "owner", target="User", foreign_key="owner_id"),
            _f("payments", "payments", target="Payment"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "owner_id": "owner_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
    has_archive=False,
)

PAYMENT = RecordSpec(
    type_name="Payment",
    resource=Resource.PAYMENT,
    table=PAYMENTS,
    build=contract_schema.Payment,
    fields=dict(
        [
            _f("amount", "amount", "amount"),
            _f("dueOn", "due_on", "due_on"),
            _f("paidOn", "paid_on", "paid_on"),
            _f("status", "status", "status", convert=_enum(PaymentStatus)),
            _f("contract", "contract", target="Contract", foreign_key="contract_id"),
        ]
    ),
    private={"pk": "id", "customer_id": "customer_id", "contract_id": "contract_id"},
    scope_columns=_customer_facts,
    joins_customer=True,
    has_archive=False,
)

USER = RecordSpec(
    type_name="User",
    resource=Resource.USER,
    table=USERS,
    build=user_schema.User,
    fields=dict(
        [
            _f("username", "username", "username"),
            _f("displayName", "display_name", "display_name"),
            _f("active", "active", "is_active"),
            _f("department", "department", target="Department", foreign_key="department_id"),
        ]
    ),
    private={"pk": "id", "department_id": "department_id"},
    scope_columns=_user_facts,
    has_archive=False,
)

DEPARTMENT = RecordSpec(
    type_name="Department",
    resource=Resource.DEPARTMENT,
    table=DEPARTMENTS,
    build=user_schema.Department,
    fields=dict(
        [
            _f("name", "name", "name"),
            _f("parent", "parent", target="Department", foreign_key="parent_id"),
        ]
    ),
    private={"pk": "id", "parent_id": "parent_id"},
    scope_columns=_department_facts,
    has_archive=False,
)

SPECS: dict[str, RecordSpec] = {
    spec.type_name: spec
    for spec in (
        CUSTOMER, CONTACT, OPPORTUNITY, TICKET, INTERACTION, TASK, CONTRACT, PAYMENT, USER,
        DEPARTMENT,
    )
}  # fmt: skip

# connection fields of a parent type: field name → (child type, link column on the child)
CHILDREN: dict[tuple[str, str], str] = {
    ("Customer", "contacts"): "Contact",
    ("Customer", "opportunities"): "Opportunity",
    ("Customer", "tickets"): "Ticket",
    ("Customer", "interactions"): "Interaction",
}

# connections only the general executor serves (issue 18): (parent type, field) → (child type,
# link column on the child). They are kept out of `CHILDREN`, which the direct and SQL-JSON
# executors compile, so a query selecting them falls back to graphql-core as a whole: tasks
# have a second scope (the assignee) and payments hang off a contract, neither of which those
# compilers know.
LINKED_CHILDREN: dict[tuple[str, str], tuple[str, str]] = {
    ("Customer", "contracts"): ("Contract", "customer_id"),
    ("Customer", "tasks"): ("Task", "customer_id"),
    ("Contract", "payments"): ("Payment", "contract_id"),
}


def child_link(parent_type: str, field: str) -> tuple[str, str]:
    """(child type, link column) of a connection field of `parent_type`."""
    found = CHILDREN.get((parent_type, field))
    return (found, "customer_id") if found is not None else LINKED_CHILDREN[(parent_type, field)]
