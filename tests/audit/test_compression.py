"""Migration 0008: the event arrays are lz4-compressed in every partition, present and future."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.partitions import ensure_partitions
from audit.verify import verify_chain
from db.migrate import alembic_config

METHODS = text(
    "SELECT DISTINCT a.attcompression::text FROM pg_partition_tree('audit_events') t "
    "JOIN pg_attribute a ON a.attrelid = t.relid "
    "WHERE a.attname IN ('resource_ids', 'fields')"
)


def big_read(actor: str) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type="customer",
        resource_ids=[str(n) for n in range(1_000_000, 1_000_600)],
        fields=["name"],
    )


async def compressions(session: AsyncSession) -> list[str | None]:
    result = await session.execute(
        text("SELECT pg_column_compression(resource_ids) FROM audit_events ORDER BY seq")
    )
    return list(result.scalars())


async def lz4_available(session: AsyncSession) -> bool:
    return bool(
        await session.scalar(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
    )


async def test_every_partition_compresses_the_arrays_with_lz4(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        if not await lz4_available(session):
            return  # the migration leaves pglz on a server without lz4
        await ensure_partitions(session, dt.datetime(2031, 5, 1, tzinfo=dt.UTC))  # to come
        assert list((await session.execute(METHODS)).scalars()) == ["l"]
        await append_events(session, [big_read("alice")])
    async with sessions() as session:
        assert await compressions(session) == ["lz4"]
        assert (await verify_chain(session)).ok


async def test_the_downgrade_gives_the_arrays_back_to_the_default_method(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine, fresh_url: str
) -> None:
    async with sessions() as session, session.begin():
        await append_events(session, [big_read("alice")])
    config = alembic_config(fresh_url)

    def migrate(target: str, down: bool) -> object:
        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, target)

        return run

    async with fresh_engine.begin() as connection:
        await connection.run_sync(migrate("0007", down=True))  # type: ignore[arg-type]
    async with sessions() as session, session.begin():
        assert list((await session.execute(METHODS)).scalars()) == [""]
        await append_events(session, [big_read("bob")])
    async with fresh_engine.begin() as connection:
        await connection.run_sync(migrate("head", down=False))  # type: ignore[arg-type]
    async with sessions() as session, session.begin():
        await append_events(session, [big_read("carol")])
    async with sessions() as session:
        lz4 = await lz4_available(session)
        # what was stored keeps its method and reads as before
        assert await compressions(session) == (
            ["lz4", "pglz", "lz4"] if lz4 else ["pglz", "pglz", "pglz"]
        )
        assert (await verify_chain(session)).ok
