"""Filters and orderings become SQL only after the policy allows the field they touch.

Filtering or ordering by a field reveals its value (a binary search over `filter: {email}`
recovers an address), so it needs the field readable on every visible row, not just on some.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, Numeric, Text, and_, case, cast, func, literal_column, or_

from db.crypto import FieldCipher
from policy.custom_fields import CustomFieldType, FieldDefinition
from policy.decisions import AccessDecisions
from policy.vocabulary import Action
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.personal import blind_form
from resolvers.reader import Ordering
from resolvers.records import CUSTOMERS, RecordSpec
from resolvers.rfm import customer_segment
from schema.enums import SortDirection
from schema.node import InvalidGlobalIdError, from_global_id, integer_pk


@dataclass(frozen=True)
class FilterRule:
    attr: str  # attribute of the strawberry input
    argument: str  # its GraphQL name, for error messages
    guards: str  # the policy field whose value the filter reveals
    clause: Callable[[Any], ColumnElement[bool]]
    # the cipher label of an encrypted column: `clause` then receives the value's blind index
    # (an encrypted value can only be compared for equality, through that index)
    blind: str | None = None


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
    cipher: FieldCipher | None = None,
) -> list[ColumnElement[bool]]:
    """SQL conditions of a filter input; `cipher` computes blind indexes for the filters on
    encrypted fields (e-mail)."""
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
        if rule.blind is not None:
            if cipher is None:
                raise BadUserInputError(
                    f"`{rule.argument}` cannot be used here", argument=rule.argument
                )
            value = cipher.blind_index(rule.blind, blind_form(rule.guards, str(value)))
        clauses.append(rule.clause(value))
    custom = getattr(values, "custom_field", None)
    if custom is not None:
        clauses.append(custom_field_clause(spec, decisions, custom))
    return clauses


# -- custom fields ------------------------------------------------------------------------------


def _part(given: Any, name: str) -> Any:
    """A part of a `CustomFieldFilter`, given as the input object or as coerced values."""
    if isinstance(given, dict):
        return given.get(name)
    return getattr(given, "in_" if name == "in" else name, None)


def custom_definition(
    spec: RecordSpec, decisions: AccessDecisions, key: Any, why: str, argument: str
) -> FieldDefinition:
    """The definition of a key the caller may filter or order by: READ on `cf.<key>` on every
    row first (FORBIDDEN, as for a built-in field), then it must exist and be comparable."""
    if not isinstance(key, str) or not key:
        raise BadUserInputError(f"`{argument}` needs a key", argument=argument)
    require_readable(spec, decisions, f"cf.{key}", why)
    definition = decisions.snapshot.catalog.definition(spec.resource, key)
    if definition is None or definition.retired:
        raise BadUserInputError(f"`{argument}`: no custom field {key!r}", argument=argument)
    if definition.sensitive:
        raise BadUserInputError(
            f"`{argument}`: {key!r} is encrypted and cannot be compared", argument=argument
        )
    return definition


def _stored(spec: RecordSpec, definition: FieldDefinition) -> Any:
    """The key's value as SQL: numbers as numeric, everything else as text."""
    column = spec.table.c.custom_fields
    json_key = literal_column(f"'{definition.key}'", Text)  # keys are validated identifiers
    if definition.type is CustomFieldType.NUMBER:
        is_number = func.jsonb_typeof(column.op("->")(json_key)) == "number"
        return case((is_number, cast(column.op("->>")(json_key), Numeric)), else_=None)
    return column.op("->>")(json_key)


def _normalised(definition: FieldDefinition, value: Any, argument: str) -> Any:
    from validation.custom_fields import normalise_value
    from validation.errors import FieldError

    if definition.type is CustomFieldType.MULTI_CHOICE and isinstance(value, str):
        value = [value]
    try:
        return normalise_value(definition, value)
    except FieldError as error:
        raise BadUserInputError(f"`{argument}`: {error.message}", argument=argument) from None


def custom_field_clause(spec: RecordSpec, decisions: AccessDecisions, given: Any) -> Any:
    argument = "filter.customField"
    definition = custom_definition(spec, decisions, _part(given, "key"), "filter by", argument)
    column = spec.table.c.custom_fields
    clauses: list[Any] = []
    eq, among = _part(given, "eq"), _part(given, "in")
    # equality is containment: `custom_fields @> {"key": value}` uses the GIN index
    if eq is not None:
        clauses.append(column.contains({definition.key: _normalised(definition, eq, argument)}))
    if among is not None:
        options = [_normalised(definition, v, argument) for v in among]
        clauses.append(or_(*(column.contains({definition.key: v}) for v in options)))
    for bound, compare in (("gte", "__ge__"), ("lte", "__le__")):
        value = _part(given, bound)
        if value is None:
            continue
        if definition.type in (CustomFieldType.BOOLEAN, CustomFieldType.MULTI_CHOICE):
            raise BadUserInputError(f"`{argument}.{bound}`: not an ordered type", argument=argument)
        normalised = _normalised(definition, value, argument)
        clauses.append(getattr(_stored(spec, definition), compare)(normalised))
    if not clauses:
        raise BadUserInputError(f"`{argument}` needs eq, in, gte or lte", argument=argument)
    return clauses[0] if len(clauses) == 1 else and_(*clauses)


def custom_field_ordering(
    spec: RecordSpec, decisions: AccessDecisions, key: str, direction: SortDirection
) -> Ordering:
    """Ordering by a custom field, unset values first (as the lowest value)."""
    argument = "orderBy.customField"
    definition = custom_definition(spec, decisions, key, "order by", argument)
    if definition.type is CustomFieldType.MULTI_CHOICE:
        raise BadUserInputError(f"`{argument}`: a list cannot be ordered", argument=argument)
    stored = _stored(spec, definition)
    # keyset pagination compares (value, id) tuples: a NULL would compare as unknown
    holds: type = str
    lowest = literal_column("''", Text)
    if definition.type is CustomFieldType.NUMBER:
        holds, lowest = Decimal, literal_column("'-Infinity'::numeric", Numeric)
    column = func.coalesce(stored, lowest)
    descending = direction is SortDirection.DESC
    return Ordering(f"cf.{key}", column, descending=descending, holds=holds)


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


def _customer_segment() -> Any:
    return customer_segment()


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
        # exact match, case-insensitive, through the blind index (the column is encrypted)
        lambda v: CUSTOMERS.c.email_bidx == v, blind="customer.email",
    ),
    FilterRule(
        "credit_code", "filter.creditCode", "creditCode",
        lambda v: CUSTOMERS.c.credit_code == str(v).strip().upper(),
    ),
    FilterRule("tag", "filter.tag", "tags", lambda v: CUSTOMERS.c.tags.contains([v])),
    FilterRule("tags_all", "filter.tagsAll", "tags", lambda v: CUSTOMERS.c.tags.contains(v)),
    FilterRule("tags_any", "filter.tagsAny", "tags", lambda v: CUSTOMERS.c.tags.overlap(v)),
    FilterRule(
        "total_spend_gte", "filter.totalSpendGte", "totalSpend",
        lambda v: CUSTOMERS.c.total_spend >= v,
    ),
    FilterRule(
        "total_spend_lte", "filter.totalSpendLte", "totalSpend",
        lambda v: CUSTOMERS.c.total_spend <= v,
    ),
    FilterRule(
        "last_interaction_before", "filter.lastInteractionBefore", "lastInteractionAt",
        lambda v: CUSTOMERS.c.last_interaction_at < v,
    ),
    FilterRule("segment", "filter.segment", "segment", lambda v: _customer_segment() == v),
)  # fmt: skip
