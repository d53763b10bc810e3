"""A database of its own, seeded once per run with enough customers to need extra staff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed import DemoSummary, seed_demo
from api.settings import Settings
from tests.conftest import fresh_database, migrated_engine, settings_for

SEEDED_CUSTOMERS = 4_100  # two blocks and a bit; 2 generated sales reps
NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="package")
def seed_database_url() -> Iterator[str]:
    with fresh_database("dossier_seed") as url:
        yield url


@pytest.fixture(scope="package")
def seed_settings(seed_database_url: str, data_dir: Path) -> Settings:
    return settings_for(seed_database_url, data_dir / "seed")


@pytest.fixture(scope="package")
async def seed_engine(seed_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(seed_settings) as engine:
        yield engine


@pytest.fixture(scope="package")
async def seeded(seed_engine: AsyncEngine, seed_settings: Settings) -> DemoSummary:
    return await seed_demo(
        seed_engine, seed_settings.field_cipher, customers=SEEDED_CUSTOMERS, seed=7, now=NOW
    )


@pytest.fixture
async def db(seeded: DemoSummary, seed_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to the seeded database, for reading what was stored."""
    url = (seed_settings.database_url or "").replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()
