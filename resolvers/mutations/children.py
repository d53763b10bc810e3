"""What the writes of records hanging off a customer share: contacts, opportunities, tickets,
follow-ups. Their row scope is their customer's, so every check evaluates on customer facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.crypto import FieldCipher
from db.models import Customer as CustomerRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import NotFoundError
from resolvers.filters import pk_of
from resolvers.mutations.common import (
    Facts,
    bad_input,
    change_set,
    customer_facts,
    given,
    load_customer,
    require_writable,
)
from resolvers.mutations.custom_values import policy_names, take_custom, write_custom
from resolvers.personal import LEGACY_CLEAR, index_of, stored_personal
from resolvers.records import CUSTOMER
from resolvers.writes import record
from validation.errors import ValidationFailed


@dataclass(frozen=True)
class ChildKind:
    """One kind of child record: its type, policy resource, model and input naming."""

    type_name: str
    resource: Resource
    model: Any
    attributes: Mapping[str, str]  # API name → model attribute of validated values
    encrypted: Mapping[str, str] = field(default_factory=dict)  # attribute → cipher label
    # id inputs that set a policy field: input name → (policy field, attribute)
    references: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def api_names(self) -> dict[str, str]:
        return {attribute: name for name, attribute in self.attributes.items()}

    def values_of(self, row: Any, cipher: FieldCipher) -> dict[str, Any]:
        """Stored values by API name, encrypted ones decrypted (for the masked audit)."""
        found: dict[str, Any] = {}
        for name, attribute in self.attributes.items():
            if attribute in self.encrypted:
                clear = attribute if attribute in LEGACY_CLEAR else None
                found[name] = stored_personal(
                    cipher, row, attribute, self.encrypted[attribute], clear
                )
            else:
                found[name] = getattr(row, attribute)
        for name, (_, attribute) in self.references.items():
            found[name] = getattr(row, attribute)
        return found

    def apply(self, row: Any, values: Mapping[str, Any], cipher: FieldCipher) -> None:
        """Set validated values; encrypted ones are sealed under `row.data_key` (a contact's
        copy of its customer's, `db.data_keys.customer_data_key`)."""
        for attribute, value in values.items():
            if attribute in self.encrypted:
                label = self.encrypted[attribute]
                data_key = getattr(row, "data_key", None)
                setattr(row, f"{attribute}_enc", cipher.encrypt(label, value, data_key))
                setattr(
                    row,
                    f"{attribute}_bidx",
                    index_of(cipher, label, attribute, value),
                )
                if attribute in LEGACY_CLEAR:
                    setattr(row, attribute, None)  # a value from before encryption is replaced
            else:
                setattr(row, attribute, value.value if hasattr(value, "value") else value)


@dataclass
class ChildWrite:
    """A create or update that passed scope and field checks, ready to validate and apply."""

    data: dict[str, Any]  # validated fields, API names
    references: dict[str, Any]  # id inputs given (global ids, or None)
    facts: Facts
    customer: CustomerRow | None = None
    custom: dict[str, Any] | None = None  # `customFields` given, by key

    def write_custom(
        self, context: RequestContext, kind: ChildKind, row: Any, *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate and apply the custom values; (before, after) by policy name, for the trail."""
        return write_custom(context, kind.resource, row, self.custom, creating=creating)


def split_input(kind: ChildKind, input: object) -> tuple[dict[str, Any], dict[str, Any]]:
    everything = given(input, skip=("customer_id",))
    references = {k: v for k, v in everything.items() if k in kind.references}
    data = {k: v for k, v in everything.items() if k not in kind.references}
    return data, references


def policy_fields(
    kind: ChildKind, data: Mapping[str, Any], references: Mapping[str, Any]
) -> list[str]:
    return [*data, *(kind.references[k][0] for k in references)]


async def prepare_create(
    context: RequestContext, session: AsyncSession, kind: ChildKind, input: Any
) -> ChildWrite:
    """Parent in the caller's CREATE scope for this kind (else NOT_FOUND), fields writable."""
    customer_pk = pk_of(input.customer_id, "Customer", "input.customerId")
    customer = await load_customer(context, session, customer_pk, kind.resource, Action.CREATE)
    data, references = split_input(kind, input)
    custom = take_custom(data)
    facts = customer_facts(customer)
    require_writable(
        context, kind.resource, kind.type_name,
        [*policy_fields(kind, data, references), *policy_names(custom)], Action.CREATE, facts,
    )  # fmt: skip
    return ChildWrite(data, references, facts, customer, custom)


async def load_child(
    context: RequestContext, session: AsyncSession, kind: ChildKind, pk: int
) -> tuple[Any, Facts]:
    """A live child in the caller's UPDATE scope, locked, with its customer's facts."""
    model = kind.model
    conditions = [
        model.id == pk,
        CustomerRow.archived_at.is_(None),
        context.decisions.rows(kind.resource, Action.UPDATE).sql(CUSTOMER.scope_columns()),
    ]
    if hasattr(model, "archived_at"):
        conditions.append(model.archived_at.is_(None))
    statement = (
        select(model, CustomerRow.owner_id, CustomerRow.department_id)
        .join(CustomerRow, CustomerRow.id == model.customer_id)
        .where(*conditions)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    )
    found = (await session.execute(statement)).one_or_none()
    if found is None:
        raise NotFoundError(kind.resource.value)
    row, owner, department = found
    return row, (owner, department, row.customer_id)


async def prepare_update(
    context: RequestContext, session: AsyncSession, kind: ChildKind, id: strawberry.ID, input: Any
) -> tuple[Any, ChildWrite]:
    row, facts = await load_child(context, session, kind, pk_of(id, kind.type_name, "id"))
    data, references = split_input(kind, input)
    custom = take_custom(data)
    require_writable(
        context, kind.resource, kind.type_name,
        [*policy_fields(kind, data, references), *policy_names(custom)], Action.UPDATE, facts,
    )  # fmt: skip
    return row, ChildWrite(data, references, facts, custom=custom)


def validated(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except ValidationFailed as failed:
        raise bad_input(failed) from None


async def record_change(
    context: RequestContext,
    session: AsyncSession,
    kind: ChildKind,
    action: AuditAction,
    row: Any,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> dict[str, Any]:
    changes = change_set(kind.resource, before, after, context.decisions.snapshot.catalog)
    await record(context, session, action, kind.resource.value, [row.id],
                 changes=changes, fields=changes)  # fmt: skip
    return changes
