"""Types of the administration API: rules, role assignments, tokens, explanations."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry


@strawberry.enum
class Action(Enum):
    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    EXPORT = "EXPORT"


@strawberry.enum(description="Rows a rule reaches, relative to the role's department.")
class Scope(Enum):
    OWN = "OWN"
    DEPARTMENT = "DEPARTMENT"
    SUBTREE = "SUBTREE"
    ALL = "ALL"


@strawberry.enum(description="A DENY wins over any ALLOW.")
class Effect(Enum):
    ALLOW = "allow"
    DENY = "deny"


@strawberry.type
class PolicyRule:
    role: str
    department: str = strawberry.field(description="A department id, or * for every department.")
    resource: str
    action: Action
    scope: Scope
    effect: Effect


@strawberry.input
class PolicyRuleInput:
    role: str
    department: str = strawberry.field(description="A department id, or * for every department.")
    resource: str = strawberry.field(
        description='e.g. "customer", "customer.phone", "customer.*", "customer.{phone,email}"'
    )
    action: Action
    scope: Scope = Scope.OWN
    effect: Effect = Effect.ALLOW


@strawberry.input
class CreateDepartmentInput:
    name: str
    parent_id: strawberry.ID | None = None


@strawberry.input
class CreateUserInput:
    username: str
    password: str
    display_name: str | None = None
    department_id: strawberry.ID


@strawberry.input
class IssuePartnerTokenInput:
    partner_name: str
    scopes: list[str]
    customer_ids: list[strawberry.ID] | None = None
    expires_in_days: int | None = None


@strawberry.type(description="The secret is shown once and never stored in clear.")
class IssuedToken:
    id: strawberry.ID
    token: str
    expires_at: datetime


@strawberry.type
class PartnerTokenInfo:
    id: strawberry.ID
    partner_name: str
    scopes: list[str]
    customer_ids: list[strawberry.ID] | None
    issued_by: str | None
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@strawberry.type
class MatchedRule:
    rule: PolicyRule
    via_role: str
    held_in_department: str
    department_path: list[str]


@strawberry.type(description="Why a user may or may not do something, rule by rule.")
class AccessExplanation:
    allowed: bool
    reach: str = strawberry.field(description="ALL, SOME (row-dependent) or NONE.")
    matched: list[MatchedRule]
    note: str
