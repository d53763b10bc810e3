"""Privacy tests get their own demo database and app: erasure must not disturb other folders."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.seed import identifiers
from tests.graphql.conftest import (  # noqa: F401  # re-exported fixtures pytest must see here
    GraphQLClient,
    demo,
    demo_app,
    demo_database_url,
    demo_engine,
    demo_settings,
)

_TOKENS: dict[str, str] = {}
_serial = itertools.count(1)


@pytest.fixture
async def gql(demo_app: Starlette) -> AsyncIterator[GraphQLClient]:  # noqa: F811  # the fixture
    transport = httpx.ASGITransport(app=demo_app, client=("127.0.0.1", 50023))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)


CREATE_PERSON = """
mutation($input: CustomerInput!) {
  createCustomer(input: $input, force: true) { id name }
}"""


def person_values() -> dict[str, Any]:
    """A private person no other record resembles (the id number alice may not write: tests
    that need it store it themselves)."""
    rng = random.Random(f"privacy-{next(_serial)}")
    given = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(3))
    return {
        "name": given,
        "kind": "PERSON",
        "industry": "信息技术",
        "region": "上海",
        "phone": identifiers.mobile_e164(rng),
        "email": f"p{rng.randrange(10**9)}@privacy.example.com",
        "address": f"上海市浦东新区隐私路 {rng.randrange(10**6)} 号",
    }


async def create_person(client: GraphQLClient, username: str = "alice") -> tuple[str, dict]:
    values = person_values()
    body = await client.query(username, CREATE_PERSON, {"input": values})
    assert "errors" not in body, body
    return body["data"]["createCustomer"]["id"], values
