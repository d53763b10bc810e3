"""A demo-seeded database and server for GraphQL tests, and a small client for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import DemoSummary, seed_demo
from api.settings import Settings
from sqljson import NotCompilableError
from tests.conftest import fresh_database, migrated_engine, settings_for

DEMO_CUSTOMERS = 60
PASSWORD = "dossier-demo"


@pytest.fixture(scope="package")
def demo_database_url() -> Iterator[str]:
    with fresh_database("dossier_demo") as url:
        yield url


@pytest.fixture(scope="package")
def demo_settings(demo_database_url: str, data_dir: Path) -> Settings:
    return settings_for(demo_database_url, data_dir / "demo")


@pytest.fixture(scope="package")
async def demo_engine(demo_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(demo_settings) as engine:
        yield engine


@pytest.fixture(scope="package")
async def demo(demo_engine: AsyncEngine, demo_settings: Settings) -> DemoSummary:
    return await seed_demo(demo_engine, demo_settings.field_cipher, customers=DEMO_CUSTOMERS)


@pytest.fixture(scope="package")
async def demo_app(demo_settings: Settings, demo: DemoSummary) -> AsyncIterator[Starlette]:
    application = create_app(demo_settings)
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class GraphQLClient:
    """Logs in as demo users over HTTP and posts queries as them."""

    http: httpx.AsyncClient
    tokens: dict[str, str]

    async def token(self, username: str) -> str:
        # a token is only good for the app (and signing key) that issued it, and several test
        # folders build their own apps: cache per app
        app = getattr(self.http, "_transport", None)
        key = f"{id(getattr(app, 'app', app))}:{username}"
        if key not in self.tokens:
            response = await self.http.post(
                "/auth/token", data={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[key] = response.json()["access_token"]
        return self.tokens[key]

    async def post(
        self, username: str, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        token = await self.token(username)
        return await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def query(
        self, username: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.post(username, query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


_TOKENS: dict[str, str] = {}


@pytest.fixture
async def gql(demo_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=demo_app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)


def forbidden_fields(body: dict[str, Any]) -> set[str]:
    return {
        e["extensions"]["field"]
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") == "FORBIDDEN"
    }


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def switch_off_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every SQL compilation decline, and forget the compiled ones, so the direct executor
    answers."""

    async def not_compiled(*_: Any) -> Any:
        raise NotCompilableError("switched off")

    async def not_compiled_before(*_: Any) -> None:
        return None

    monkeypatch.setattr("sqljson.answer", not_compiled)
    monkeypatch.setattr("api.hardening.cost_budget.answer_again", not_compiled_before)
