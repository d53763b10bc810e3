"""Filters and orderings become SQL only after the policy allows the field they touch.

Filtering or ordering by a field reveals its value (a binary search over `filter: {email}`
recovers an address), so it needs the field readable on every visible row, not just on some.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, func

from policy.decisions import AccessDecisions
from policy.vocabulary import Action
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.reader import Ordering
from resolvers.records import CUSTOMERS, RecordSpec
from schema.enums import SortDirection
from schema.node import InvalidGlobalIdError, from_global_id, integer_pk


@dataclass(frozen=True)
class FilterRule:
    attr: str  # attribute of the strawberry input
    argument: str  # its GraphQL name, for error messages
    guards: str  # the policy field whose value the filter reveals
    clause: Callable[[Any], ColumnElement[bool]]


def require_readable(spec: RecordSpec, decisions: AccessDecisions, field: str, why: str) -> None:
    if not decisions.field(spec.resource, field, Action.READ).is_always:
        raise ForbiddenError(
            f"{spec.type_name}.{field}", f"Not allowed to {why} {spec.type_name}.{field}"
        )


def compile_filter(
    spec: RecordSpec,
    decisions: AccessDecisions,
    rules: Sequence[FilterRule],
    values: object | None,
) -> list[ColumnElement[bool]]:
    if values is None:
        return []
    clauses = []
    for rule in rules:
        value = getattr(values, rule.attr, None)
        if value is None:
            continue
        require_readable(spec, decisions, rule.guards, "filter by")
        if isinstance(value, Enum):
            value = value.value
        clauses.append(rule.clause(value))
    return clauses


def compile_ordering(
    spec: RecordSpec,
    decisions: AccessDecisions,
    field: str,
    column: ColumnElement[Any],
    direction: SortDirection,
) -> Ordering:
    if field != "id":
        require_readable(spec, decisions, field, "order by")
    holds = column.type.python_type
    return Ordering(field, column, descending=direction is SortDirection.DESC, holds=holds)


def pk_of(global_id: str, type_name: str, argument: str) -> int:
    """The primary key in a global id of the expected type, or a BAD_USER_INPUT naming it."""
    try:
        found_type, pk = from_global_id(global_id)
    except InvalidGlobalIdError as exc:
        raise BadUserInputError(f"`{argument}` is not a valid id", argument=argument) from exc
    key = integer_pk(pk)
    if found_type != type_name or key is None:
        raise BadUserInputError(f"`{argument}` is not a {type_name} id", argument=argument)
    return key


def id_rule(attr: str, argument: str, guards: str, type_name: str, column: Any) -> FilterRule:
    return FilterRule(attr, argument, guards, lambda v: column == pk_of(v, type_name, argument))


def prefix_clause(column: Any) -> Callable[[Any], ColumnElement[bool]]:
    def clause(value: str) -> ColumnElement[bool]:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(f"{escaped}%", escape="\\")  # type: ignore[no-any-return]

    return clause


CUSTOMER_FILTERS: tuple[FilterRule, ...] = (
    FilterRule("name_prefix", "filter.namePrefix", "name", prefix_clause(CUSTOMERS.c.name)),
    FilterRule("region", "filter.region", "region", lambda v: CUSTOMERS.c.region == v),
    FilterRule("industry", "filter.industry", "industry", lambda v: CUSTOMERS.c.industry == v),
    FilterRule("level", "filter.level", "level", lambda v: CUSTOMERS.c.level == v),
    FilterRule("kind", "filter.kind", "kind", lambda v: CUSTOMERS.c.kind == v),
    id_rule("owner_id", "filter.ownerId", "owner", "User", CUSTOMERS.c.owner_id),
    id_rule(
        "department_id", "filter.departmentId", "department", "Department",
        CUSTOMERS.c.department_id,
    ),
    FilterRule(
        "updated_since", "filter.updatedSince", "updatedAt", lambda v: CUSTOMERS.c.updated_at >= v
    ),
    FilterRule(
        "email", "filter.email", "email",
        lambda v: func.lower(CUSTOMERS.c.email) == str(v).strip().lower(),
    ),
    FilterRule(
        "credit_code", "filter.creditCode", "creditCode",
        lambda v: CUSTOMERS.c.credit_code == str(v).strip().upper(),
    ),
    FilterRule("tag", "filter.tag", "tags", lambda v: CUSTOMERS.c.tags.contains([v])),
)  # fmt: skip
