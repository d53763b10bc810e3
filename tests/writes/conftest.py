"""The GraphQL fixtures (demo database, app, client), plus helpers for writing through them.

Fixtures imported here are registered anew for this directory, so this package gets its own
demo database and app (writes here never disturb the read tests' expectations). Tokens are cached
per app: a token of the other app's signing key would be refused.
"""

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
    error_codes,
)

_TOKENS: dict[str, str] = {}


@pytest.fixture
async def gql(demo_app: Starlette) -> AsyncIterator[GraphQLClient]:  # noqa: F811  # the fixture
    transport = httpx.ASGITransport(app=demo_app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)


_serial = itertools.count(1)

CREATE_CUSTOMER = """
mutation($input: CustomerInput!, $force: Boolean) {
  createCustomer(input: $input, force: $force) {
    id name kind industry region level tags phone email updatedAt owner { username }
  }
}"""


def unique(prefix: str = "") -> str:
    """A name unlike any seeded or earlier record's, so tests never collide as duplicates."""
    rng = random.Random(f"name-{next(_serial)}")
    return prefix + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(6))


def credit_code() -> str:
    """A valid 统一社会信用代码 no other record has."""
    return identifiers.credit_code(random.Random(f"writes-{next(_serial)}"), "310000")


def mobile() -> str:
    """A valid mobile number in E.164 that no other record has (with overwhelming odds)."""
    return identifiers.mobile_e164(random.Random(f"writes-{next(_serial)}"))


def company(**overrides: Any) -> dict[str, Any]:
    base = {"name": unique() + "有限公司", "kind": "COMPANY", "industry": "信息技术",
            "region": "上海"}  # fmt: skip
    return {**base, **overrides}


async def create_customer(
    client: GraphQLClient, username: str, force: bool = True, **fields: Any
) -> dict[str, Any]:
    """A fresh customer owned by `username`; `force` skips duplicate checks by default."""
    variables = {"input": company(**fields), "force": force}
    body = await client.query(username, CREATE_CUSTOMER, variables)
    assert "errors" not in body, body
    customer: dict[str, Any] = body["data"]["createCustomer"]
    return customer


def first_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error
