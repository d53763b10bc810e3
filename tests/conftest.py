"""Shared fixtures: a fresh PostgreSQL database per test run, migrated, with the demo data.

Each run creates its own database on the server named by DOSSIER_TEST_ADMIN_URL (default: the
machine's PostgreSQL on 127.0.0.1:5432), so parallel runs and leftovers cannot interfere. Without
a reachable server the run starts one through pgserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from db.crypto import new_key
from db.embedded import start_embedded
from db.engine import create_engine
from db.migrate import upgrade_to_head

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@functools.cache
def _admin_url() -> str:
    """The server every database of this run is created on, decided once per process.

    Only a server that cannot be reached (refused, timed out) sends the run to pgserver. A
    server that answers with an error, "too many clients" above all, is reported as it is:
    switching servers halfway through a run would hide the leak that filled it.
    """
    url = os.environ.get("DOSSIER_TEST_ADMIN_URL", DEFAULT_ADMIN_URL)

    async def reachable() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=3)
        except (OSError, TimeoutError):
            return False
        await connection.close()
        return True

    if asyncio.run(reachable()):
        return url
    return start_embedded(Path(tempfile.gettempdir()) / "dossier-test-pg", database="postgres")


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + database
    return f"{base}?{query}" if query else base


@contextlib.contextmanager
def fresh_database(prefix: str = "dossier_test") -> Iterator[str]:
    """Create an empty database for this run, yield its URL, drop it afterwards."""
    admin = _admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(admin, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def settings_for(database_url: str, data_dir: Path) -> Settings:
    return Settings.from_env(
        {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": database_url,
            "DOSSIER_DATA_DIR": str(data_dir),
            "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
            "DOSSIER_BLIND_INDEX_KEY": new_key(),
            "DOSSIER_JWT_SECRET": new_key(),
            # snapshots refresh when a test says so, not in the background
            "DOSSIER_INSIGHT_REFRESH_SECONDS": "0",
            # no webhook delivery worker in the background: tests/events runs its own
            "DOSSIER_WEBHOOK_DELIVER": "0",
            "DOSSIER_REMINDER_SECONDS": "0",  # reminders run when a test says so
            # imports are jobs: every app runs a worker, as `dossier serve` does; no periodic
            # digests, which the audit tests count
            "DOSSIER_INPROCESS_WORKER": "1",
            "DOSSIER_DIGEST_CRON": "",
        }
    )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dossier-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return settings_for(database_url, data_dir)


@contextlib.asynccontextmanager
async def migrated_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the settings' database, migrated to head; disposed afterwards."""
    engine = create_engine(settings.database_url or "")
    await upgrade_to_head(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(settings) as migrated:
        yield migrated


@pytest.fixture(scope="session")
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
