"""Writing through the API and reading the outbox, for the events tests."""

from __future__ import annotations

import itertools
import random
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed import identifiers
from identity.partner_tokens import issue_partner_token
from tests.graphql.conftest import GraphQLClient

_serial = itertools.count(1)

CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input, force: true) { id name version } }"""
UPDATE = """mutation($id: ID!, $input: CustomerPatch!, $v: Int) {
  updateCustomer(id: $id, input: $input, expectedVersion: $v, force: true) { id version } }"""
CREATE_WEBHOOK = """mutation($input: WebhookInput!) {
  createWebhook(input: $input) { id url events active secret } }"""


def unique(prefix: str = "") -> str:
    rng = random.Random(f"events-{next(_serial)}-{random.random()}")
    return prefix + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(8))


def mobile() -> str:
    return identifiers.mobile_e164(random.Random(f"events-m-{next(_serial)}-{random.random()}"))


async def create_customer(gql: GraphQLClient, username: str, **fields: Any) -> dict[str, Any]:
    base = {"name": unique() + "有限公司", "kind": "COMPANY", "industry": "信息技术",
            "region": "上海", "phone": mobile()}  # fmt: skip
    body = await gql.query(username, CREATE, {"input": {**base, **fields}})
    assert "errors" not in body, body
    created: dict[str, Any] = body["data"]["createCustomer"]
    return created


async def update_customer(
    gql: GraphQLClient, username: str, id: str, version: int | None = None, **fields: Any
) -> dict[str, Any]:
    return await gql.query(username, UPDATE, {"id": id, "input": fields, "v": version})


async def create_webhook(
    gql: GraphQLClient, url: str, events: list[str], **who: Any
) -> dict[str, Any]:
    body = await gql.query(
        "admin", CREATE_WEBHOOK, {"input": {"url": url, "events": events, **who}}
    )
    assert "errors" not in body, body
    hook: dict[str, Any] = body["data"]["createWebhook"]
    return hook


async def partner_token(
    engine: AsyncEngine, customer_ids: list[int] | None, scopes: list[str]
) -> tuple[str, str]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(engine)() as session:
        issued = await issue_partner_token(
            session, partner_name="acme-partner", scopes=scopes, customer_ids=customer_ids,
            expires_in_days=1, issued_by="test",
        )  # fmt: skip
        await session.commit()
    return issued.token, str(issued.id)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def outbox_for(engine: AsyncEngine, resource_id: int | str) -> list[Any]:
    return await rows(
        engine,
        "SELECT id, event, resource_type, changed_fields FROM outbox_events "
        "WHERE resource_id = :id ORDER BY id",
        id=str(resource_id),
    )


async def deactivate_webhooks(engine: AsyncEngine) -> None:
    """Earlier tests' webhooks stop receiving, so each test counts only its own deliveries."""
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE webhooks SET active = false"))
