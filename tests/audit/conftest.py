"""Audit fixtures: tamper tests get a database of their own, cloned from a migrated template.

The session `engine` is shared with every other test of the run, so tests that break the chain
on purpose (or rely on its exact length) must not use it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_engine
from db.migrate import upgrade_to_head


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + database
    return f"{base}?{query}" if query else base


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="package")
async def audit_template(database_url: str) -> AsyncIterator[str]:
    """A migrated database used only as a CREATE DATABASE … TEMPLATE source."""
    name = f"dossier_audit_tpl_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain(_with_database(database_url, "postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        engine = create_engine(_with_database(database_url, name))
        await upgrade_to_head(engine)
        await engine.dispose()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def fresh_url(database_url: str, audit_template: str) -> AsyncIterator[str]:
    name = f"dossier_audit_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain(_with_database(database_url, "postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{audit_template}"')
        yield _with_database(database_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def fresh_engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(fresh_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(fresh_engine, expire_on_commit=False)
