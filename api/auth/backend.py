"""Who is calling: turn `Authorization: Bearer …` into a Principal, or refuse.

A user access token is verified offline (signature, claims), then one primary-key query reads
the user's row: `is_active` and `token_version` make deactivation, password changes and role
removals take effect on the next request in every process, without a revocation list. A
partner token (prefix `dpt_`) costs one unique-index query by its SHA-256 digest. Either way
it is one small query per request, never one per GraphQL field: the Principal is built once and
travels in the request context. GraphQL reads skip the up-front query when this process has
read the user's row before, and confirm it after the read instead (`authenticate_read`,
`api.auth.known_users`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from starlette.requests import Request

from api.auth.access_tokens import AccessClaims, verify_access_token
from api.auth.errors import AuthenticationError, AuthFailure
from api.auth.known_users import KnownUsers, UserFacts, refusal
from api.state import AppState
from db.models import PartnerToken, User
from identity.opaque_tokens import PARTNER_TOKEN_PREFIX, secret_digest
from policy.principal import Principal, PrincipalKind

# a JWT is three base64url parts, a partner secret is base64url: anything else, or anything
# absurdly long, is refused before it reaches a parser
_TOKEN = re.compile(r"[A-Za-z0-9_\-.=]{1,4096}")

_USER_BY_ID = select(User.username, User.department_id, User.is_active, User.token_version).where(
    User.id == bindparam("user_id")
)
_PARTNER_BY_DIGEST = select(
    PartnerToken.id,
    PartnerToken.partner_name,
    PartnerToken.scopes,
    PartnerToken.customer_ids,
    PartnerToken.expires_at,
    PartnerToken.revoked_at,
).where(PartnerToken.token_hash == bindparam("digest"))


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1)."""
    if not authorization:
        raise AuthenticationError(AuthFailure.MISSING_TOKEN)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        raise AuthenticationError(AuthFailure.MALFORMED_TOKEN)
    return token


async def _fetch_one(state: AppState, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
    # AUTOCOMMIT: a single read needs no transaction, which saves the BEGIN and ROLLBACK
    # round trips a pooled connection would otherwise make around it
    async with state.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        result = await autocommit.execute(statement, params)
        return result.first()


def known_users(state: AppState) -> KnownUsers:
    """This process's last-read user rows (`api.auth.known_users`), made on first use."""
    known: KnownUsers | None = state.extras.get("known_users")
    if known is None:
        known = state.extras["known_users"] = KnownUsers()
    return known


async def authenticate(request: Request) -> Principal:
    """The Principal of this request; raises AuthenticationError(code) when there is none."""
    state: AppState = request.app.state.dossier
    token = bearer_token(request.headers.get("authorization"))
    if token.startswith(PARTNER_TOKEN_PREFIX):
        return await _partner_principal(state, token)
    return await _checked_user(state, verify_access_token(state.settings.auth, token))


async def _checked_user(state: AppState, claims: AccessClaims) -> Principal:
    """The user of verified `claims`, checked against the user's row, which is remembered."""
    row = await _fetch_one(state, _USER_BY_ID, {"user_id": claims.user_id})
    refused = refusal(row, claims.token_version)
    if refused is not None:
        raise refused
    assert row is not None  # refusal() refuses a missing row
    facts = UserFacts(claims.user_id, row.username, row.department_id, row.token_version)
    known_users(state).remember(facts)
    return _user_principal(facts)


async def authenticate_read(request: Request) -> tuple[Principal, UserFacts | None]:
    """Like `authenticate`, but a user token may be vouched for by the row this process read
    last for its user, without a query; the facts it relied on are returned, and the caller
    must confirm them (`confirm_users`) before it answers. None: nothing to confirm.

    Only for requests that change nothing (see `api.auth.known_users`).
    """
    state: AppState = request.app.state.dossier
    token = bearer_token(request.headers.get("authorization"))
    if token.startswith(PARTNER_TOKEN_PREFIX):
        return await _partner_principal(state, token), None
    claims = verify_access_token(state.settings.auth, token)
    facts = known_users(state).get(claims.user_id)
    if facts is not None and facts.token_version == claims.token_version:
        return _user_principal(facts), facts
    return await _checked_user(state, claims), None


def _user_principal(facts: UserFacts) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        name=facts.username,
        user_id=facts.user_id,
        department_id=facts.department_id,
    )


async def _partner_principal(state: AppState, token: str) -> Principal:
    row = await _fetch_one(state, _PARTNER_BY_DIGEST, {"digest": secret_digest(token)})
    if row is None:
        raise AuthenticationError(AuthFailure.UNKNOWN_TOKEN)
    if row.revoked_at is not None:
        raise AuthenticationError(AuthFailure.REVOKED)
    if row.expires_at <= datetime.now(UTC):
        raise AuthenticationError(AuthFailure.EXPIRED)
    return Principal(
        kind=PrincipalKind.PARTNER,
        name=row.partner_name,
        token_id=row.id,
        scopes=frozenset(row.scopes),
        shared_customer_ids=None if row.customer_ids is None else frozenset(row.customer_ids),
    )
