"""The GraphQL fixtures on a demo database of this package's own: workflow writes (contracts,
payments, handovers of a thousand customers) never disturb the read tests' expectations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql.conftest import (  # noqa: F401  # re-exported fixtures pytest must see here
    GraphQLClient,
    demo,
    demo_app,
    demo_database_url,
    demo_engine,
    demo_settings,
)

_TOKENS: dict[str, str] = {}


@pytest.fixture
async def gql(demo_app: Starlette) -> AsyncIterator[GraphQLClient]:  # noqa: F811  # the fixture
    transport = httpx.ASGITransport(app=demo_app, client=("127.0.0.1", 50018))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)
