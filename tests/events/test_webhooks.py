"""Webhooks: managed by admins, signed deliveries, the receiver's mask, retries, SSRF."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from starlette.applications import Starlette

from events import runtime
from events.safety import UnsafeURLError, check_url
from events.settings import WebhookSettings
from resolvers.records import SPECS
from schema.node import from_global_id, to_global_id
from tests.events.conftest import Receiver, state_of, worker_for
from tests.events.helpers import (
    CREATE_WEBHOOK,
    create_customer,
    create_webhook,
    deactivate_webhooks,
    partner_token,
    rows,
    update_customer,
)
from tests.graphql.conftest import GraphQLClient, error_codes

COLUMNS = " ".join(n for n, f in SPECS["Customer"].fields.items() if f.column is not None)


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def drain(app: Starlette, **overrides: Any) -> int:
    worker = worker_for(app, **overrides)
    total = 0
    try:
        while done := await worker.run_once():
            total += done
    finally:
        await worker.stop()
    return total


async def as_query(gql: GraphQLClient, bearer: str, customer_id: str) -> dict[str, Any]:
    """What the principal's own GraphQL query returns of the record (denied fields dropped)."""
    response = await gql.http.post(
        "/graphql",
        json={"query": f'{{ node(id: "{customer_id}") {{ id ... on Customer {{ {COLUMNS} }} }} }}'},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    body = response.json()
    denied = {
        e["extensions"]["field"].split(".", 1)[1]
        for e in body.get("errors", [])
        if e["extensions"]["code"] == "FORBIDDEN"
    }
    node = body["data"]["node"]
    return {k: v for k, v in node.items() if k not in denied}


async def test_only_admins_manage_webhooks_and_the_secret_is_shown_once(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    variables = {"input": {"url": "http://127.0.0.1:9/x", "events": ["*"], "role": "finance"}}
    refused = await gql.query("alice", CREATE_WEBHOOK, variables)
    assert error_codes(refused) == ["FORBIDDEN"]
    hook = await create_webhook(gql, "http://127.0.0.1:9/x", ["customer.updated"], role="finance")
    assert hook["secret"].startswith("whsec_") and hook["active"]
    listed = await gql.query("admin", "{ webhooks { id url events secret } }")
    mine = [h for h in listed["data"]["webhooks"] if h["id"] == hook["id"]]
    assert mine == [{"id": hook["id"], "url": hook["url"], "events": ["customer.updated"],
                     "secret": None}]  # fmt: skip
    stored = await rows(events_engine, "SELECT secret_enc FROM webhooks WHERE id = :i",
                        i=pk(hook["id"]))  # fmt: skip
    assert hook["secret"] not in stored[0].secret_enc
    assert error_codes(await gql.query("alice", "{ webhooks { id } }")) == ["FORBIDDEN"]
    bad = await gql.query(
        "admin", CREATE_WEBHOOK,
        {"input": {"url": "http://127.0.0.1:9/x", "events": ["customer.exploded"],
                   "role": "finance"}},
    )  # fmt: skip
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    as_partner_role = await gql.query(
        "admin", CREATE_WEBHOOK,
        {"input": {"url": "http://127.0.0.1:9/x", "events": ["*"], "role": "partner"}},
    )  # fmt: skip
    assert error_codes(as_partner_role) == ["BAD_USER_INPUT"]
    deleted = await gql.query(
        "admin", "mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": hook["id"]}
    )
    assert deleted["data"]["deleteWebhook"] is True
    trail = await rows(
        events_engine,
        "SELECT action FROM audit_events WHERE resource_type = 'webhook' "
        "AND :id = ANY(resource_ids) ORDER BY seq",
        id=str(pk(hook["id"])),
    )
    assert [t.action for t in trail] == ["CREATE", "READ", "DELETE"]  # the listing is a read


async def test_a_delivery_is_signed_and_verifies(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    customer = await create_customer(gql, "alice")
    assert "errors" not in await update_customer(gql, "alice", customer["id"], industry="金融")
    assert await drain(events_app) == 1
    (got,) = receiver.received
    payload = Webhook(hook["secret"]).verify(got["body"], got["headers"])
    assert payload["type"] == "customer.updated"
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["data"]["id"] == customer["id"]
    assert payload["data"]["changedFields"] == ["industry"]
    assert got["headers"]["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(got["body"], got["headers"])
    status = await gql.query(
        "admin",
        "query($w: ID!) { webhookDeliveries(webhookId: $w) { totalCount nodes { event status "
        "attempts lastError } } }",
        {"w": hook["id"]},
    )
    assert status["data"]["webhookDeliveries"] == {
        "totalCount": 1,
        "nodes": [{"event": "customer.updated", "status": "DELIVERED", "attempts": 1,
                   "lastError": None}],
    }  # fmt: skip
    trail = await rows(
        events_engine,
        "SELECT fields, changes->>'status' AS status FROM audit_events WHERE action = 'EXPORT' "
        "AND operation = 'webhookDelivery' AND :id = ANY(resource_ids)",
        id=str(pk(customer["id"])),
    )
    assert [t.status for t in trail] == ["DELIVERED"] and "name" in trail[0].fields


async def test_a_role_webhook_sees_what_the_role_queries(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    customer = await create_customer(gql, "alice", email=f"lead{id(receiver)}@example.com")
    assert "errors" not in await update_customer(gql, "alice", customer["id"], phone=None)
    await drain(events_app)
    (got,) = receiver.received
    node = got["json"]["data"]["node"]
    node.pop("__typename")
    # dave holds `finance` (rules of scope ALL): the webhook's role reads what dave reads
    expected = await as_query(gql, await gql.token("dave"), customer["id"])
    assert node == expected
    assert "totalSpend" in node and "phone" not in node and "email" not in node
    # the changed field it may not read is not named either
    assert got["json"]["data"]["changedFields"] == []


async def test_a_partner_webhook_never_sees_more_than_the_partner_query(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    shared = await create_customer(gql, "alice")
    unshared = await create_customer(gql, "alice")
    token, token_id = await partner_token(
        events_engine, [pk(shared["id"])], ["customers:read", "contacts:read"]
    )
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], partnerTokenId=token_id)
    for customer in (shared, unshared):
        body = await update_customer(gql, "alice", customer["id"], industry="金融", region="北京")
        assert "errors" not in body, body
    await drain(events_app)
    (got,) = receiver.received  # the unshared customer's change is not sent at all
    node = got["json"]["data"]["node"]
    node.pop("__typename")
    assert node == await as_query(gql, token, shared["id"])
    # custom fields: the partner's policy names none, so the JSON carries no key
    assert node.pop("customFields", {}) in ({}, None)
    assert set(node) == {"id", "name", "industry"}
    assert got["json"]["data"]["changedFields"] == ["industry"]  # region is not the partner's
    statuses = await rows(
        events_engine,
        "SELECT status, last_error FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id",
        w=pk(hook["id"]),
    )
    assert [s.status for s in statuses] == ["DELIVERED", "SKIPPED"]
    # a revoked token reads nothing: later changes are skipped, never sent
    revoke = await gql.query(
        "admin", "mutation($id: ID!) { revokeToken(id: $id) }", {"id": token_id}
    )
    assert revoke["data"]["revokeToken"] is True
    assert "errors" not in await update_customer(gql, "alice", shared["id"], industry="零售")
    await drain(events_app)
    assert len(receiver.received) == 1


async def test_retries_back_off_dead_letter_and_keep_endpoint_order(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    customer = await create_customer(gql, "alice")
    for industry in ("金融", "零售"):
        assert "errors" not in await update_customer(gql, "alice", customer["id"],
                                                     industry=industry)  # fmt: skip
    receiver.status = 500
    # a long backoff: the first event waits for its retry, and the second waits behind it
    assert await drain(events_app, retry_base_seconds=3600) == 1
    assert await drain(events_app, retry_base_seconds=3600) == 0
    deliveries = await rows(
        events_engine,
        "SELECT id, status, attempts, last_error, next_attempt_at > now() + interval '30 min' "
        "AS later FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id",
        w=pk(hook["id"]),
    )
    assert [(d.status, d.attempts, d.last_error, d.later) for d in deliveries] == [
        ("RETRYING", 1, "HTTP 500", True),
        ("PENDING", 0, None, False),
    ]
    assert len(receiver.received) == 1
    # no backoff now: the first is retried until dead (3 attempts), then the second goes
    async with events_engine.begin() as connection:
        from sqlalchemy import text

        await connection.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE webhook_id = :w"),
            {"w": pk(hook["id"])},
        )
    await drain(events_app, retry_base_seconds=0)
    first, second = await rows(
        events_engine,
        "SELECT status, attempts FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id",
        w=pk(hook["id"]),
    )
    assert (first.status, first.attempts) == ("DEAD", 3)
    assert (second.status, second.attempts) == ("DEAD", 3)
    events = [r["json"]["data"]["changedFields"] and r["headers"]["webhook-id"]
              for r in receiver.received]  # fmt: skip
    # order per endpoint: every attempt of the first before any of the second
    first_id, second_id = (f"msg_{d.id}" for d in deliveries)
    assert events == [first_id] * 3 + [second_id] * 3
    trail = await rows(
        events_engine,
        "SELECT changes->>'status' AS status FROM audit_events WHERE action = 'EXPORT' "
        "AND changes->>'webhook' = :w ORDER BY seq",
        w=str(pk(hook["id"])),
    )
    assert [t.status for t in trail] == ["RETRYING", "RETRYING", "DEAD", "RETRYING", "RETRYING",
                                         "DEAD"]  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "ftp://example.com/x",
        "http://user:pw@example.com/",
        "file:///etc/passwd",
    ],
)
async def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        await check_url(url, allow_private=False)


async def test_create_and_send_refuse_private_targets(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    store = state_of(events_app).extras["policy_store"]
    allowed = runtime._SETTINGS[store]
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    runtime._SETTINGS[store] = WebhookSettings(allow_private=False)
    try:
        refused = await gql.query(
            "admin", CREATE_WEBHOOK,
            {"input": {"url": receiver.url, "events": ["*"], "role": "finance"}},
        )  # fmt: skip
        assert error_codes(refused) == ["BAD_USER_INPUT"]
        assert refused["errors"][0]["extensions"]["field"] == "url"
    finally:
        runtime._SETTINGS[store] = allowed
    # created while allowed, sent after the setting changed: checked again, never sent
    customer = await create_customer(gql, "alice")
    assert "errors" not in await update_customer(gql, "alice", customer["id"], industry="金融")
    await drain(events_app, allow_private=False, retry_base_seconds=3600)
    assert receiver.received == []
    (delivery,) = await rows(
        events_engine,
        "SELECT status, last_error FROM webhook_deliveries WHERE webhook_id = :w",
        w=pk(hook["id"]),
    )
    assert delivery.status == "RETRYING" and delivery.last_error.startswith("refused")


async def test_the_response_size_is_capped_and_redirects_are_not_followed(
    gql: GraphQLClient, events_app: Starlette, events_engine: AsyncEngine, receiver: Receiver
) -> None:
    await deactivate_webhooks(events_engine)
    hook = await create_webhook(gql, receiver.url, ["customer.updated"], role="finance")
    receiver.status = 302
    customer = await create_customer(gql, "alice")
    assert "errors" not in await update_customer(gql, "alice", customer["id"], industry="金融")
    await drain(events_app, retry_base_seconds=3600)
    (delivery,) = await rows(
        events_engine,
        "SELECT status, last_error FROM webhook_deliveries WHERE webhook_id = :w",
        w=pk(hook["id"]),
    )
    assert (delivery.status, delivery.last_error) == ("RETRYING", "redirect not followed")
    assert to_global_id("Customer", pk(customer["id"])) == customer["id"]
