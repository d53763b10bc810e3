"""Consents per customer and purpose: who may write them, how they are read and audited.

Writing a consent is a change of the customer: it needs UPDATE on that customer's row (the
scope is part of the SQL, so a customer outside it is NOT_FOUND). Reading follows the customer:
`Customer.consents` is there wherever the customer is readable. The evidence (a form number, a
recording's reference) may name the person, so the trail holds it masked.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from audit.masking import mask_value
from db.models import Consent as ConsentRow
from db.models import Customer as CustomerRow
from policy.predicates import all_of
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.filters import pk_of
from resolvers.mutations.common import load_customer
from resolvers.writes import record, require, write
from schema.privacy import Consent

PURPOSE = re.compile(r"^[a-z][a-z0-9_.-]{0,59}$")
MAX_EVIDENCE = 2000


def consent_type(row: ConsentRow) -> Consent:
    return Consent(
        purpose=row.purpose,
        granted_at=row.granted_at,
        withdrawn_at=row.withdrawn_at,
        evidence=row.evidence,
    )


def checked_purpose(purpose: str) -> str:
    text = purpose.strip().lower()
    if not PURPOSE.match(text):
        raise BadUserInputError(
            "a purpose is a short lower-case word such as `marketing`", argument="purpose"
        )
    return text


def has_active_consent(purpose: str) -> ColumnElement[bool]:
    """SQL: the customer row in the statement holds an active consent for `purpose`."""
    return exists().where(
        and_(
            ConsentRow.customer_id == CustomerRow.__table__.c.id,
            ConsentRow.purpose == purpose,
            ConsentRow.withdrawn_at.is_(None),
        )
    )


async def _active(session: AsyncSession, customer_id: int, purpose: str) -> ConsentRow | None:
    statement = select(ConsentRow).where(
        ConsentRow.customer_id == customer_id,
        ConsentRow.purpose == purpose,
        ConsentRow.withdrawn_at.is_(None),
    )
    return (await session.execute(statement.with_for_update())).scalar_one_or_none()


async def record_consent(
    context: RequestContext, customer_id: str, purpose: str, evidence: str | None
) -> Consent:
    require(context, Resource.CUSTOMER, Action.UPDATE, "recordConsent")
    pk = pk_of(customer_id, "Customer", "customerId")
    purpose = checked_purpose(purpose)
    if evidence is not None and len(evidence) > MAX_EVIDENCE:
        raise BadUserInputError(
            f"evidence is at most {MAX_EVIDENCE} characters", argument="evidence"
        )
    async with write(context) as session:
        await load_customer(context, session, pk, Resource.CUSTOMER, Action.UPDATE, lock=True)
        row = await _active(session, pk, purpose)
        if row is not None:
            return consent_type(row)
        row = ConsentRow(
            customer_id=pk, purpose=purpose, evidence=evidence, recorded_by=context.principal.name
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
        await record(context, session, AuditAction.CREATE, "consent", [pk],
                     changes={"purpose": purpose, "grantedAt": row.granted_at,
                              "evidence": mask_value(evidence)},
                     fields=["consents"])  # fmt: skip
        return consent_type(row)


async def withdraw_consent(
    context: RequestContext, customer_id: str, purpose: str
) -> Consent | None:
    require(context, Resource.CUSTOMER, Action.UPDATE, "withdrawConsent")
    pk = pk_of(customer_id, "Customer", "customerId")
    purpose = checked_purpose(purpose)
    async with write(context) as session:
        await load_customer(context, session, pk, Resource.CUSTOMER, Action.UPDATE, lock=True)
        row = await _active(session, pk, purpose)
        if row is None:
            return None
        row.withdrawn_at = (await session.execute(select(func.now()))).scalar_one()
        await session.flush()
        await record(context, session, AuditAction.UPDATE, "consent", [pk],
                     changes={"purpose": purpose, "withdrawnAt": row.withdrawn_at},
                     fields=["consents"])  # fmt: skip
        return consent_type(row)


async def consents_of(context: RequestContext, customer_id: int) -> list[Consent] | None:
    """Every grant of a customer, oldest first, where the caller may read the customer and its
    `consents` field (a policy field like any: a partner sees it only where a rule names it);
    FORBIDDEN (the field null) where it may not. Row and field predicates are in the SQL."""
    from resolvers.records import CUSTOMER

    decisions = context.decisions
    allowed = all_of(
        [
            decisions.rows(Resource.CUSTOMER, Action.READ),
            decisions.field(Resource.CUSTOMER, "consents", Action.READ),
        ]
    )
    if allowed.is_never:
        raise ForbiddenError("Customer.consents", "Not allowed to read Customer.consents")
    customers = CUSTOMER.table
    visible = await _scalar(
        context,
        select(customers.c.id).where(
            customers.c.id == customer_id, allowed.sql(CUSTOMER.scope_columns())
        ),
    )
    if visible is None:
        raise ForbiddenError("Customer.consents", "Not allowed to read Customer.consents")
    statement = (
        select(ConsentRow)
        .where(ConsentRow.customer_id == customer_id)
        .order_by(ConsentRow.granted_at, ConsentRow.id)
    )
    async with context.db.lock:
        rows = (await context.db.session.execute(statement)).scalars().all()
    return [consent_type(row) for row in rows]


async def _scalar(context: RequestContext, statement: object) -> object:
    async with context.db.lock:
        return (await context.db.session.execute(statement)).scalar_one_or_none()  # type: ignore[call-overload]
