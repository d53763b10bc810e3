"""The security suite's servers: the demo data behind differently configured apps.

`sec` talks to an app with every default limit except the per-user rate budget, which is
raised so that this suite's hundreds of requests as one user test the other limits and not
the bucket; the rate-limit tests build apps with tight budgets of their own. `app_with` builds
an app on the same demo database with other settings (prod or dev mode, small limits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.applications import Starlette

from api.app import create_app
from api.hardening.settings import HardeningSettings, RateBudget
from api.settings import Settings
from identity.partner_tokens import issue_partner_token
from tests.graphql import conftest as graphql_fixtures
from tests.graphql.conftest import _TOKENS, GraphQLClient

# the demo database and app of tests/graphql, shared: one seeded database per run
demo_database_url = graphql_fixtures.demo_database_url
demo_settings = graphql_fixtures.demo_settings
demo_engine = graphql_fixtures.demo_engine
demo = graphql_fixtures.demo
demo_app = graphql_fixtures.demo_app
gql = graphql_fixtures.gql

GENEROUS = RateBudget(burst=1_000_000, per_second=1_000_000.0)

# what must never reach a client: stack traces, file paths, SQL and driver names
LEAKS = re.compile(
    r"Traceback|File \"|site-packages|/work/|\.py\b|sqlalchemy|asyncpg|SQLSTATE|psycopg"
    r"|\bSELECT\b|\bFROM\b|\bWHERE\b|syntax error at|relation \"",
    re.IGNORECASE,
)


def settings_with(base: Settings, env: str | None = None, **hardening: Any) -> Settings:
    """`base` in another mode and with other limits; hardening defaults follow the mode."""
    env = env or base.env
    defaults = HardeningSettings.from_env({"DOSSIER_ENV": env})
    return dataclasses.replace(base, env=env, hardening=dataclasses.replace(defaults, **hardening))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A GraphQLClient on a fresh app with `settings`, lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50002))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, _TOKENS)


@pytest.fixture(scope="package")
def seeded_settings(demo_settings: Settings, demo: object) -> Settings:
    """The demo settings, once the demo database is migrated and seeded."""
    return demo_settings


@pytest.fixture(scope="package")
async def hardened_app(seeded_settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings_with(seeded_settings, user_rate=GENEROUS))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def sec(hardened_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=hardened_app, client=("127.0.0.1", 50003))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)


async def partner_token(
    engine: AsyncEngine, customer_ids: Sequence[int] | None, scopes: Sequence[str]
) -> str:
    async with async_sessionmaker(engine)() as session:
        issued = await issue_partner_token(
            session,
            partner_name="acme-partner",
            scopes=scopes,
            customer_ids=customer_ids,
            expires_in_days=1,
            issued_by="security-tests",
        )
        await session.commit()
    return issued.token


async def post_as_token(
    client: GraphQLClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_clean(response: httpx.Response) -> None:
    """No 5xx, no masked INTERNAL error, nothing of the server's insides in the body."""
    assert response.status_code < 500, response.text
    assert not LEAKS.search(response.text), response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        assert "INTERNAL" not in codes, response.text


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    """The single QUERY_TOO_COMPLEX error's extensions (asserting data is null)."""
    assert body.get("data") is None, body  # no `data`: nothing ran
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    extensions: dict[str, Any] = error["extensions"]
    return extensions


def complexity_codes(body: dict[str, Any]) -> list[str]:
    return [
        e["extensions"].get("limit")
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") == "QUERY_TOO_COMPLEX"
    ]
