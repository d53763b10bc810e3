"""Partner scoped tokens: issued by an admin, shown once, stored hashed, listed and revoked.

A partner token carries scopes (what kind of records it may read) and optionally the customers
shared with it; the authentication backend copies both onto the Principal, and they narrow
whatever the policies would allow. Every token expires: an integration nobody remembers must
not keep working forever.

Issuing and revoking write their audit events in the caller's transaction (no token without
its event); the caller commits.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.models import Customer, PartnerToken
from identity.errors import IdentityInputError, InvalidExpiryError, UnknownScopeError
from identity.opaque_tokens import PARTNER_TOKEN_PREFIX, new_secret, secret_digest

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365
AUDIT_RESOURCE_TYPE = "partner_token"


class PartnerScope(StrEnum):
    """What a partner token may read, by record type, and the one intake it may write."""

    CUSTOMERS_READ = "customers:read"
    CONTACTS_READ = "contacts:read"
    OPPORTUNITIES_READ = "opportunities:read"
    TICKETS_READ = "tickets:read"
    LEAD_CREATE = "lead:create"  # captureLead (events.leads): intake only, reads nothing


@dataclass(frozen=True, slots=True)
class IssuedPartnerToken:
    id: uuid.UUID
    token: str  # the secret, shown to the operator once and never stored
    expires_at: datetime


def parse_scopes(scopes: Sequence[str]) -> list[PartnerScope]:
    """Validate scope strings against PartnerScope; unknown ones are an error, not ignored."""
    if isinstance(scopes, str):
        scopes = [scopes]
    known = {scope.value for scope in PartnerScope}
    unknown = sorted({scope for scope in scopes if scope not in known})
    if unknown:
        raise UnknownScopeError(unknown)
    parsed = sorted({PartnerScope(scope) for scope in scopes})
    if not parsed:
        raise IdentityInputError("scopes", "at least one scope is required")
    return parsed


def _partner_name(name: str) -> str:
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= 200:
        raise IdentityInputError("partnerName", "1-200 characters")
    if any(unicodedata.category(char).startswith("C") for char in cleaned):
        raise IdentityInputError("partnerName", "control characters are not allowed")
    return cleaned


def _expiry_days(expires_in_days: int | None) -> int:
    if expires_in_days is None:
        return DEFAULT_EXPIRY_DAYS
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise InvalidExpiryError(f"between 1 and {MAX_EXPIRY_DAYS} days")
    return expires_in_days


async def _shared_customers(
    session: AsyncSession, customer_ids: Sequence[int] | None
) -> list[int] | None:
    if customer_ids is None:
        return None
    wanted = sorted(set(customer_ids))
    if wanted:
        found = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.id.in_(wanted))
        )
        if found != len(wanted):
            raise IdentityInputError("customerIds", "every shared customer must exist")
    return wanted


async def issue_partner_token(
    session: AsyncSession,
    *,
    partner_name: str,
    scopes: Sequence[str],
    customer_ids: Sequence[int] | None,
    expires_in_days: int | None,
    issued_by: str,
    actor_kind: str = ActorKind.USER,
    ip: str | None = None,
) -> IssuedPartnerToken:
    """Store a new partner token and its TOKEN_ISSUED event; return the secret once.

    Raises IdentityInputError (UnknownScopeError, InvalidExpiryError, …) before writing.
    `customer_ids=None` shares every customer the partner's policies allow; a list narrows to
    those. `expires_in_days=None` means DEFAULT_EXPIRY_DAYS.
    """
    name = _partner_name(partner_name)
    parsed = parse_scopes(scopes)
    days = _expiry_days(expires_in_days)
    shared = await _shared_customers(session, customer_ids)
    secret = new_secret(PARTNER_TOKEN_PREFIX)
    row = PartnerToken(
        id=uuid.uuid4(),
        partner_name=name,
        token_hash=secret_digest(secret),
        scopes=[scope.value for scope in parsed],
        customer_ids=shared,
        issued_by=issued_by,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    session.add(row)
    await session.flush()
    await append_events(
        session,
        [
            AuditRecord(
                actor=issued_by,
                actor_kind=actor_kind,
                action=AuditAction.TOKEN_ISSUED,
                resource_type=AUDIT_RESOURCE_TYPE,
                resource_ids=[str(row.id)],
                changes={
                    "partnerName": {"old": None, "new": name},
                    "scopes": {"old": None, "new": row.scopes},
                    "customerIds": {"old": None, "new": shared},
                    "expiresAt": {"old": None, "new": row.expires_at},
                },
                ip=ip,
            )
        ],
    )
    return IssuedPartnerToken(id=row.id, token=secret, expires_at=row.expires_at)


async def revoke_partner_token(
    session: AsyncSession,
    token_id: uuid.UUID,
    *,
    revoked_by: str | None = None,
    actor_kind: str | None = None,
    ip: str | None = None,
) -> bool:
    """Revoke a partner token and record TOKEN_REVOKED; False when unknown or already revoked.

    Without `revoked_by` the actor is recorded as the system (e.g. an operator's CLI).
    """
    revoked = await session.scalar(
        update(PartnerToken)
        .where(PartnerToken.id == token_id, PartnerToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(PartnerToken.partner_name)
        .execution_options(synchronize_session="fetch")
    )
    if revoked is None:
        return False
    await append_events(
        session,
        [
            AuditRecord(
                actor=revoked_by or "system",
                actor_kind=actor_kind or (ActorKind.USER if revoked_by else ActorKind.SYSTEM),
                action=AuditAction.TOKEN_REVOKED,
                resource_type=AUDIT_RESOURCE_TYPE,
                resource_ids=[str(token_id)],
                changes={"partnerName": revoked},
                ip=ip,
            )
        ],
    )
    return True


async def list_partner_tokens(session: AsyncSession) -> list[PartnerToken]:
    """Every partner token, newest first; rows hold only the hash, never the secret."""
    result = await session.scalars(
        select(PartnerToken).order_by(PartnerToken.issued_at.desc(), PartnerToken.id)
    )
    return list(result)
