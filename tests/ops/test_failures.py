"""Every failure answers JSON with a request id and the security headers; a dead database
connection answers 503 UNAVAILABLE, and the next request is served."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import hardening_layers as layers
from api.app import create_app
from api.hardening.failures import is_database_unavailable
from api.settings import Settings
from db.engine import create_engine, create_sessionmaker
from resolvers.context import RequestDatabase
from tests.ops.conftest import PASSWORD, terminate_connections

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy")


@pytest.fixture(scope="module")
async def fault_app(fault_env: dict[str, str]) -> AsyncIterator[Starlette]:
    application = create_app(Settings.from_env(fault_env))
    async with application.router.lifespan_context(application):
        yield application
    # connections lost under a request are given back when collected: do it now, not during
    # a later test that reads the process-wide pool gauges
    gc.collect()


@pytest.fixture
async def fault_client(fault_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fault_app, client=("127.0.0.1", 50012))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def assert_json_failure(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    for header in SECURITY_HEADERS:
        assert header in response.headers, header


async def test_a_bug_in_any_route_answers_internal_json_with_request_id(
    fault_env: dict[str, str],
) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug with a secret in its message")

    settings = Settings.from_env(fault_env)
    app = Starlette(routes=[Route("/broken", broken)], middleware=layers.http_middleware(settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/broken", headers={"X-Request-ID": "client-chosen-1"})
    assert_json_failure(response, 500, "INTERNAL")
    assert response.headers["x-request-id"] == "client-chosen-1"
    assert "secret" not in response.text


async def test_a_terminated_connection_fails_a_login_with_503_then_serves_the_next(
    fault_client: httpx.AsyncClient, fault_env: dict[str, str]
) -> None:
    form = {"username": "dave", "password": PASSWORD}
    assert (await fault_client.post("/auth/token", data=form)).status_code == 200
    assert await terminate_connections(fault_env["DATABASE_URL"], pools_only=True) >= 1
    refused = await fault_client.post("/auth/token", data=form)
    assert_json_failure(refused, 503, "UNAVAILABLE")
    assert int(refused.headers["retry-after"]) >= 1
    # the pool dropped the dead connections: the next login gets a fresh one
    assert (await fault_client.post("/auth/token", data=form)).status_code == 200
    assert (await fault_client.get("/readyz")).status_code == 200


async def test_a_write_on_a_terminated_connection_answers_json_not_text(
    fault_client: httpx.AsyncClient, fault_env: dict[str, str]
) -> None:
    login = await fault_client.post("/auth/token", data={"username": "alice", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    mutation = {
        "query": "mutation($input: CustomerInput!) { createCustomer(input: $input, force: true)"
        " { name } }",
        "variables": {"input": {"name": "断线测试有限公司", "kind": "COMPANY", "region": "上海"}},
    }
    me = {"query": "{ me { user { username } } }"}
    assert (await fault_client.post("/graphql", json=me, headers=headers)).status_code == 200
    await terminate_connections(fault_env["DATABASE_URL"])
    response = await fault_client.post("/graphql", json=mutation, headers=headers)
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert "x-request-id" in response.headers
    body = response.json()
    assert response.status_code in (200, 503), body
    if "errors" in body:  # the write met the dead connection: nothing half-done, and said so
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes <= {"INTERNAL", "UNAVAILABLE"}, body
    else:
        assert body["data"]["createCustomer"]["name"] == "断线测试有限公司"
    again = await fault_client.post("/graphql", json=me, headers=headers)
    assert again.status_code == 200
    assert again.json()["data"]["me"]["user"]["username"] == "alice"


@pytest.mark.parametrize(
    "payload",
    [{"query": ""}, {"query": "query A { me { user { username } } }", "operationName": "B"}],
)
async def test_bad_documents_answer_json(
    fault_client: httpx.AsyncClient, payload: dict[str, str]
) -> None:
    login = await fault_client.post("/auth/token", data={"username": "bob", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await fault_client.post("/graphql", json=payload, headers=headers)
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert response.json()["errors"][0]["extensions"]["code"]
    assert "x-request-id" in response.headers


async def test_a_request_session_on_a_dead_connection_recovers_and_closes_quietly(
    fault_env: dict[str, str],
) -> None:
    engine = create_engine(fault_env["DATABASE_URL"])
    try:
        db = RequestDatabase(create_sessionmaker(engine))
        assert (await db.execute(text("SELECT 1"))).scalar() == 1
        await terminate_connections(fault_env["DATABASE_URL"])
        with pytest.raises(DBAPIError) as failed:
            await db.execute(text("SELECT 1"))
        assert is_database_unavailable(failed.value)
        await db.recover()  # neither raises on the dead connection
        await db.close()
        fresh = RequestDatabase(create_sessionmaker(engine))
        assert (await fresh.execute(text("SELECT 2"))).scalar() == 2
        await fresh.close()
    finally:
        await engine.dispose()


def test_what_counts_as_the_database_being_unavailable() -> None:
    assert is_database_unavailable(ConnectionRefusedError(111, "refused"))
    assert is_database_unavailable(PoolTimeoutError("QueuePool limit reached"))
    try:
        try:
            raise ConnectionResetError(104, "reset")
        except ConnectionResetError as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as wrapped:
        assert is_database_unavailable(wrapped)
    assert is_database_unavailable(ExceptionGroup("g", [ValueError(), ConnectionAbortedError()]))
    assert not is_database_unavailable(ValueError("bad input"))
    assert not is_database_unavailable(TimeoutError())  # an execution deadline is no outage
    assert not is_database_unavailable(PermissionError(13, "denied"))
