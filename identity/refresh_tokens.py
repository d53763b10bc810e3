"""Refresh tokens: opaque, stored hashed, single use, rotated within a family.

Each login starts a family; each refresh spends the presented token and issues the next one in
the same family. A spent token presented again means two parties hold it (the legitimate client
and a thief), so the whole family is revoked and both must log in again (OAuth 2.0 Security
BCP, refresh token rotation).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import RefreshToken, User
from identity.errors import RefreshTokenError, RefreshTokenReusedError
from identity.opaque_tokens import REFRESH_TOKEN_PREFIX, new_secret, secret_digest


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    id: uuid.UUID
    family_id: uuid.UUID
    token: str  # the secret; returned to the client once, never stored
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RotatedRefreshToken:
    user: User
    refresh: IssuedRefreshToken


async def issue_refresh_token(
    session: AsyncSession,
    *,
    user_id: int,
    ttl_seconds: int,
    family_id: uuid.UUID | None = None,
) -> IssuedRefreshToken:
    """Store a new refresh token (a new family unless `family_id` is given); flushed only."""
    secret = new_secret(REFRESH_TOKEN_PREFIX)
    row = RefreshToken(
        id=uuid.uuid4(),
        user_id=user_id,
        family_id=family_id or uuid.uuid4(),
        token_hash=secret_digest(secret),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.flush()
    return IssuedRefreshToken(
        id=row.id, family_id=row.family_id, token=secret, expires_at=row.expires_at
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    """Revoke the family's refresh tokens and end its access tokens at once.

    Access tokens are not stored, so they are ended the way deactivation ends them: the user's
    `token_version` moves on, and every process compares it with the token's on the next
    request. That ends the user's other sessions' access tokens too; their refresh tokens stay
    valid and get new ones. Waiting up to the access tokens' lifetime (900 s) would leave a
    thief who replayed a refresh token holding a working access token all that time.
    """
    owner = await session.scalar(
        select(RefreshToken.user_id).where(RefreshToken.family_id == family_id).limit(1)
    )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if owner is not None:
        await session.execute(
            update(User)
            .where(User.id == owner)
            .values(token_version=User.token_version + 1)
            .execution_options(synchronize_session=False)
        )


async def revoke_refresh_token(
    session: AsyncSession, presented: str, *, user_id: int | None = None
) -> RefreshToken | None:
    """Revoke the family of `presented` (RFC 7009), whether it is live, spent or expired; the
    token's row, or None when it is not one of ours (or, given `user_id`, not that user's).
    Flushed only: the caller commits."""
    if not presented.startswith(REFRESH_TOKEN_PREFIX):
        return None
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == secret_digest(presented))
    )
    if row is not None and user_id is not None and row.user_id != user_id:
        return None
    if row is not None:
        await revoke_family(session, row.family_id)
    return row


async def rotate_refresh_token(
    session: AsyncSession, presented: str, *, ttl_seconds: int
) -> RotatedRefreshToken:
    """Spend `presented` and issue its successor for the same user and family.

    Raises RefreshTokenError(reason) with reason `unknown`, `expired`, `revoked` or
    `inactive_user`, and RefreshTokenReusedError when the token was already spent; the family
    is then revoked in this session and the caller must commit that.
    """
    if not presented.startswith(REFRESH_TOKEN_PREFIX):
        raise RefreshTokenError("unknown")
    # the row lock serialises two concurrent refreshes of one token: the second sees used_at
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == secret_digest(presented))
        .with_for_update()
    )
    if row is None:
        raise RefreshTokenError("unknown")
    if row.used_at is not None:
        await revoke_family(session, row.family_id)
        raise RefreshTokenReusedError(row.user_id, row.family_id)
    if row.revoked_at is not None:
        raise RefreshTokenError("revoked")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise RefreshTokenError("expired")
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise RefreshTokenError("inactive_user")
    row.used_at = now
    successor = await issue_refresh_token(
        session, user_id=user.id, ttl_seconds=ttl_seconds, family_id=row.family_id
    )
    return RotatedRefreshToken(user=user, refresh=successor)
