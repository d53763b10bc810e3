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
    WEBHOOK = "webhook"  # events.webhooks
    CUSTOM_FIELD = "custom_field"
    VOCABULARY = "vocabulary"
    PRIVACY = "privacy"  # personal-data reports (READ) and erasure (DELETE), privacy


# GraphQL field names per guarded type; a rule names them as `<resource>.<field>`
FIELDS: dict[Resource, tuple[str, ...]] = {
    Resource.CUSTOMER: (
        "name", "kind", "industry", "region", "level", "source", "tags", "creditCode", "phone",
        "email", "idNumber", "address", "totalSpend", "owner", "department", "createdAt",
        "updatedAt", "lastInteractionAt", "contacts", "opportunities", "tickets",
        "interactions", "quality", "version", "segment", "consents", "contracts", "tasks",
        "timeline",
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

# which fields are denied unless a rule names them is policy data: `sensitive_fields`, seeded by
# migrations 0013 and 0011 and read with every snapshot (`policy.custom_fields.FieldCatalog`)

# fields computed from other records: readable only where what they are computed from is too
DERIVED: dict[tuple[Resource, str], tuple[tuple[Resource, str], ...]] = {
    # the RFM segment is worked out from the won deals' stage, dates and amounts
    (Resource.CUSTOMER, "segment"): ((Resource.OPPORTUNITY, "stage"),
                                     (Resource.OPPORTUNITY, "amount")),
}  # fmt: skip

# resources whose rows hang off a customer: their row scope is the customer's
CUSTOMER_CHILDREN = frozenset(
    {
        Resource.CONTACT, Resource.OPPORTUNITY, Resource.TICKET, Resource.INTERACTION,
        Resource.TASK, Resource.CONTRACT, Resource.PAYMENT,
    }
)  # fmt: skip
