"""What every write mutation of customer data shares.

The order of checks is the same everywhere, and it is the order a caller can observe:
1. the operation at all (`require`) — FORBIDDEN naming the mutation;
2. the target row (or the parent of a new child) inside the caller's scope for the action —
   otherwise NOT_FOUND, the same answer as for an id that never existed;
3. every field the input sets writable on that row — otherwise FORBIDDEN naming the field;
4. the values (`validation/`) — BAD_USER_INPUT listing every bad field;
5. the version the caller read — CONFLICT when someone else wrote since;
6. duplicates — DUPLICATE listing only records the caller may read.
Each step raises before anything is written; the savepoint of `resolvers.writes.write` drops
whatever a later failure would otherwise leave behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.masking import MASK, mask_value
from db.models import Customer as CustomerRow
from db.models import Department as DepartmentRow
from db.models import User as UserRow
from policy.custom_fields import FieldCatalog, built_in_catalog
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError
from resolvers.filters import pk_of
from resolvers.records import CUSTOMERS
from validation.errors import ValidationFailed
from validation.vocabulary import Vocabularies, VocabularyCache

# the merged vocabularies of this process, re-read only when an admin adds a term; it would sit
# on the application state, but `api/` is not this module's to change (see issue 6 report)
VOCABULARIES = VocabularyCache()

_BUILT_IN = built_in_catalog()
# a person's identifying values beyond the sensitive fields: masked in the trail too, so an erased
# person (privacy.erasure) cannot be read back from the append-only chain (issue 23)
PERSONAL_IN_TRAIL = frozenset(
    {(Resource.CUSTOMER, "name"), (Resource.CUSTOMER, "address"), (Resource.CONTACT, "name")}
)
# free text that may name the person anywhere in it: the trail says that it changed, not how
FREE_TEXT_IN_TRAIL = frozenset(
    {(Resource.INTERACTION, "summary"), (Resource.TICKET, "title"), (Resource.OPPORTUNITY, "name")}
)

# customer row facts a predicate is evaluated on: (owner, department, customer id)
Facts = tuple[int | None, int | None, int]


def customer_facts(row: CustomerRow) -> Facts:
    return (row.owner_id, row.department_id, row.id)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def given(input: object, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields an input sets (null included), by API name, enum members as their values."""
    skipped = set(skip)
    found: dict[str, Any] = {}
    for item in dataclasses.fields(input):  # type: ignore[arg-type]  # strawberry inputs are dataclasses
        value = getattr(input, item.name)
        if value is strawberry.UNSET or item.name in skipped:
            continue
        if isinstance(value, Enum):
            value = value.value
        found[camel(item.name)] = value
    return found


def require_writable(
    context: RequestContext,
    resource: Resource,
    type_name: str,
    names: Iterable[str],
    action: Action,
    *facts: Facts,
) -> None:
    """Refuse the whole write when any field it sets may not be written on the row(s)."""
    refused = sorted(
        name
        for name in set(names)
        if not all(context.decisions.field(resource, name, action).holds_for(*f) for f in facts)
    )
    if refused:
        listed = ", ".join(f"{type_name}.{name}" for name in refused)
        raise ForbiddenError(f"{type_name}.{refused[0]}", f"Not allowed to write {listed}")


def require_row(context: RequestContext, resource: Resource, action: Action, facts: Facts) -> None:
    if not context.decisions.rows(resource, action).holds_for(*facts):
        raise NotFoundError(resource.value)


def bad_input(failed: ValidationFailed) -> BadUserInputError:
    errors = [
        {"field": e.field, "rule": e.rule, "message": e.message, "suggestions": list(e.suggestions)}
        for e in failed.errors
    ]
    return BadUserInputError(
        f"Invalid input: {'; '.join(f'{e.field}: {e.message}' for e in failed.errors)}",
        field=failed.fields[0],
        errors=errors,
    )


def field_error(field: str, rule: str, message: str) -> BadUserInputError:
    return BadUserInputError(
        f"Invalid input: {field}: {message}",
        field=field,
        errors=[{"field": field, "rule": rule, "message": message, "suggestions": []}],
    )


def check_version(
    row: Any,
    what: str,
    expected_version: int | None,
    expected_updated_at: datetime | None = None,
) -> None:
    """A stale write fails instead of silently overwriting a colleague's change."""
    if expected_version is not None and row.version != expected_version:
        raise ConflictError(
            f"The {what} was changed by someone else (now version {row.version}); "
            "re-read it and apply your change again",
            currentVersion=row.version,
        )
    if expected_updated_at is not None and row.updated_at != expected_updated_at:
        raise ConflictError(
            f"The {what} was changed by someone else at {row.updated_at.isoformat()}; "
            "re-read it and apply your change again",
            currentVersion=row.version,
        )


def audit_value(
    resource: Resource, name: str, value: Any, catalog: FieldCatalog | None = None
) -> Any:
    """A value as the trail may hold it: sensitive ones masked, enums and tuples plain.

    `catalog` says which fields are sensitive (the request's policy snapshot); without one,
    the built-in set seeded by migration 0013.
    """
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, tuple):
        value = list(value)
    if (resource, name) in FREE_TEXT_IN_TRAIL:
        return MASK
    personal = (resource, name) in PERSONAL_IN_TRAIL
    if personal or (catalog or _BUILT_IN).is_sensitive(resource, name):  # whatever policy allows
        if isinstance(value, list):
            return [mask_value(str(v)) for v in value]
        return mask_value(str(value))
    return value


def change_set(
    resource: Resource,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    catalog: FieldCatalog | None = None,
) -> dict[str, dict[str, Any]]:
    """`{field: {old, new}}` for the fields whose value differs, masked for the trail."""
    return {
        name: {
            "old": audit_value(resource, name, old.get(name), catalog),
            "new": audit_value(resource, name, value, catalog),
        }
        for name, value in sorted(new.items())
        if _plain(old.get(name)) != _plain(value)
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


async def vocabularies(session: AsyncSession) -> Vocabularies:
    return await VOCABULARIES.current(session)


async def existing_user(session: AsyncSession, global_id: str, argument: str) -> int:
    pk = pk_of(global_id, "User", argument)
    row = await session.get(UserRow, pk)
    if row is None or not row.is_active:
        raise field_error(camel_argument(argument), "not_found", "no such active user")
    return pk


async def existing_department(session: AsyncSession, global_id: str, argument: str) -> int:
    pk = pk_of(global_id, "Department", argument)
    if await session.get(DepartmentRow, pk) is None:
        raise field_error(camel_argument(argument), "not_found", "no such department")
    return pk


def camel_argument(argument: str) -> str:
    return argument.removeprefix("input.")


async def load_customer(
    context: RequestContext,
    session: AsyncSession,
    pk: int,
    resource: Resource,
    action: Action,
    *,
    lock: bool = False,
) -> CustomerRow:
    """A live customer in the caller's scope for `action` on `resource`, or NOT_FOUND.

    The scope is part of the SQL, so a row outside it is indistinguishable from no row.
    """
    statement = (
        select(CustomerRow)
        .where(
            CustomerRow.id == pk,
            CustomerRow.archived_at.is_(None),
            context.decisions.rows(resource, action).sql(_customer_scope()),
        )
        .execution_options(populate_existing=True)
    )
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        raise NotFoundError("customer" if resource is Resource.CUSTOMER else resource.value)
    return row


def _customer_scope() -> Any:
    from resolvers.records import CUSTOMER

    return CUSTOMER.scope_columns()


async def touch_customer(session: AsyncSession, customer_id: int, at: Any = None) -> None:
    """Move `lastInteractionAt` forward to `at` (default: now); never backwards.

    It is derived, not edited: `updated_at` and `version` stay, so a colleague editing the
    customer meanwhile does not get a spurious CONFLICT.
    """
    moment = func.now() if at is None else at
    await session.execute(
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id == customer_id)
        .values(
            last_interaction_at=func.greatest(CUSTOMERS.c.last_interaction_at, moment),
            updated_at=CUSTOMERS.c.updated_at,
        )
    )


async def reread(info: strawberry.Info, type_name: str, pk: int) -> Any:
    """The record as the caller may read it now, masked by read policy like any query.

    The request's loaders may hold this record (or a page of its children) from before the
    write; a fresh reader sees the write. RequestContext has no public way to drop them yet.
    """
    context: RequestContext = info.context
    context.forget_reads()
    return await context.reader.one(info, type_name, pk)
