"""A demo database of its own: custom fields defined here must not reach other test folders'
answers (`me.permissions`, FORBIDDEN lists), so this folder seeds and serves a separate one,
for the package only (its app's background work stops before the next folder's tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import DemoSummary, seed_demo
from api.settings import Settings
from tests.conftest import fresh_database, migrated_engine, settings_for
from tests.graphql.conftest import GraphQLClient

CUSTOMERS = 40


@pytest.fixture(scope="package")
def cf_database_url() -> Iterator[str]:
    with fresh_database("dossier_cf") as url:
        yield url


@pytest.fixture(scope="package")
def cf_settings(cf_database_url: str, data_dir: Path) -> Settings:
    return settings_for(cf_database_url, data_dir / "customfields")


@pytest.fixture(scope="package")
async def cf_engine(cf_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(cf_settings) as engine:
        yield engine


@pytest.fixture(scope="package")
async def cf_demo(cf_engine: AsyncEngine, cf_settings: Settings) -> DemoSummary:
    return await seed_demo(cf_engine, cf_settings.field_cipher, customers=CUSTOMERS)


@pytest.fixture(scope="package")
async def cf_app(cf_settings: Settings, cf_demo: DemoSummary) -> AsyncIterator[Starlette]:
    application = create_app(cf_settings)
    async with application.router.lifespan_context(application):
        yield application


_TOKENS: dict[str, str] = {}


@pytest.fixture
async def cf(cf_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=cf_app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)
