"""The custom field changes of audit events, cut to what the reader may read of that field.

A custom field is a policy field `<resource>.cf.<key>` like any other, and an event's `changes`
hold its old and new value: shown as they are, the trail would be a way round the field's rule.
So a reader sees the change of `cf.<key>` only where it may read that field on the record — on
every row, or, for customers, on the row the event names — and otherwise the key is left out
and reported once as FORBIDDEN (`Customer.cf.<key>`). Built-in fields keep the trail's own
masking (sensitive values masked whoever reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from policy.custom_fields import CUSTOM_FIELD_RESOURCES, CUSTOM_PREFIX
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.records import CUSTOMERS, SPECS

TYPE_OF = {spec.resource: spec.type_name for spec in SPECS.values()}
Facts = tuple[int | None, int | None, int]


def _resource_of(row: Any) -> Resource | None:
    try:
        resource = Resource(row.resource_type or "")
    except ValueError:
        return None
    return resource if resource in CUSTOM_FIELD_RESOURCES else None


def _custom_keys(row: Any) -> list[str]:
    changes = row.changes
    if not isinstance(changes, dict):
        return []
    return [key for key in changes if key.startswith(CUSTOM_PREFIX)]


async def customer_facts_of(context: RequestContext, rows: Sequence[Any]) -> dict[int, Facts]:
    """Row facts of the customers named by events whose custom changes need them."""
    wanted = {
        int(i)
        for row in rows
        if _resource_of(row) is Resource.CUSTOMER and _custom_keys(row)
        for i in row.resource_ids
        if str(i).isdigit()
    }
    if not wanted:
        return {}
    found = await context.db.execute(
        select(CUSTOMERS.c.id, CUSTOMERS.c.owner_id, CUSTOMERS.c.department_id).where(
            CUSTOMERS.c.id.in_(sorted(wanted))
        )
    )
    facts: list[tuple[int, int | None, int | None]] = [tuple(r) for r in found.all()]  # type: ignore[misc]
    return {pk: (owner, department, pk) for pk, owner, department in facts}


def readable_changes(context: RequestContext, row: Any, facts: dict[int, Facts]) -> Any:
    """`row.changes` without the custom field changes the reader may not read on the record."""
    resource = _resource_of(row)
    keys = _custom_keys(row)
    if resource is None or not keys:
        return row.changes
    shown = dict(row.changes)
    for key in keys:
        predicate = context.decisions.field(resource, key, Action.READ)
        if predicate.is_always:
            continue
        readable = False
        if not predicate.is_never and resource is Resource.CUSTOMER:
            known = [facts.get(int(i)) for i in row.resource_ids if str(i).isdigit()]
            readable = bool(known) and all(f is not None and predicate.holds_for(*f) for f in known)
        if not readable:
            del shown[key]
            context.deny(f"{TYPE_OF[resource]}.{key}")
    return shown
