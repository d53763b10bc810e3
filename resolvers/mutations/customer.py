"""createCustomer, updateCustomer, archiveCustomer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.crypto import FieldCipher
from db.data_keys import own_data_key
from db.models import Customer as CustomerRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import ForbiddenError
from resolvers.filters import pk_of
from resolvers.mutations.common import (
    Facts,
    bad_input,
    change_set,
    check_version,
    customer_facts,
    existing_department,
    existing_user,
    field_error,
    given,
    load_customer,
    require_writable,
    reread,
    vocabularies,
)
from resolvers.mutations.custom_values import policy_names, take_custom, write_custom
from resolvers.mutations.duplicates import (
    Probe,
    duplicate_error,
    find_custom_duplicates,
    find_duplicates,
)
from resolvers.personal import LEGACY_CLEAR, blind_form, index_of, stored_personal
from resolvers.writes import record, require, write
from schema.customer import Customer
from schema.inputs import CustomerInput, CustomerPatch
from validation.customer import (
    NormalisedCustomer,
    validate_customer_input,
    validate_customer_patch,
)
from validation.errors import ValidationFailed

# API name → model attribute of the values a customer input carries
ATTRIBUTES: Mapping[str, str] = {
    "name": "name",
    "kind": "kind",
    "industry": "industry",
    "region": "region",
    "level": "level",
    "source": "source",
    "tags": "tags",
    "creditCode": "credit_code",
    "phone": "phone",
    "email": "email",
    "idNumber": "id_number",
    "address": "address",
    "totalSpend": "total_spend",
}
API_NAMES = {attribute: name for name, attribute in ATTRIBUTES.items()}
IDENTIFYING = frozenset({"name", "kind", "region", "credit_code", "phone", "email", "id_number"})
NAMING = frozenset({"name", "kind", "region"})  # a name is compared within kind and region
# the policy field an ownership input writes
OWNERSHIP = {"ownerId": "owner", "departmentId": "department"}
ENCRYPTED = {"phone": "customer.phone", "id_number": "customer.id_number",
             "email": "customer.email", "address": "customer.address"}  # fmt: skip


def stored_values(row: CustomerRow, cipher: FieldCipher) -> dict[str, Any]:
    """The customer's values by API name, sensitive ones decrypted (for audit and merge)."""
    return {
        "name": row.name,
        "kind": row.kind,
        "industry": row.industry,
        "region": row.region,
        "level": row.level,
        "source": row.source,
        "tags": list(row.tags or []),
        "creditCode": row.credit_code,
        "phone": stored_personal(cipher, row, "phone", "customer.phone"),
        "email": stored_personal(cipher, row, "email", "customer.email", "email"),
        "idNumber": stored_personal(cipher, row, "id_number", "customer.id_number"),
        "address": stored_personal(cipher, row, "address", "customer.address", "address"),
        "totalSpend": row.total_spend,
    }


def apply_values(row: CustomerRow, values: Mapping[str, Any], cipher: FieldCipher) -> None:
    """Set attribute-keyed normalised values, encrypting and blind-indexing sensitive ones.

    Sensitive values are sealed under the customer's data key, made on its first one."""
    for attribute, value in values.items():
        if attribute in ENCRYPTED:
            label = ENCRYPTED[attribute]
            data_key = own_data_key(row, cipher) if value is not None else row.data_key
            setattr(row, f"{attribute}_enc", cipher.encrypt(label, value, data_key))
            setattr(row, f"{attribute}_bidx", index_of(cipher, label, attribute, value))
            if attribute in LEGACY_CLEAR:
                setattr(row, attribute, None)  # a value from before encryption is replaced
        elif attribute == "tags":
            row.tags = list(value or [])
        elif attribute == "total_spend":
            row.total_spend = value if value is not None else Decimal(0)
        else:
            setattr(row, attribute, value.value if hasattr(value, "value") else value)


def probe_of(values: Mapping[str, Any], cipher: FieldCipher) -> Probe:
    """Identifying values of the record as it will be stored (attribute-keyed)."""
    kind = values.get("kind")
    return Probe(
        name=values.get("name"),
        kind=str(kind) if kind is not None else None,
        region=values.get("region"),
        credit_code=values.get("credit_code"),
        phone_bidx=cipher.blind_index("customer.phone", values.get("phone")),
        email_bidx=cipher.blind_index("customer.email", blind_form("email", values.get("email"))),
        id_number_bidx=cipher.blind_index("customer.id_number", values.get("id_number")),
    )


async def refuse_duplicates(
    context: RequestContext,
    session: AsyncSession,
    values: Mapping[str, Any],
    exclude: int | None = None,
) -> None:
    matches = await find_duplicates(
        context, session, probe_of(values, context.cipher), exclude=exclude
    )
    if matches:
        raise duplicate_error(matches)


async def refuse_custom_duplicates(
    context: RequestContext, session: AsyncSession, row: CustomerRow
) -> None:
    """DUPLICATE when a custom field marked unique has this value on another customer."""
    values = dict(row.custom_fields or {})
    matches = await find_custom_duplicates(context, session, values, exclude=row.id)
    if matches:
        raise duplicate_error(matches)


def _validated(check: Any) -> NormalisedCustomer:
    try:
        result: NormalisedCustomer = check()
    except ValidationFailed as failed:
        raise bad_input(failed) from None
    return result


def _require_ownership(
    context: RequestContext, action: Action, facts: Facts, given: Mapping[str, Any]
) -> None:
    """A customer may only be placed where the caller could write it afterwards."""
    if not context.decisions.rows(Resource.CUSTOMER, action).holds_for(*facts):
        field = OWNERSHIP["departmentId" if "ownerId" not in given else "ownerId"]
        raise ForbiddenError(
            f"Customer.{field}", "Not allowed to place a customer outside your own scope"
        )


async def create_customer(
    info: strawberry.Info, input: CustomerInput, force: bool
) -> Customer | None:
    context: RequestContext = info.context
    require(context, Resource.CUSTOMER, Action.CREATE, "createCustomer")
    data = given(input, skip=("owner_id", "department_id"))
    custom = take_custom(data)
    ownership = given(input)
    async with write(context) as session:
        owner = context.principal.user_id
        department = context.principal.department_id
        if ownership.get("ownerId") is not None:
            owner = await existing_user(session, ownership["ownerId"], "input.ownerId")
        elif "ownerId" in ownership:
            raise field_error("ownerId", "required", "a customer needs an owner")
        if ownership.get("departmentId") is not None:
            department = await existing_department(
                session, ownership["departmentId"], "input.departmentId"
            )
        elif "departmentId" in ownership:
            raise field_error("departmentId", "required", "a customer needs a department")
        if owner is None or department is None:
            raise ForbiddenError("Mutation.createCustomer", "Only staff create customers")
        facts: Facts = (owner, department, 0)
        _require_ownership(context, Action.CREATE, facts, ownership)
        fields = [
            *data,
            *policy_names(custom),
            *(OWNERSHIP[k] for k in ownership if k in OWNERSHIP),
        ]
        require_writable(context, Resource.CUSTOMER, "Customer", fields, Action.CREATE, facts)
        vocab = await vocabularies(session)
        normalised = _validated(lambda: validate_customer_input(data, vocabularies=vocab))
        values = normalised.changes()
        if not force:
            await refuse_duplicates(context, session, values)
        row = CustomerRow(owner_id=owner, department_id=department, version=1)
        apply_values(row, values, context.cipher)
        _, custom_after = write_custom(context, Resource.CUSTOMER, row, custom, creating=True)
        if not force:
            await refuse_custom_duplicates(context, session, row)
        session.add(row)
        await session.flush()
        new = {API_NAMES[a]: v for a, v in values.items()} | custom_after
        new |= {"ownerId": owner, "departmentId": department}
        changes = change_set(Resource.CUSTOMER, {}, new, context.decisions.snapshot.catalog)
        await record(context, session, AuditAction.CREATE, "customer", [row.id],
                     changes=changes, fields=new)  # fmt: skip
        pk = row.id
    return await reread(info, "Customer", pk)  # type: ignore[no-any-return]


async def update_customer(
    info: strawberry.Info,
    id: strawberry.ID,
    input: CustomerPatch,
    expected_version: int | None,
    expected_updated_at: datetime | None,
    force: bool,
) -> Customer | None:
    context: RequestContext = info.context
    require(context, Resource.CUSTOMER, Action.UPDATE, "updateCustomer")
    pk = pk_of(id, "Customer", "id")
    data = given(input, skip=("owner_id", "department_id"))
    custom = take_custom(data)
    ownership = given(input)
    ownership = {k: v for k, v in ownership.items() if k in OWNERSHIP}
    async with write(context) as session:
        row = await load_customer(context, session, pk, Resource.CUSTOMER, Action.UPDATE, lock=True)
        old_facts = customer_facts(row)
        owner, department = row.owner_id, row.department_id
        if "ownerId" in ownership:
            if ownership["ownerId"] is None:
                raise field_error("ownerId", "required", "a customer needs an owner")
            owner = await existing_user(session, ownership["ownerId"], "input.ownerId")
        if "departmentId" in ownership:
            if ownership["departmentId"] is None:
                raise field_error("departmentId", "required", "a customer needs a department")
            department = await existing_department(
                session, ownership["departmentId"], "input.departmentId"
            )
        new_facts: Facts = (owner, department, pk)
        fields = [*data, *policy_names(custom), *(OWNERSHIP[k] for k in ownership)]
        require_writable(
            context, Resource.CUSTOMER, "Customer", fields, Action.UPDATE, old_facts, new_facts
        )
        _require_ownership(context, Action.UPDATE, new_facts, ownership)
        vocab = await vocabularies(session)
        stored = {
            **{a: getattr(row, a) for a in ATTRIBUTES.values() if a not in ENCRYPTED},
            # presence is all the per-kind rules need: no decryption for validation
            "phone": "set" if row.phone_enc else None,
            "id_number": "set" if row.id_number_enc else None,
        }
        normalised = _validated(lambda: validate_customer_patch(stored, data, vocabularies=vocab))
        check_version(row, "customer", expected_version, expected_updated_at)
        values = normalised.changes()
        before = stored_values(row, context.cipher)
        after = {API_NAMES[a]: v for a, v in values.items()}
        catalog = context.decisions.snapshot.catalog
        custom_before, custom_after = write_custom(
            context, Resource.CUSTOMER, row, custom, creating=False
        )
        if custom_after and not force:
            await refuse_custom_duplicates(context, session, row)
        changes = change_set(
            Resource.CUSTOMER, before | custom_before, after | custom_after, catalog
        )
        was = {"ownerId": row.owner_id, "departmentId": row.department_id}
        changes |= change_set(
            Resource.CUSTOMER, was, {"ownerId": owner, "departmentId": department}, catalog
        )
        if changes:
            changed = {ATTRIBUTES[n] for n in changes if n in ATTRIBUTES} & IDENTIFYING
            if not force and changed:
                merged = {**{ATTRIBUTES[k]: v for k, v in before.items()}, **values}
                # only what this write changes: an old likeness is not this write's doing
                if not changed & NAMING:
                    merged["name"] = None
                probe = {a: v for a, v in merged.items() if a in changed or a in NAMING}
                await refuse_duplicates(context, session, probe, exclude=pk)
            apply_values(row, values, context.cipher)
            row.owner_id, row.department_id = owner, department
            row.version = row.version + 1
            await session.flush()
            await record(context, session, AuditAction.UPDATE, "customer", [pk],
                         changes=changes, fields=changes)  # fmt: skip
    return await reread(info, "Customer", pk)  # type: ignore[no-any-return]


async def archive_customer(
    info: strawberry.Info,
    id: strawberry.ID,
    expected_version: int | None,
    expected_updated_at: datetime | None,
) -> Customer | None:
    context: RequestContext = info.context
    require(context, Resource.CUSTOMER, Action.UPDATE, "archiveCustomer")
    pk = pk_of(id, "Customer", "id")
    # read first: once archived the record no longer exists for readers
    snapshot = await reread(info, "Customer", pk)
    async with write(context) as session:
        row = await load_customer(context, session, pk, Resource.CUSTOMER, Action.UPDATE, lock=True)
        check_version(row, "customer", expected_version, expected_updated_at)
        now = (await session.execute(select(func.now()))).scalar_one()
        row.archived_at = now
        row.version = row.version + 1
        await session.flush()
        await record(context, session, AuditAction.ARCHIVE, "customer", [pk],
                     changes={"archivedAt": {"old": None, "new": now}})  # fmt: skip
    return snapshot  # type: ignore[no-any-return]


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(description="Owner and department default to the caller's.")
    async def create_customer(
        self, info: strawberry.Info, input: CustomerInput, force: bool = False
    ) -> Customer | None:
        return await create_customer(info, input, force)

    @strawberry.mutation(description="A stale expectedVersion/expectedUpdatedAt is a CONFLICT.")
    async def update_customer(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        input: CustomerPatch,
        expected_version: int | None = None,
        expected_updated_at: datetime | None = None,
        force: bool = False,
    ) -> Customer | None:
        return await update_customer(info, id, input, expected_version, expected_updated_at, force)

    @strawberry.mutation(description="Returns the record as it was; afterwards it is gone.")
    async def archive_customer(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        expected_version: int | None = None,
        expected_updated_at: datetime | None = None,
    ) -> Customer | None:
        return await archive_customer(info, id, expected_version, expected_updated_at)
