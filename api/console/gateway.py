"""The console's only way to data: the public API, called in-process as the signed-in user.

Each page runs GraphQL operations by sending `POST /graphql` with the user's bearer token
through the application itself (its middleware and the same endpoint every client reaches),
so the console sees exactly what the API shows that user, and every read is audited by the same
code — with the operation names the console gives (`ConsolePolicies`, …) and the browser's
address. Chosen over calling resolvers directly because there is then no second path to keep
in step with the first; chosen over a browser-side GraphQL client because the tokens stay out
of JavaScript and the pages work without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message

from api.console.session import ConsoleSession


@dataclass
class Answer:
    """One HTTP answer of the API, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def call(
    app: ASGIApp,
    request: Request,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """Send one request through the app as if it came from the browser's address."""
    raw_headers = [(b"host", request.headers.get("host", "console").encode())]
    raw_headers += [(b"user-agent", request.headers.get("user-agent", "console").encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "state": {},
    }
    sent = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if sent:
            # the browser is still there: a streaming answer listens for a disconnect while it
            # streams, and must not hear one before the end
            await never.wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status, answer_headers, chunks = 500, {}, []

    async def send(message: Message) -> None:
        nonlocal status, answer_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            answer_headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, answer_headers, b"".join(chunks))


@dataclass
class Result:
    """A GraphQL answer: `data`, and errors by code."""

    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    def codes(self) -> set[str]:
        return {str(e.get("extensions", {}).get("code")) for e in self.errors}

    @property
    def is_refused(self) -> bool:
        """A root operation the caller has no rule for (FORBIDDEN on `Query.x`/`Mutation.x`)."""
        return any(
            e.get("extensions", {}).get("code") == "FORBIDDEN"
            and str(e.get("extensions", {}).get("field", "")).startswith(("Query.", "Mutation."))
            for e in self.errors
        )

    def messages(self) -> list[str]:
        return [str(e.get("message")) for e in self.errors]


class SignedOutError(Exception):
    """The session's tokens no longer work (expired refresh, deactivated user, revoked)."""


class Gateway:
    """GraphQL as the session's user, refreshing the access token once when it has expired."""

    def __init__(self, request: Request, session: ConsoleSession) -> None:
        self._request = request
        self._session = session
        self._app: ASGIApp = request.app

    async def token(self, username: str, password: str) -> Answer:
        form = urlencode({"username": username, "password": password}).encode()
        return await call(
            self._app,
            self._request,
            "POST",
            "/auth/token",
            body=form,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    async def _refresh(self) -> bool:
        if not self._session.refresh_token:
            return False
        form = urlencode({"refresh_token": self._session.refresh_token}).encode()
        answer = await call(
            self._app,
            self._request,
            "POST",
            "/auth/refresh",
            body=form,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        if answer.status != 200:
            return False
        pair = answer.json()
        self._session.access_token = pair["access_token"]
        self._session.refresh_token = pair.get("refresh_token")
        self._session.changed = True
        return True

    async def _send(self, method: str, path: str, body: bytes, kind: str) -> Answer:
        headers = {"authorization": f"Bearer {self._session.access_token}"}
        if kind:
            headers["content-type"] = kind
        return await call(self._app, self._request, method, path, headers=headers, body=body)

    async def authorized(self, method: str, path: str, body: bytes = b"", kind: str = "") -> Answer:
        if not self._session.is_signed_in:
            raise SignedOutError
        answer = await self._send(method, path, body, kind)
        if answer.status == 401:
            if not await self._refresh():
                self._session.sign_out()
                raise SignedOutError
            answer = await self._send(method, path, body, kind)
            if answer.status == 401:
                self._session.sign_out()
                raise SignedOutError
        return answer

    async def run(self, query: str, variables: dict[str, Any] | None = None) -> Result:
        body = orjson.dumps({"query": query, "variables": variables or {}})
        answer = await self.authorized("POST", "/graphql", body, "application/json")
        try:
            document = answer.json()
        except orjson.JSONDecodeError:
            return Result(None, [{"message": "unreadable answer"}], answer.status)
        return Result(document.get("data"), document.get("errors") or [], answer.status)
