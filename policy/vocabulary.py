"""The closed vocabularies of access control: actions, scopes, effects and guarded resources."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    EXPORT = "EXPORT"


class Scope(StrEnum):
    """Which rows a rule reaches, relative to the department the role is held in."""

    OWN = "OWN"
    DEPARTMENT = "DEPARTMENT"
    SUBTREE = "SUBTREE"
    ALL = "ALL"


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Resource(StrEnum):
    CUSTOMER = "customer"
    CONTACT = "contact"
    OPPORTUNITY = "opportunity"
    TICKET = "ticket"
    INTERACTION = "interaction"
    TASK = "task"
    CONTRACT = "contract"
    PAYMENT = "payment"
    USER = "user"
    DEPARTMENT = "department"
    AUDIT = "audit"
    POLICY = "policy"
    TOKEN = "token"  # noqa: S105  # the resource name, not a secret


# GraphQL field names per guarded type; a rule names them as `<resource>.<field>`
FIELDS: dict[Resource, tuple[str, ...]] = {
    Resource.CUSTOMER: (
        "name", "kind", "industry", "region", "level", "source", "tags", "creditCode", "phone",
        "email", "idNumber", "address", "totalSpend", "owner", "department", "createdAt",
        "updatedAt", "lastInteractionAt", "contacts", "opportunities", "tickets",
        "interactions", "quality", "version", "contracts", "tasks", "timeline",
    ),
    Resource.CONTACT: (
        "customer", "name", "title", "phone", "email", "isDecisionMaker", "version",
    ),
    Resource.OPPORTUNITY: (
        "customer", "name", "stage", "amount", "expectedCloseDate", "owner", "version",
        "stageHistory",
    ),
    Resource.TICKET: (
        "customer", "title", "status", "priority", "assignee", "openedAt", "resolvedAt",
        "satisfaction", "version",
    ),
    Resource.INTERACTION: ("customer", "channel", "summary", "occurredAt", "author",
                           "nextFollowUpOn"),
    Resource.TASK: ("title", "kind", "status", "dueAt", "assignee", "customer", "completedAt"),
    Resource.CONTRACT: ("customer", "title", "amount", "startsOn", "endsOn", "status", "owner",
                        "payments"),
    Resource.PAYMENT: ("contract", "amount", "dueOn", "paidOn", "status"),
    Resource.USER: ("username", "displayName", "department", "active"),
    Resource.DEPARTMENT: ("name", "parent"),
}  # fmt: skip

# denied unless a rule names them: a wildcard such as `customer.*` does not reach these
SENSITIVE: dict[Resource, frozenset[str]] = {
    Resource.CUSTOMER: frozenset({"phone", "email", "idNumber", "totalSpend", "creditCode"}),
    Resource.CONTACT: frozenset({"phone", "email"}),
    # finance fields, like `customer.totalSpend`
    Resource.CONTRACT: frozenset({"amount"}),
    Resource.PAYMENT: frozenset({"amount"}),
}

# resources whose rows hang off a customer: their row scope is the customer's
CUSTOMER_CHILDREN = frozenset(
    {
        Resource.CONTACT, Resource.OPPORTUNITY, Resource.TICKET, Resource.INTERACTION,
        Resource.TASK, Resource.CONTRACT, Resource.PAYMENT,
    }
)  # fmt: skip


def is_sensitive(resource: Resource, field: str) -> bool:
    return field in SENSITIVE.get(resource, frozenset())
