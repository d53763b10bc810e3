"""Fixtures for identity tests: departments and users made here, a probe route behind auth.

`/graphql` is not ours, so `authenticate` is exercised through a probe app that shares the real
app's state (settings, engine) and answers with the Principal it was given.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth.backend import authenticate
from api.auth.errors import AuthenticationError, unauthorized_response
from api.state import AppState
from db.models import Department, User
from identity.users import create_user

PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


@dataclass
class Probe:
    """The test-only protected route; `reached` counts requests that got past authentication."""

    app: Starlette
    reached: int = 0


def fresh_address() -> str:
    """A client address no other test uses, so per-address throttling stays per test."""
    n = next(_addresses)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


@pytest.fixture
def state(app: Starlette) -> AppState:
    return app.state.dossier  # type: ignore[no-any-return]


@pytest.fixture
async def session(state: AppState) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Like the project's client, but from an address of its own."""
    transport = httpx.ASGITransport(app=app, client=(fresh_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def make_probe(state: AppState) -> Probe:
    probe = Probe(app=Starlette())

    async def whoami(request: Request) -> Response:
        try:
            principal = await authenticate(request)
        except AuthenticationError as error:
            return unauthorized_response(error)
        probe.reached += 1
        return JSONResponse(
            {
                "kind": str(principal.kind),
                "name": principal.name,
                "user_id": principal.user_id,
                "department_id": principal.department_id,
                "token_id": str(principal.token_id) if principal.token_id else None,
                "scopes": sorted(principal.scopes) if principal.scopes is not None else None,
                "shared_customer_ids": sorted(principal.shared_customer_ids)
                if principal.shared_customer_ids is not None
                else None,
            }
        )

    probe.app = Starlette(routes=[Route("/whoami", whoami)])
    probe.app.state.dossier = state
    return probe


@pytest.fixture
def probe(state: AppState) -> Probe:
    return make_probe(state)


@pytest.fixture
async def probe_client(probe: Probe) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe.app, client=(fresh_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as http:
        yield http


@pytest.fixture
async def department(state: AppState) -> Department:
    async with state.sessions() as session, session.begin():
        row = Department(name=f"dept-{uuid.uuid4().hex[:10]}")
        session.add(row)
    return row


MakeUser = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(state: AppState, department: Department) -> MakeUser:
    async def make(password: str = PASSWORD, **overrides: object) -> User:
        async with state.sessions() as session, session.begin():
            return await create_user(
                session,
                username=str(overrides.get("username", f"u{uuid.uuid4().hex[:12]}")),
                password=password,
                display_name="Test User",
                department_id=department.id,
            )

    return make


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def access_token_for(client: httpx.AsyncClient, user: User) -> str:
    response = await login(client, user.username, PASSWORD)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
