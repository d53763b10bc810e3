"""The OAuth2 endpoints: `POST /auth/token` (the password and refresh_token grants),
`POST /auth/refresh` (the refresh grant under its older name), `POST /auth/revoke` (RFC 7009)
and `POST /auth/logout`.

Every answer carries `Cache-Control: no-store` (RFC 6749 §5.1): tokens must not sit in caches.
Errors are RFC 6749 §5.2 bodies, `{"error", "error_description"}`, with status 400 — except
wrong credentials at the password grant, which stay 401 because the public contract
(docs/api.md) fixes that status; the body is the same `invalid_grant` whether or not the user
exists, after the same amount of hashing. Repeated failures are refused with 429 for a while
(`api.auth.throttle`: per username and address, per username from unknown networks, per
address). Logins, failed logins, refresh-token reuse, revocations and logouts are audited in
the transaction of the change.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth.access_tokens import issue_access_token, verify_access_token
from api.auth.backend import authenticate, bearer_token
from api.auth.errors import AuthenticationError, unauthorized_response
from api.auth.throttle import (
    LoginKeys,
    LoginThrottle,
    ThrottleKey,
    ThrottleKind,
    TokenBucketThrottle,
)
from api.metrics import count_login_failure, count_login_throttled
from api.state import AppState
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.models import User
from identity.errors import RefreshTokenError, RefreshTokenReusedError
from identity.opaque_tokens import PARTNER_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX
from identity.refresh_tokens import (
    IssuedRefreshToken,
    issue_refresh_token,
    revoke_refresh_token,
    rotate_refresh_token,
)
from identity.users import check_credentials, normalize_username, revoke_access_tokens

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INVALID_CREDENTIALS = "invalid username or password"
THROTTLE_STATE_KEY = "login_throttle"
_MAX_FIELD = 1024  # no username, password or refresh token is longer; larger forms are refused
_MAX_BODY = 8 * _MAX_FIELD


def login_throttle(state: AppState) -> LoginThrottle:
    """The app's throttle, made on first use; another store can be put in `extras` first."""
    throttle = state.extras.get(THROTTLE_STATE_KEY)
    if throttle is None:
        shared = state.extras.get("shared_store")
        if shared is not None:  # DOSSIER_REDIS_URL: one throttle for every process
            from api.auth.shared_throttle import SharedLoginThrottle

            throttle = SharedLoginThrottle(shared, state.settings.auth.login_throttle)
        else:
            throttle = TokenBucketThrottle(state.settings.auth.login_throttle)
        state.extras[THROTTLE_STATE_KEY] = throttle
    return throttle


def _answer(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **headers})


def _error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return _answer({"error": error, "error_description": description}, status, **headers)


def _too_many(wait: int) -> JSONResponse:
    return _error(
        429,
        "too_many_attempts",
        "too many failed attempts; try again later",
        **{"Retry-After": str(wait)},
    )


async def _form(request: Request) -> FormData | None:
    """The urlencoded body, or None when it is not one (RFC 6749 §4.3.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    if int(request.headers.get("content-length") or 0) > _MAX_BODY:
        return None
    form = await request.form(max_fields=10, max_files=0)
    if any(len(str(value)) > _MAX_FIELD for value in form.values()):
        return None
    return form


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _audit(request: Request, **fields: Any) -> AuditRecord:
    return AuditRecord(
        ip=_client_address(request),
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
        **fields,
    )


def _token_pair(state: AppState, user: User, refresh: IssuedRefreshToken) -> dict[str, Any]:
    access = issue_access_token(
        state.settings.auth, user_id=user.id, token_version=user.token_version
    )
    return {
        "access_token": access.token,
        "token_type": "bearer",
        "expires_in": access.expires_in,
        "refresh_token": refresh.token,
    }


async def token(request: Request) -> JSONResponse:
    """The token endpoint (RFC 6749 §3.2): `grant_type=password` (the default when absent) or
    `grant_type=refresh_token`."""
    form = await _form(request)
    if form is None:
        return _error(400, "invalid_request", "expected a form-encoded body")
    grant_type = form.get("grant_type", "password")
    if grant_type == "refresh_token":
        return await _refresh_grant(request, form)
    if grant_type != "password":
        return _error(400, "unsupported_grant_type", "grant_type must be password or refresh_token")
    return await _password_grant(request, form)


async def _password_grant(request: Request, form: FormData) -> JSONResponse:
    state: AppState = request.app.state.dossier
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return _error(400, "invalid_request", "username and password are required")

    address = _client_address(request)
    keys = LoginKeys.of(normalize_username(username), address)
    throttle = login_throttle(state)
    known = await throttle.remembers(keys.known_network)
    wait = await throttle.retry_after(keys.checked(from_known_network=known))
    if wait is not None:
        log.warning("login throttled for %r from %s (%d s)", username[:100], address, wait)
        count_login_throttled()
        return _too_many(wait)

    async with state.sessions() as session, session.begin():
        check = await check_credentials(session, username, password)
        if check.user is None:
            event = _audit(
                request,
                actor=normalize_username(username)[:100],
                actor_kind=ActorKind.USER,
                action=AuditAction.LOGIN_FAILED,
                resource_type="user",
                changes={"reason": str(check.failure)},
            )
            body = None
        else:
            user = check.user
            refresh = await issue_refresh_token(
                session, user_id=user.id, ttl_seconds=state.settings.auth.refresh_token_ttl_seconds
            )
            body = _token_pair(state, user, refresh)
            event = _audit(
                request,
                actor=user.username,
                actor_kind=ActorKind.USER,
                action=AuditAction.LOGIN,
                resource_type="user",
                resource_ids=[str(user.id)],
            )
        await append_events(session, [event])

    if body is None:
        await throttle.record_failure(keys.spent)
        count_login_failure()
        return _error(401, "invalid_grant", INVALID_CREDENTIALS)
    await throttle.reset(keys.pair)
    await throttle.remember(
        keys.known_network, state.settings.auth.login_throttle.known_network_seconds
    )
    return _answer(body)


async def refresh(request: Request) -> JSONResponse:
    """`/auth/refresh`: the refresh grant of `/auth/token`, kept for clients of the first
    release (`grant_type` may be left out here)."""
    form = await _form(request)
    if form is None:
        return _error(400, "invalid_request", "expected a form-encoded body")
    if form.get("grant_type", "refresh_token") != "refresh_token":
        return _error(400, "unsupported_grant_type", "expected grant_type=refresh_token")
    return await _refresh_grant(request, form)


async def _refresh_grant(request: Request, form: FormData) -> JSONResponse:
    state: AppState = request.app.state.dossier
    presented = form.get("refresh_token")
    if not isinstance(presented, str) or not presented:
        return _error(400, "invalid_request", "refresh_token is required")

    # refresh secrets cannot be guessed, but a client hammering bad ones is still refused
    keys = [ThrottleKey(ThrottleKind.ADDRESS, _client_address(request))]
    throttle = login_throttle(state)
    wait = await throttle.retry_after(keys)
    if wait is not None:
        return _too_many(wait)

    failure: RefreshTokenError | None = None
    async with state.sessions() as session, session.begin():
        try:
            rotated = await rotate_refresh_token(
                session, presented, ttl_seconds=state.settings.auth.refresh_token_ttl_seconds
            )
            body = _token_pair(state, rotated.user, rotated.refresh)
        except RefreshTokenReusedError as reuse:
            # the family is revoked in this session: commit it together with its event
            failure = reuse
            owner = await session.get(User, reuse.user_id)
            await append_events(
                session,
                [
                    _audit(
                        request,
                        actor=owner.username if owner else str(reuse.user_id),
                        actor_kind=ActorKind.USER,
                        action=AuditAction.TOKEN_REFRESH_REUSED,
                        resource_type="refresh_token_family",
                        resource_ids=[str(reuse.family_id)],
                    )
                ],
            )
        except RefreshTokenError as error:
            failure = error  # nothing was written; the transaction ends empty

    if failure is not None:
        await throttle.record_failure(keys)
        return _error(400, "invalid_grant", failure.reason)
    return _answer(body)


async def _revoke_refresh(request: Request, presented: str, *, user_id: int | None = None) -> None:
    """Revoke the family of a refresh token and audit it; `user_id`: only if it is theirs."""
    state: AppState = request.app.state.dossier
    async with state.sessions() as session, session.begin():
        row = await revoke_refresh_token(session, presented, user_id=user_id)
        if row is None:
            return
        owner = await session.get(User, row.user_id)
        await append_events(
            session,
            [
                _audit(
                    request,
                    actor=owner.username if owner else str(row.user_id),
                    actor_kind=ActorKind.USER,
                    action=AuditAction.TOKEN_REVOKED,
                    resource_type="refresh_token_family",
                    resource_ids=[str(row.family_id)],
                )
            ],
        )


async def _revoke_access(
    request: Request, user_id: int, token_version: int, action: AuditAction
) -> None:
    """End the user's access tokens of `token_version` and audit it (once: a second call for
    the same version changes nothing and writes nothing)."""
    state: AppState = request.app.state.dossier
    async with state.sessions() as session, session.begin():
        if not await revoke_access_tokens(session, user_id, token_version):
            return
        owner = await session.get(User, user_id)
        await append_events(
            session,
            [
                _audit(
                    request,
                    actor=owner.username if owner else str(user_id),
                    actor_kind=ActorKind.USER,
                    action=action,
                    resource_type="user",
                    resource_ids=[str(user_id)],
                    changes={"access_tokens": {"old": token_version, "new": token_version + 1}},
                )
            ],
        )


async def revoke(request: Request) -> JSONResponse:
    """RFC 7009 token revocation: form `token` (and an optional `token_type_hint`).

    A refresh token revokes its whole family; a user access token ends every access token of
    its user issued before (they are stateless JWTs, so a version on the user's row is what
    can be moved on), while the user's refresh tokens keep working. An unknown, expired or
    already revoked token is answered 200 like a revoked one (§2.2: the client cannot act on
    the difference, and a prober learns nothing). Partner tokens are revoked by an
    administrator (`revokeToken`), not here: 400 `unsupported_token_type`.
    """
    form = await _form(request)
    if form is None:
        return _error(400, "invalid_request", "expected a form-encoded body")
    presented = form.get("token")
    if not isinstance(presented, str) or not presented:
        return _error(400, "invalid_request", "token is required")
    if presented.startswith(PARTNER_TOKEN_PREFIX):
        return _error(400, "unsupported_token_type", "partner tokens are revoked with revokeToken")
    state: AppState = request.app.state.dossier
    if presented.startswith(REFRESH_TOKEN_PREFIX):
        await _revoke_refresh(request, presented)
        return _answer({})
    try:
        claims = verify_access_token(state.settings.auth, presented)
    except AuthenticationError:
        return _answer({})  # not a token of ours, or no longer valid: nothing to revoke
    await _revoke_access(request, claims.user_id, claims.token_version, AuditAction.TOKEN_REVOKED)
    return _answer({})


async def logout(request: Request) -> JSONResponse:
    """Log out: needs the user's `Authorization: Bearer` access token; ends the user's access
    tokens and, when the form carries this session's `refresh_token`, its family. 200 `{}`."""
    try:
        principal = await authenticate(request)
    except AuthenticationError as error:
        return unauthorized_response(error)
    if principal.user_id is None:
        return _error(400, "unsupported_token_type", "partner tokens cannot log out")
    state: AppState = request.app.state.dossier
    form = await _form(request)
    presented = form.get("refresh_token") if form is not None else None
    # `authenticate` verified this token already; its claims name the version to end. First:
    # revoking the refresh family moves the version on too, and the LOGOUT event is this one's
    claims = verify_access_token(
        state.settings.auth, bearer_token(request.headers.get("authorization"))
    )
    await _revoke_access(request, claims.user_id, claims.token_version, AuditAction.LOGOUT)
    if isinstance(presented, str) and presented:
        await _revoke_refresh(request, presented, user_id=principal.user_id)
    return _answer({})


routes: list[Route] = [
    Route("/auth/token", token, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/revoke", revoke, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]
