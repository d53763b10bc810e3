"""The outermost layer: every request gets a request id, and every failure a JSON answer.

Whatever goes wrong below it — a dead database connection in a login, a rollback that fails,
a bug — the client gets `{"errors": [{"message", "extensions": {"code", "requestId"}}]}` with
`X-Request-ID` and the security headers, never Starlette's `500 text/plain`, and the
connection stays usable: the exception is handled here, so uvicorn never sees one and never
drops the keep-alive connection.

- the database (or a pool slot) unavailable: `503`, `UNAVAILABLE`, `Retry-After`;
- anything else: `500`, `INTERNAL`, the details only in the log, under the request id.

The request id is the client's `X-Request-ID` when it looks like one, else a new one. It is
written back into the request's headers (so every layer below reads the same id) and into
`scope["state"]["request_id"]` (`request.state.request_id` for the routes).
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import uuid
from collections.abc import Iterator

import asyncpg
import orjson
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.hardening.headers import SecurityHeadersMiddleware
from api.hardening.settings import HardeningSettings

log = logging.getLogger("dossier.failures")

REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
RETRY_AFTER_SECONDS = 2

# PostgreSQL says the connection is gone or cannot be had (SQLSTATE class 08, 57P01-03, 53300);
# not the whole OperatorInterventionError: a statement timeout (57014) is one too, and is no outage
_UNAVAILABLE_POSTGRES = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
_CONNECT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what caused it, and the members of exception groups, each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, BaseException):
            pending.append(current.orig)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection free within its timeout
        return True
    if isinstance(exc, sa_exc.PendingRollbackError):
        # "Can't reconnect until invalid transaction is rolled back": the connection died
        return "invalid transaction" in str(exc)
    if isinstance(exc, _UNAVAILABLE_POSTGRES):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    if isinstance(exc, ConnectionError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in _CONNECT_ERRNOS


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) means the database could not be reached or used:
    a connection that died or was refused, the server shutting down, no pool slot in time.

    Such a failure is answered 503 `UNAVAILABLE` with `Retry-After`: the request was fine and
    may be repeated; a statement timeout or a constraint violation is not one.
    """
    return any(_is_outage(cause) for cause in _causes(exc))


def request_id_of(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value if REQUEST_ID.match(value) else uuid.uuid4().hex.encode()
    return uuid.uuid4().hex.encode()


def error_body(message: str, code: str, request_id: str) -> bytes:
    error = {"message": message, "extensions": {"code": code, "requestId": request_id}}
    return orjson.dumps({"errors": [error]})


def failure_response(
    exc: BaseException, request_id: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers of the answer to a request that failed with `exc`."""
    if is_database_unavailable(exc):
        body = error_body(
            "The service is unavailable; try again shortly", "UNAVAILABLE", request_id
        )
        return 503, body, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
    return 500, error_body("Internal error", "INTERNAL", request_id), []


class FailureMiddleware:
    def __init__(self, app: ASGIApp, settings: HardeningSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope["headers"] = [
            *((n, v) for n, v in scope["headers"] if n != b"x-request-id"),
            (b"x-request-id", request_id),
        ]
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.setdefault("headers", [])
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    message["headers"] = [*headers, (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the last place anything can be answered
            outage = is_database_unavailable(exc)
            log.log(
                logging.WARNING if outage else logging.ERROR,
                "database unavailable" if outage else "request failed",
                exc_info=exc,
                extra={"request_id": request_id.decode(), "path": scope.get("path")},
            )
            if started:
                return  # part of an answer is out: uvicorn ends the connection, nothing to add
            await self._answer(scope, receive, send, exc, request_id.decode())

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, exc: BaseException, request_id: str
    ) -> None:
        status, body, extra = failure_response(exc, request_id)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store"),
                        (b"x-request-id", request_id.encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        # the same headers as any other answer of the app, which this one bypassed
        await SecurityHeadersMiddleware(answer, self.settings)(scope, receive, send)
