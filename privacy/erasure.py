"""`eraseCustomer`: remove a person's personal data for good, while the audit chain verifies.

Crypto-shredding: the customer's sensitive values, and its contacts', are sealed under the
customer's own data key (`db.crypto`, envelope encryption); erasure deletes the wrapped key from
the customer and from every contact's copy, so any copy of those ciphertexts left elsewhere
(a backup, a replica, a dump) can no longer be decrypted, and forgets the unwrapped key in this
process. Then, as before, the clear columns are blanked. The trail never holds a
person's values in clear — phone, e-mail, id number, sensitive custom fields, and since issue 23
also the customer's name and address and a contact's name are masked before they enter
`changes` (`resolvers.mutations.common.audit_value`), and reads log field names, not values. So
erasure touches no audit row: it overwrites the person's rows in place —

- the customer: name → `已删除 erased #<id>`; phone, e-mail, id number and address ciphertexts
  and their blind indexes, the data key, the clear e-mail and address of rows from before
  migration 0015, credit code, tags and custom fields cleared; archived and stamped `erased_at`;
- its contacts: name → placeholder; title, phone and e-mail (ciphertexts and blind indexes),
  the data key copy and custom fields cleared;
- its interactions' summaries, tickets' titles and opportunities' names → placeholder, their
  custom fields cleared; consents keep purpose and dates (the proof of a lawful basis) but lose
  their evidence text;

Customers merged into the erased one (its duplicates, at any depth) are the same person and are
erased with it, whatever their scope. One DELETE event on the customer records the reason and
what was erased. Webhooks
hear `customer.deleted`. The rows themselves stay (ids other records and the trail refer to).
"""

from __future__ import annotations

from sqlalchemy import Text, cast, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import Consent as ConsentRow
from db.models import Contact as ContactRow
from db.models import Customer as CustomerRow
from db.models import Interaction as InteractionRow
from db.models import Opportunity as OpportunityRow
from db.models import Ticket as TicketRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, NotFoundError
from resolvers.filters import pk_of
from resolvers.records import CUSTOMER
from resolvers.writes import record, require, write

ERASED = "已删除 erased"
MAX_REASON = 500


def placeholder(pk: int) -> str:
    return f"{ERASED} #{pk}"


async def _with_merged(session: AsyncSession, pk: int) -> list[int]:
    """`pk` and every customer merged into it, directly or through other merged records."""
    merged = select(CustomerRow.id).where(CustomerRow.id == pk).cte("merged", recursive=True)
    merged = merged.union(select(CustomerRow.id).where(CustomerRow.merged_into_id == merged.c.id))
    return sorted((await session.execute(select(merged.c.id))).scalars())


async def erase_customer(context: RequestContext, id: str, reason: str) -> bool:
    """Erase customer `id`; False when it was erased before. Needs DELETE on `privacy`."""
    require(context, Resource.PRIVACY, Action.DELETE, "eraseCustomer")
    pk = pk_of(id, "Customer", "id")
    reason = reason.strip()
    if not reason:
        raise BadUserInputError("say why the customer is erased", argument="reason")
    if len(reason) > MAX_REASON:
        raise BadUserInputError(f"a reason is at most {MAX_REASON} characters", argument="reason")
    async with write(context) as session:
        scope = context.decisions.rows(Resource.PRIVACY, Action.DELETE)
        customer = (
            await session.execute(
                select(CustomerRow)
                .where(CustomerRow.id == pk, scope.sql(CUSTOMER.scope_columns()))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if customer is None:
            raise NotFoundError("customer")
        if customer.erased_at is not None:
            return False
        now = (await session.execute(select(func.now()))).scalar_one()
        # the person's duplicates merged into this record (at any depth) are the same person
        pks = await _with_merged(session, pk)
        shredded = set(
            (
                await session.execute(
                    select(CustomerRow.data_key).where(
                        CustomerRow.id.in_(pks), CustomerRow.data_key.is_not(None)
                    )
                )
            ).scalars()
        ) | set(
            (
                await session.execute(
                    select(ContactRow.data_key).where(
                        ContactRow.customer_id.in_(pks), ContactRow.data_key.is_not(None)
                    )
                )
            ).scalars()
        )
        await session.execute(
            update(CustomerRow)
            .where(CustomerRow.id.in_(pks))
            .values(
                name=literal(f"{ERASED} #") + cast(CustomerRow.id, Text),
                phone_enc=None,
                phone_bidx=None,
                id_number_enc=None,
                id_number_bidx=None,
                email=None,
                email_enc=None,
                email_bidx=None,
                address=None,
                address_enc=None,
                address_bidx=None,
                credit_code=None,
                tags=[],
                custom_fields={},
                data_key=None,
                erased_at=now,
                archived_at=func.coalesce(CustomerRow.archived_at, now),
                version=CustomerRow.version + 1,
                updated_at=now,
            )  # fmt: skip
        )
        contacts = await session.execute(
            update(ContactRow)
            .where(ContactRow.customer_id.in_(pks))
            .values(
                name=ERASED,
                title=None,
                phone_enc=None,
                phone_bidx=None,
                email=None,
                email_enc=None,
                email_bidx=None,
                custom_fields={},
                data_key=None,
                version=ContactRow.version + 1,
            )  # fmt: skip
            .returning(ContactRow.id)
        )
        contact_ids = list(contacts.scalars())
        interactions = await session.execute(
            update(InteractionRow)
            .where(InteractionRow.customer_id.in_(pks))
            .values(summary=ERASED)
            .returning(InteractionRow.id)
        )
        tickets = await session.execute(
            update(TicketRow)
            .where(TicketRow.customer_id.in_(pks))
            .values(title=ERASED, custom_fields={}, version=TicketRow.version + 1)
            .returning(TicketRow.id)
        )
        opportunities = await session.execute(
            update(OpportunityRow)
            .where(OpportunityRow.customer_id.in_(pks))
            .values(name=ERASED, custom_fields={}, version=OpportunityRow.version + 1)
            .returning(OpportunityRow.id)
        )
        await session.execute(
            update(ConsentRow).where(ConsentRow.customer_id.in_(pks)).values(evidence=None)
        )
        await record(
            context,
            session,
            AuditAction.DELETE,
            "customer",
            [pk],
            changes={
                "erased": True,
                "reason": reason,
                "erasedAt": now,
                "contacts": [str(c) for c in contact_ids],
                "mergedRecords": [str(p) for p in pks if p != pk],
                "interactions": len(list(interactions.scalars())),
                "tickets": len(list(tickets.scalars())),
                "opportunities": len(list(opportunities.scalars())),
            },
            fields=["personalData"],
        )
    for wrapped in shredded:
        context.cipher.forget_data_key(wrapped)
    context.forget_reads()
    return True
