"""User accounts: creation, password changes, deactivation and token revocation.

Functions here take the caller's session and never commit: the caller owns the transaction and
writes the audit event of the change in it. Password hashing (~20 ms of CPU) runs in a worker
thread so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Department, RefreshToken, User
from identity.errors import (
    DepartmentNotFoundError,
    InvalidUsernameError,
    UserExistsError,
    UserNotFoundError,
    WeakPasswordError,
)
from identity.passwords import burn_dummy_verification, hash_password, verify_password

# NIST SP 800-63B: length is what makes a password strong; no composition rules
MIN_PASSWORD_LENGTH = 12
# argon2 has no length limit, but hashing megabytes per login attempt is a denial of service
MAX_PASSWORD_LENGTH = 256
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")


def normalize_username(username: str) -> str:
    """Usernames are compared lower-cased, so `Alice` cannot impersonate `alice`."""
    return username.strip().lower()


def check_password_strength(password: str, *, username: str | None = None) -> None:
    """Raise WeakPasswordError unless the password is long enough and not the username."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"must be at most {MAX_PASSWORD_LENGTH} characters")
    if username is not None and password.strip().lower() == normalize_username(username):
        raise WeakPasswordError("must not be the username")


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    display_name: str | None,
    department_id: int,
) -> User:
    """Add an active user; raises InvalidUsernameError, UserExistsError, WeakPasswordError,
    DepartmentNotFoundError. Flushed, not committed."""
    name = normalize_username(username)
    if not _USERNAME.fullmatch(name):
        raise InvalidUsernameError(
            "1-100 characters: letters, digits and . _ @ -, starting with a letter or digit"
        )
    check_password_strength(password, username=name)
    if await session.get(Department, department_id) is None:
        raise DepartmentNotFoundError(department_id)
    if await session.scalar(select(User.id).where(User.username == name)) is not None:
        raise UserExistsError(name)
    user = User(
        username=name,
        display_name=display_name,
        password_hash=await asyncio.to_thread(hash_password, password),
        department_id=department_id,
        is_active=True,
        token_version=1,
    )
    try:
        # a savepoint, so losing a race on the unique username leaves the caller's
        # transaction usable
        async with session.begin_nested():
            session.add(user)
    except IntegrityError as error:
        raise UserExistsError(name) from error
    return user


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserNotFoundError(user_id)
    return user


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> None:
    """Make every token of this user stop working at its next request.

    Bumps `token_version` (access tokens carry the version they were issued under and the
    authentication backend compares it with the row) and revokes the live refresh tokens.
    Call it on deactivation, password change and role removal.
    """
    bumped = await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(token_version=User.token_version + 1)
        .returning(User.id)
        .execution_options(synchronize_session="fetch")
    )
    if bumped.first() is None:
        raise UserNotFoundError(user_id)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def revoke_access_tokens(session: AsyncSession, user_id: int, token_version: int) -> bool:
    """End every access token of the user issued under `token_version` (access tokens are
    stateless JWTs: they are revoked by moving the user's version on). Refresh tokens keep
    working, so the user's other sessions get fresh access tokens at their next refresh.
    False when that version was already ended (or the user is gone): nothing changed."""
    bumped = await session.execute(
        update(User)
        .where(User.id == user_id, User.token_version == token_version)
        .values(token_version=User.token_version + 1)
        .returning(User.id)
        .execution_options(synchronize_session="fetch")
    )
    return bumped.first() is not None


async def deactivate_user(session: AsyncSession, user_id: int) -> User:
    """Deactivate the user and revoke every token; idempotent. Raises UserNotFoundError."""
    user = await _user(session, user_id)
    user.is_active = False
    await session.flush()
    await revoke_user_tokens(session, user_id)
    return user


async def set_password(session: AsyncSession, user_id: int, password: str) -> User:
    """Replace the password and revoke every existing token of the user."""
    user = await _user(session, user_id)
    check_password_strength(password, username=user.username)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    await session.flush()
    await revoke_user_tokens(session, user_id)
    return user


class LoginFailure(StrEnum):
    """Why a password login failed: for the audit trail only, never shown to the client."""

    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"  # noqa: S105  # a reason code, not a secret
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The outcome of a password login: the user when it succeeded, the reason when not."""

    user: User | None
    failure: LoginFailure | None


async def check_credentials(session: AsyncSession, username: str, password: str) -> CredentialCheck:
    """Verify a username and password in constant-ish time, upgrading an old hash.

    Unknown users cost one dummy verification, so timing does not reveal which usernames
    exist; an inactive user is verified too and then refused. An upgraded hash is written in
    the caller's session.
    """
    user = None
    if len(password) <= MAX_PASSWORD_LENGTH:
        name = normalize_username(username)
        user = await session.scalar(select(User).where(User.username == name))
    if user is None:
        await asyncio.to_thread(burn_dummy_verification)
        return CredentialCheck(user=None, failure=LoginFailure.UNKNOWN_USER)
    ok, new_hash = await asyncio.to_thread(verify_password, password, user.password_hash)
    if not ok:
        return CredentialCheck(user=None, failure=LoginFailure.BAD_PASSWORD)
    if not user.is_active:
        return CredentialCheck(user=None, failure=LoginFailure.INACTIVE)
    if new_hash is not None:
        user.password_hash = new_hash
        await session.flush()
    return CredentialCheck(user=user, failure=None)
