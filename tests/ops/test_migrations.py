"""Upgrades: a database made by the first migration reaches head with every row intact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed.demo import seed_demo
from api.settings import Settings
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.engine import create_engine, create_sessionmaker
from db.migrate import DatabaseAheadError, alembic_config, upgrade_to_head
from tests.conftest import fresh_database
from tests.ops.conftest import server_env

FIRST_REVISION = "0001"

Fingerprint = dict[str, tuple[int, str]]


@pytest.fixture
def upgrade_database_url() -> Iterator[str]:
    with fresh_database("dossier_upgrade") as url:
        yield url


@pytest.fixture
async def first_revision_engine(upgrade_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database migrated to the first revision only, as an early install left it."""
    engine = create_engine(upgrade_database_url)
    config = alembic_config(upgrade_database_url)

    def upgrade_to_first(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, FIRST_REVISION)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to_first)
    try:
        yield engine
    finally:
        await engine.dispose()


async def revision_of(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text("SELECT version_num FROM alembic_version")))


async def columns_by_table(engine: AsyncEngine) -> dict[str, list[str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
                "ORDER BY table_name, ordinal_position"
            )
        )
        found: dict[str, list[str]] = {}
        for table, column in rows:
            found.setdefault(table, []).append(column)
        return found


async def fingerprint(engine: AsyncEngine, tables: dict[str, list[str]]) -> Fingerprint:
    """Row count and a digest of every row, over the columns each table had at the start."""
    prints: Fingerprint = {}
    async with engine.connect() as connection:
        for table, columns in tables.items():
            listed = ", ".join(f'"{c}"' for c in columns)
            row = (
                await connection.execute(
                    text(
                        f"SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' "  # noqa: S608  # names from the catalogue
                        f"ORDER BY r::text), '')) FROM (SELECT {listed} FROM \"{table}\") r"
                    )
                )
            ).one()
            prints[table] = (int(row[0]), str(row[1]))
    return prints


async def test_database_from_the_first_migration_upgrades_to_head_without_losing_rows(
    first_revision_engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = first_revision_engine
    assert await revision_of(engine) == FIRST_REVISION
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings.from_env(server_env(url, tmp_path_factory.mktemp("upgrade")))
    await seed_demo(engine, settings.field_cipher, customers=25)
    async with create_sessionmaker(engine)() as session, session.begin():
        await append_events(
            session,
            [
                AuditRecord(
                    actor="ops-test",
                    actor_kind=ActorKind.SYSTEM,
                    action=AuditAction.UPDATE,
                    resource_type="customer",
                    resource_ids=[str(n)],
                    changes={"level": ["B", "A"]},
                )
                for n in range(1, 6)
            ],  # fmt: skip
        )
    tables = await columns_by_table(engine)
    before = await fingerprint(engine, tables)
    assert before["customers"][0] == 25 and before["audit_events"][0] >= 5

    await upgrade_to_head(engine)

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert await revision_of(engine) == head
    assert await fingerprint(engine, tables) == before
    assert set(tables) <= set(await columns_by_table(engine))  # no table dropped


async def test_upgrading_twice_changes_nothing(first_revision_engine: AsyncEngine) -> None:
    engine = first_revision_engine
    await upgrade_to_head(engine)
    tables = await columns_by_table(engine)
    revision, rows = await revision_of(engine), await fingerprint(engine, tables)
    await upgrade_to_head(engine)
    assert await revision_of(engine) == revision
    assert await columns_by_table(engine) == tables
    assert await fingerprint(engine, tables) == rows


async def test_database_ahead_of_the_code_is_refused_and_left_alone(
    first_revision_engine: AsyncEngine,
) -> None:
    engine = first_revision_engine
    await upgrade_to_head(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    tables = await columns_by_table(engine)
    with pytest.raises(DatabaseAheadError, match="9999_future"):
        await upgrade_to_head(engine)
    assert await revision_of(engine) == "9999_future"
    assert await columns_by_table(engine) == tables
