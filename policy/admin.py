"""Changing the rules: validated, lock-out safe, announced to every process.

Functions take the caller's session and never commit; the caller writes the audit event of the
change in the same transaction, and `announce_change` makes every process reload on commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Department, PolicyRule, User
from policy.consent import CONSENT_PTYPE, ConsentRequirement, requirements_of
from policy.custom_fields import CUSTOM_FIELD_RESOURCES, CUSTOM_PREFIX
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import DepartmentTree, PolicySnapshot, announce_change, new_enforcer
from policy.vocabulary import FIELDS, Action, Resource
from policy.vocabulary import Effect as Effect  # re-exported: resolvers.admin imports them here
from policy.vocabulary import Scope as Scope

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PURPOSE = re.compile(r"^[a-z][a-z0-9_.-]{0,59}$")  # as `recordConsent` stores purposes
# resources whose rows belong to a customer (the consents are the customer's)
CONSENT_RESOURCES = frozenset(
    {Resource.CUSTOMER, Resource.CONTACT, Resource.OPPORTUNITY, Resource.TICKET,
     Resource.INTERACTION, Resource.CONTRACT, Resource.TASK}
)  # fmt: skip
PATTERN = re.compile(
    r"^[a-z*][a-z_*]*(\.([A-Za-z*?]+|\{[A-Za-z]+(,[A-Za-z]+)*\}|cf\.([A-Za-z0-9_*?]+)))?$"
)


class PolicyInputError(ValueError):
    """A rule or assignment is malformed; `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LockoutError(RuntimeError):
    """The change would leave nobody able to edit policies."""


@dataclass(frozen=True)
class Rule:
    role: str
    department: str  # a department id, or "*"
    resource: str
    action: Action
    scope: Scope
    effect: Effect

    def line(self) -> tuple[str, ...]:
        return (
            "p", self.role, self.department, self.resource, self.action.value,
            self.scope.value, self.effect.value,
        )  # fmt: skip

    @classmethod
    def from_line(cls, line: Sequence[str]) -> Rule:
        _, role, department, resource, action, scope, effect = line[:7]
        return cls(role, department, resource, Action(action), Scope(scope), Effect(effect))


def check_resource_pattern(resource: str) -> None:
    if not PATTERN.match(resource):
        raise PolicyInputError("resource", "expected `customer`, `customer.phone`, "
                               "`customer.*` or `customer.{phone,email}`")  # fmt: skip
    root, _, field = resource.partition(".")
    if "*" in root:
        return
    try:
        kind = Resource(root)
    except ValueError:
        known = ", ".join(r.value for r in Resource)
        raise PolicyInputError("resource", f"unknown resource {root!r}; known: {known}") from None
    if field.startswith(CUSTOM_PREFIX):
        if kind not in CUSTOM_FIELD_RESOURCES:
            raise PolicyInputError("resource", f"{kind.value} has no custom fields")
        return  # a rule may name a key before it is defined, and outlive its retirement
    if field and not any(c in field for c in "*?{") and field not in FIELDS.get(kind, ()):
        raise PolicyInputError("resource", f"{kind.value} has no field {field!r}")
    if field.startswith("{"):
        unknown = [f for f in field[1:-1].split(",") if f not in FIELDS.get(kind, ())]
        if unknown:
            raise PolicyInputError("resource", f"{kind.value} has no field {unknown[0]!r}")


async def _department_exists(session: AsyncSession, department: str) -> bool:
    if not department.isdigit():
        return False
    found = await session.execute(select(Department.id).where(Department.id == int(department)))
    return found.first() is not None


async def validate_rule(session: AsyncSession, rule: Rule) -> None:
    if not ROLE_NAME.match(rule.role):
        raise PolicyInputError("role", "lower-case letters, digits and _, starting with a letter")
    if rule.department != "*" and not await _department_exists(session, rule.department):
        raise PolicyInputError("department", "no such department; use a department id or *")
    check_resource_pattern(rule.resource)


async def current_lines(session: AsyncSession) -> list[tuple[str, ...]]:
    rows = (await session.execute(select(PolicyRule).order_by(PolicyRule.id))).scalars()
    return [(r.ptype, r.v0, r.v1, r.v2, r.v3, r.v4, r.v5) for r in rows]


def _padded(line: Sequence[str]) -> tuple[str, ...]:
    return tuple(line) + ("",) * (7 - len(line))


async def _insert_line(session: AsyncSession, line: Sequence[str]) -> bool:
    values = dict(zip(("ptype", "v0", "v1", "v2", "v3", "v4", "v5"), _padded(line), strict=True))
    statement = insert(PolicyRule).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement.returning(PolicyRule.id))
    return result.first() is not None


async def _delete_line(session: AsyncSession, line: Sequence[str]) -> bool:
    """Delete exactly this line: every column compared, never an `IN` over several rules."""
    columns = (PolicyRule.ptype, PolicyRule.v0, PolicyRule.v1, PolicyRule.v2, PolicyRule.v3,
               PolicyRule.v4, PolicyRule.v5)  # fmt: skip
    condition = and_(*(c == v for c, v in zip(columns, _padded(line), strict=True)))
    result = await session.execute(delete(PolicyRule).where(condition).returning(PolicyRule.id))
    return result.first() is not None


async def ensure_policy_editable(session: AsyncSession, lines: Iterable[Sequence[str]]) -> None:
    """Refuse a rule set under which no active user could still create and remove rules."""
    rules: list[tuple[str, ...]] = [tuple(line) for line in lines]
    departments = (await session.execute(select(Department.id, Department.parent_id))).all()
    tree = DepartmentTree({d.id: d.parent_id for d in departments}, {})
    snapshot = PolicySnapshot(version=-1, enforcer=new_enforcer(rules), departments=tree,
                              lines=tuple(rules))  # fmt: skip
    subjects = {line[1] for line in rules if line[0] == "g"}
    users = (
        await session.execute(
            select(User.id, User.username, User.department_id).where(
                User.username.in_(subjects), User.is_active
            )
        )
    ).all()
    for user in users:
        principal = Principal(PrincipalKind.USER, user.username, user.id, user.department_id)
        decisions = AccessDecisions(principal, snapshot)
        if decisions.can(Resource.POLICY, Action.CREATE) and decisions.can(
            Resource.POLICY, Action.DELETE
        ):
            return
    raise LockoutError("this change would leave nobody able to edit policies")


async def add_rule(session: AsyncSession, rule: Rule) -> bool:
    """Store a rule; False when it existed already."""
    await validate_rule(session, rule)
    added = await _insert_line(session, rule.line())
    if added:
        if rule.effect is Effect.DENY:
            await ensure_policy_editable(session, await current_lines(session))
        await announce_change(session)
    return added


async def remove_rule(session: AsyncSession, rule: Rule) -> bool:
    removed = await _delete_line(session, rule.line())
    if removed:
        await ensure_policy_editable(session, await current_lines(session))
        await announce_change(session)
    return removed


def validate_requirement(requirement: ConsentRequirement) -> None:
    """A consent requirement names fields of customer data, for READ or EXPORT, and a purpose
    in the form consents are recorded with."""
    check_resource_pattern(requirement.resource)
    root, _, field = requirement.resource.partition(".")
    if not field or "*" in root:
        raise PolicyInputError("resource", "name the fields: `customer.email`, `contact.*`")
    if Resource(root) not in CONSENT_RESOURCES:
        known = ", ".join(sorted(r.value for r in CONSENT_RESOURCES))
        raise PolicyInputError("resource", f"consent binds customer data only: {known}")
    if requirement.action not in (Action.READ, Action.EXPORT):
        raise PolicyInputError("action", "a consent requirement binds READ or EXPORT")
    if not PURPOSE.match(requirement.purpose):
        raise PolicyInputError("purpose", "a short lower-case word such as `marketing`")


async def add_requirement(session: AsyncSession, requirement: ConsentRequirement) -> bool:
    """Store a consent requirement; False when it existed already. It only narrows reads, so
    it can lock nobody out of editing policies."""
    validate_requirement(requirement)
    added = await _insert_line(session, requirement.line())
    if added:
        await announce_change(session)
    return added


async def remove_requirement(session: AsyncSession, requirement: ConsentRequirement) -> bool:
    removed = await _delete_line(session, requirement.line())
    if removed:
        await announce_change(session)
    return removed


async def assign_role(session: AsyncSession, username: str, role: str, department: int) -> bool:
    if not ROLE_NAME.match(role):
        raise PolicyInputError("role", "lower-case letters, digits and _, starting with a letter")
    if not await _department_exists(session, str(department)):
        raise PolicyInputError("departmentId", "no such department")
    added = await _insert_line(session, ("g", username, role, str(department)))
    if added:
        await announce_change(session)
    return added


async def unassign_role(session: AsyncSession, username: str, role: str, department: int) -> bool:
    removed = await _delete_line(session, ("g", username, role, str(department)))
    if removed:
        await ensure_policy_editable(session, await current_lines(session))
        await announce_change(session)
    return removed


async def replace_all(session: AsyncSession, lines: Sequence[Sequence[str]]) -> None:
    """Swap the whole rule set (policy import), after validating every line."""
    for number, line in enumerate(lines, start=1):
        if line[0] == "p":
            try:
                await validate_rule(session, Rule.from_line(_padded(line)))
            except (PolicyInputError, ValueError) as exc:
                raise PolicyInputError(f"line {number}", str(exc)) from exc
        elif line[0] == CONSENT_PTYPE:
            try:
                validate_requirement(requirements_of([_padded(line)])[0])
            except (PolicyInputError, ValueError) as exc:
                raise PolicyInputError(f"line {number}", str(exc)) from exc
        elif line[0] != "g" or len(line) < 4:
            raise PolicyInputError(f"line {number}", "expected a p, g or c line")
    await ensure_policy_editable(session, [_padded(line) for line in lines])
    await session.execute(delete(PolicyRule))
    for line in lines:
        await _insert_line(session, line)
    await announce_change(session)
