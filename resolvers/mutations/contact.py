"""createContact, updateContact."""

from __future__ import annotations

import strawberry

from audit.events import AuditAction
from db.data_keys import contact_data_key
from db.models import Contact as ContactRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.mutations.children import (
    ChildKind,
    prepare_create,
    prepare_update,
    record_change,
    validated,
)
from resolvers.mutations.common import check_version, reread
from resolvers.writes import require, write
from schema.contact import Contact
from schema.inputs import ContactInput, ContactPatch
from validation.contact import validate_contact_input

CONTACT = ChildKind(
    type_name="Contact",
    resource=Resource.CONTACT,
    model=ContactRow,
    attributes={"name": "name", "title": "title", "phone": "phone", "email": "email",
                "isDecisionMaker": "is_decision_maker"},
    encrypted={"phone": "contact.phone", "email": "contact.email"},
)  # fmt: skip


@strawberry.type
class ContactMutation:
    @strawberry.mutation
    async def create_contact(self, info: strawberry.Info, input: ContactInput) -> Contact | None:
        context: RequestContext = info.context
        require(context, Resource.CONTACT, Action.CREATE, "createContact")
        async with write(context) as session:
            prepared = await prepare_create(context, session, CONTACT, input)
            values = validated(lambda: validate_contact_input(prepared.data)).changes()
            row = ContactRow(customer_id=prepared.facts[2], version=1)
            await contact_data_key(session, context.cipher, row, prepared.customer)
            CONTACT.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(
                context, CONTACT, row, creating=True
            )
            session.add(row)
            await session.flush()
            after = {CONTACT.api_names[a]: v for a, v in values.items()}
            await record_change(context, session, CONTACT, AuditAction.CREATE, row,
                                custom_before, after | custom_after)  # fmt: skip
            pk = row.id
        return await reread(info, "Contact", pk)  # type: ignore[no-any-return]

    @strawberry.mutation(description="A stale expectedVersion is a CONFLICT.")
    async def update_contact(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        input: ContactPatch,
        expected_version: int | None = None,
    ) -> Contact | None:
        context: RequestContext = info.context
        require(context, Resource.CONTACT, Action.UPDATE, "updateContact")
        async with write(context) as session:
            row, prepared = await prepare_update(context, session, CONTACT, id, input)
            values = validated(
                lambda: validate_contact_input(prepared.data, partial=True)
            ).changes()
            check_version(row, "contact", expected_version)
            before = CONTACT.values_of(row, context.cipher)
            after = {CONTACT.api_names[a]: v for a, v in values.items()}
            if any(attribute in CONTACT.encrypted for attribute in values):
                await contact_data_key(session, context.cipher, row)
            CONTACT.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(
                context, CONTACT, row, creating=False
            )
            row.version = row.version + 1
            await session.flush()
            await record_change(context, session, CONTACT, AuditAction.UPDATE, row,
                                before | custom_before, after | custom_after)  # fmt: skip
            pk = row.id
        return await reread(info, "Contact", pk)  # type: ignore[no-any-return]
