"""`recordChanged` over graphql-transport-ws: masked per subscriber, ended at revocation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from events import subscription
from schema.node import from_global_id
from tests.events.conftest import free_socket
from tests.events.helpers import create_customer, partner_token, rows, update_customer
from tests.graphql.conftest import GraphQLClient

SUBSCRIBE = """subscription { recordChanged(types: ["Customer"]) {
  event changedFields at node { id ... on Customer { name industry region phone } } } }"""


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


@pytest.fixture
async def ws_url(events_app: Starlette) -> AsyncIterator[str]:
    """The app served over a real socket (its lifespan already runs in the fixture)."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(events_app, log_level="warning", lifespan="off"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/graphql"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def subscribed(
    url: str, token: str, query: str = SUBSCRIBE
) -> AsyncIterator[ClientConnection]:
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        await asyncio.sleep(0.3)  # the subscription listens before anything is changed
        yield ws


async def next_message(ws: ClientConnection, wait: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def test_a_message_is_masked_for_the_subscriber(
    gql: GraphQLClient, events_engine: AsyncEngine, ws_url: str
) -> None:
    shared = await create_customer(gql, "alice")
    unshared = await create_customer(gql, "alice")
    token, _ = await partner_token(events_engine, [pk(shared["id"])], ["customers:read"])
    async with subscribed(ws_url, token) as ws:
        # a change outside the partner's share says nothing; the shared one comes, masked
        assert "errors" not in await update_customer(gql, "alice", unshared["id"], industry="金融")
        body = await update_customer(gql, "alice", shared["id"], industry="零售", region="北京")
        assert "errors" not in body, body
        message = await next_message(ws)
    assert message["type"] == "next", message
    assert message["payload"]["data"], message
    change = message["payload"]["data"]["recordChanged"]
    assert change["event"] == "customer.updated"
    node = change["node"]
    assert (node["id"], node["name"]) == (shared["id"], shared["name"]) and node["industry"]
    assert node["region"] is None and node["phone"] is None
    assert change["changedFields"] == ["industry"]  # region is withheld, and so is its name
    # the same principal's query answers the same
    answer = await gql.http.post(
        "/graphql",
        json={"query": f'{{ node(id: "{shared["id"]}") {{ id ... on Customer '
                       "{ name industry region phone } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.json()["data"]["node"] == change["node"]
    opened = await rows(
        events_engine,
        "SELECT actor_kind FROM audit_events WHERE resource_type = 'subscription' "
        "AND operation = 'recordChanged' AND actor = 'acme-partner'",
    )
    assert opened and opened[0].actor_kind == "PARTNER"


async def test_a_user_subscription_follows_the_users_own_rules(
    gql: GraphQLClient, ws_url: str
) -> None:
    mine = await create_customer(gql, "alice")
    franks = await create_customer(gql, "frank")
    async with subscribed(ws_url, await gql.token("alice")) as ws:
        assert "errors" not in await update_customer(gql, "frank", franks["id"], industry="金融")
        assert "errors" not in await update_customer(gql, "alice", mine["id"], industry="金融")
        message = await next_message(ws)
    node = message["payload"]["data"]["recordChanged"]["node"]
    assert node["id"] == mine["id"] and node["phone"]  # her own customer, her own phone rule


async def test_a_subscription_ends_when_its_token_is_revoked(
    gql: GraphQLClient, events_engine: AsyncEngine, ws_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscription, "RECHECK_SECONDS", 0.3)
    token, token_id = await partner_token(events_engine, None, ["customers:read"])
    async with subscribed(ws_url, token) as ws:
        revoked = await gql.query(
            "admin", "mutation($id: ID!) { revokeToken(id: $id) }", {"id": token_id}
        )
        assert revoked["data"]["revokeToken"] is True
        message = await next_message(ws, wait=10)
        assert message == {"id": "1", "type": "complete"}
    # a revoked token cannot open one either
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
        with pytest.raises(Exception, match="4403"):
            await asyncio.wait_for(ws.recv(), 5)


async def test_a_revoked_token_gets_no_message_already_queued(
    gql: GraphQLClient, events_engine: AsyncEngine, ws_url: str
) -> None:
    """Revoked between a change and its message: the re-check before sending stops it."""
    customer = await create_customer(gql, "alice")
    token, token_id = await partner_token(events_engine, None, ["customers:read"])
    async with subscribed(ws_url, token) as ws:
        await gql.query("admin", "mutation($id: ID!) { revokeToken(id: $id) }", {"id": token_id})
        assert "errors" not in await update_customer(gql, "alice", customer["id"], industry="金融")
        message = await next_message(ws)
    assert message["type"] == "complete"


async def test_only_subscriptions_are_served_over_the_socket(
    gql: GraphQLClient, ws_url: str
) -> None:
    query = 'mutation { createCustomer(input: {name: "x"}) { id } }'
    async with subscribed(ws_url, await gql.token("alice"), query) as ws:
        message = await next_message(ws)
    assert message["type"] == "error"
    assert "Only subscriptions" in message["payload"][0]["message"]


async def test_a_subscription_posted_over_http_streams_nothing(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    """The endpoint refuses a subscription over POST before anything runs, and says where
    subscriptions are served: nothing is read, nothing is opened, nothing is sent."""
    before = await rows(
        events_engine, "SELECT count(*) AS n FROM audit_events WHERE resource_type = 'subscription'"
    )
    response = await gql.post("alice", SUBSCRIBE)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in body["errors"][0]["message"]
    after = await rows(
        events_engine, "SELECT count(*) AS n FROM audit_events WHERE resource_type = 'subscription'"
    )
    assert after[0].n == before[0].n


async def test_a_subscription_ends_when_its_user_is_deactivated(
    gql: GraphQLClient, events_demo: Any, ws_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schema.node import to_global_id

    monkeypatch.setattr(subscription, "RECHECK_SECONDS", 0.3)
    username = f"sub-user-{id(ws_url)}"
    made = await gql.query(
        "admin",
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        {"i": {"username": username, "password": "a-long-password-1",
               "departmentId": to_global_id("Department", events_demo.department_ids["华东销售"])}},
    )  # fmt: skip
    assert "errors" not in made, made
    login = await gql.http.post(
        "/auth/token", data={"username": username, "password": "a-long-password-1"}
    )
    token = login.json()["access_token"]
    async with subscribed(ws_url, token) as ws:
        gone = await gql.query(
            "admin",
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            {"id": made["data"]["createUser"]["id"]},
        )
        assert "errors" not in gone, gone
        assert await next_message(ws) == {"id": "1", "type": "complete"}
