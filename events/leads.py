"""captureLead: create-or-match intake for web forms and integrations.

Who may call it: staff who may create customers, or a partner token holding `lead:create` (the
token reads nothing through it). The lead is matched against every live customer through the
exact duplicate keys of `resolvers.mutations.duplicates` (credit code, phone and e-mail, the
phone through its blind index); on a match an interaction is logged on that customer, otherwise
a customer is created in the lead's department (the input's, else the caller's) and assigned to
its next active user in turn (round robin: the user after the owner of the department's newest
customer, by id). The department row is locked for the assignment, so concurrent leads take
turns. Both writes carry their audit events (and so their outbox events).

What the answer says is what the caller may read: `customer` through the read path;
`created` and `matchedBy` only when that customer is readable by the caller, so that a partner
cannot use the intake to learn whether a phone number or credit code is on file.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import Customer as CustomerRow
from db.models import Interaction as InteractionRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.mutations.common import (
    bad_input,
    change_set,
    existing_department,
    reread,
    touch_customer,
    vocabularies,
)
from resolvers.mutations.customer import API_NAMES, apply_values, probe_of
from resolvers.mutations.duplicates import EXACT
from resolvers.records import CUSTOMERS
from resolvers.writes import record, require, write
from schema.customer import Customer
from schema.duplicates import DuplicateReason
from schema.enums import CustomerKind
from schema.interaction import InteractionChannel
from validation.customer import validate_customer_input
from validation.errors import ValidationFailed

LEAD_SCOPE = "lead:create"
MATCH_KEYS = (DuplicateReason.CREDIT_CODE, DuplicateReason.PHONE, DuplicateReason.EMAIL)
MATCHED_BY = {
    DuplicateReason.CREDIT_CODE: "creditCode",
    DuplicateReason.PHONE: "phone",
    DuplicateReason.EMAIL: "email",
}
MAX_NOTE = 2000


@strawberry.input(description="A lead from a web form or an integration.")
class LeadInput:
    name: str
    kind: CustomerKind | None = CustomerKind.COMPANY
    phone: str | None = None
    email: str | None = None
    credit_code: str | None = None
    region: str | None = None
    industry: str | None = None
    source: str | None = None
    note: str | None = strawberry.field(default=None, description="The interaction's summary.")
    channel: InteractionChannel | None = InteractionChannel.EMAIL
    department_id: strawberry.ID | None = None


@strawberry.type
class LeadResult:
    customer: Customer | None
    created: bool | None
    matched_by: str | None


def _authorise(context: RequestContext) -> None:
    principal = context.principal
    if principal.is_partner:
        if LEAD_SCOPE not in (principal.scopes or frozenset()):
            raise ForbiddenError("Mutation.captureLead", "Not allowed to captureLead")
        return
    require(context, Resource.CUSTOMER, Action.CREATE, "captureLead")


def _values(input: LeadInput, vocab: Any, *, partial: bool) -> dict[str, Any]:
    """Normalised values; `partial`: only what is given is checked (enough to match on)."""
    data = {
        "name": input.name,
        "kind": input.kind.value if input.kind is not None else None,
        "phone": input.phone,
        "email": input.email,
        "creditCode": input.credit_code,
        "region": input.region,
        "industry": input.industry,
        "source": input.source or "官网",  # the website: the vocabulary's own term
    }
    data = {k: v for k, v in data.items() if v is not None}
    try:
        checked = validate_customer_input(data, vocabularies=vocab, partial=partial)
        return dict(checked.changes())
    except ValidationFailed as failed:
        raise bad_input(failed) from None


async def _match(
    session: AsyncSession, values: dict[str, Any], cipher: Any
) -> tuple[int, str] | None:
    """The oldest live customer sharing a key with the lead, and the key (system-wide)."""
    exact = probe_of(values, cipher).exact_values()
    clauses = [
        (reason, EXACT[reason][1] == exact[reason]) for reason in MATCH_KEYS if reason in exact
    ]
    if not clauses:
        return None
    row = (
        await session.execute(
            select(CUSTOMERS.c.id, *(c.label(r.value) for r, c in clauses))
            .where(CUSTOMERS.c.archived_at.is_(None), or_(*(c for _, c in clauses)))
            .order_by(CUSTOMERS.c.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    reason = next(r for r, _ in clauses if getattr(row, r.value))
    return row.id, MATCHED_BY[reason]


async def _next_owner(session: AsyncSession, department: int) -> int:
    """Round robin over the department's active users, in id order."""
    await session.execute(
        text("SELECT 1 FROM departments WHERE id = :d FOR UPDATE"), {"d": department}
    )
    users = (
        (
            await session.execute(
                text("SELECT id FROM users WHERE department_id = :d AND is_active ORDER BY id"),
                {"d": department},
            )
        )
        .scalars()
        .all()
    )
    if not users:
        raise BadUserInputError(
            "Invalid input: departmentId: the department has no active user to assign",
            field="departmentId",
        )
    last = (
        await session.execute(
            text(
                "SELECT owner_id FROM customers WHERE department_id = :d "
                "ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            {"d": department},
        )
    ).scalar()
    later = [u for u in users if last is not None and u > last]
    return later[0] if later else users[0]


def _require_department(context: RequestContext, department: int) -> None:
    """Staff send leads to their own department, or where they may create customers anyway;
    a partner's lead-intake token names the department it feeds."""
    principal = context.principal
    if principal.is_partner or department == principal.department_id:
        return
    if not context.decisions.rows(Resource.CUSTOMER, Action.CREATE).holds_for(None, department, 0):
        raise ForbiddenError(
            "Customer.department", "Not allowed to place a lead outside your own department"
        )


async def capture_lead(info: strawberry.Info, input: LeadInput) -> LeadResult:
    context: RequestContext = info.context
    _authorise(context)
    note = (input.note or "").strip() or f"Lead: {input.name}"
    if len(note) > MAX_NOTE:
        raise BadUserInputError(f"Invalid input: note: at most {MAX_NOTE} characters", field="note")
    async with write(context) as session:
        vocab = await vocabularies(session)
        # a lead matches on whatever keys it has; only a new customer must be complete
        matched = await _match(session, _values(input, vocab, partial=True), context.cipher)
        if matched is not None:
            pk, matched_by = matched
            created = False
        else:
            if input.department_id is not None:
                department = await existing_department(
                    session, input.department_id, "input.departmentId"
                )
            elif context.principal.department_id is not None:
                department = context.principal.department_id
            else:
                raise BadUserInputError(
                    "Invalid input: departmentId: required for a partner's lead",
                    field="departmentId",
                )
            _require_department(context, department)
            values = _values(input, vocab, partial=False)
            owner = await _next_owner(session, department)
            row = CustomerRow(owner_id=owner, department_id=department, version=1)
            apply_values(row, values, context.cipher)
            session.add(row)
            await session.flush()
            pk, matched_by, created = row.id, None, True
            new = {API_NAMES[a]: v for a, v in values.items()}
            new |= {"ownerId": owner, "departmentId": department}
            await record(context, session, AuditAction.CREATE, "customer", [pk],
                         changes=change_set(Resource.CUSTOMER, {}, new), fields=new)  # fmt: skip
        channel = (input.channel or InteractionChannel.EMAIL).value
        interaction = InteractionRow(
            customer_id=pk, author_id=context.principal.user_id, channel=channel, summary=note
        )
        session.add(interaction)
        await session.flush()
        await touch_customer(session, pk)
        after = {"customerId": pk, "channel": channel, "summary": note,
                 "authorId": context.principal.user_id}  # fmt: skip
        await record(context, session, AuditAction.CREATE, "interaction", [interaction.id],
                     changes=change_set(Resource.INTERACTION, {}, after), fields=after)  # fmt: skip
    customer = await reread(info, "Customer", pk)
    if customer is None:
        return LeadResult(customer=None, created=None, matched_by=None)
    return LeadResult(customer=customer, created=created, matched_by=matched_by)


@strawberry.type
class LeadMutation:
    @strawberry.mutation(description="Create-or-match intake; partners need `lead:create`.")
    async def capture_lead(self, info: strawberry.Info, input: LeadInput) -> LeadResult | None:
        return await capture_lead(info, input)
