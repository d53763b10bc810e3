"""Read replicas: a fresh replica serves reads, read-only; a writer reads its writes from the
primary; a lagging or unreachable replica is skipped for the primary."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.hardening.shared_limits import SharedStore, SharedWriteLog
from db.engine import PoolOptions, create_engine, create_sessionmaker
from db.replicas import InProcessWriteLog, ReplicaRouter, ReplicaSettings, WriteLog
from resolvers.context import RequestDatabase
from tests.ops.conftest import free_port

BACKEND = text(
    "SELECT current_setting('transaction_read_only'), current_setting('application_name')"
)
ON_REPLICA = ("on", "dossier-replica")
ON_PRIMARY = ("off", "dossier")


def second_url(database_url: str) -> str:
    """The same database under another address: a "replica" whose data always matches."""
    return database_url.replace("127.0.0.1", "localhost")


@pytest.fixture
async def primary(fault_env: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fault_env["DATABASE_URL"])
    yield engine
    await engine.dispose()


def router(
    urls: list[str], writes: WriteLog | None = None, *, lag_sql: str | None = None
) -> ReplicaRouter:
    settings = ReplicaSettings(
        urls=tuple(urls), max_lag_seconds=5, check_seconds=60, read_your_writes_seconds=30
    )
    made = ReplicaRouter(
        settings, PoolOptions(size=1, max_overflow=0), writes or InProcessWriteLog()
    )
    if lag_sql is not None:
        made.lag_sql = lag_sql
    return made


async def where_read(db: RequestDatabase) -> tuple[str, str]:
    read_only, application = (await db.execute(BACKEND)).one()
    return read_only, application


async def test_a_read_goes_to_a_fresh_replica_and_cannot_write(
    primary: AsyncEngine, fault_env: dict[str, str]
) -> None:
    replicas = router([second_url(fault_env["DATABASE_URL"])])
    try:
        db = RequestDatabase(create_sessionmaker(primary), replicas=replicas, writer="user:1")
        assert await db.use_replica()
        assert await where_read(db) == ON_REPLICA
        count = (await db.execute(text("SELECT count(*) FROM customers"))).scalar()
        assert count == 10  # the same data as the primary
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await db.execute(text("UPDATE customers SET name = name WHERE false"))
        await db.close()
    finally:
        await replicas.dispose()


async def test_after_a_write_the_writer_reads_from_the_primary_and_others_do_not(
    primary: AsyncEngine, fault_env: dict[str, str]
) -> None:
    replicas = router([second_url(fault_env["DATABASE_URL"])])
    sessions = create_sessionmaker(primary)
    try:
        write = RequestDatabase(sessions, replicas=replicas, writer="user:7")
        await write.execute(text("SELECT 1"))
        await write.commit()
        await write.close()
        again = RequestDatabase(sessions, replicas=replicas, writer="user:7")
        assert not await again.use_replica()
        assert await where_read(again) == ON_PRIMARY  # the primary
        await again.close()
        other = RequestDatabase(sessions, replicas=replicas, writer="user:8")
        assert await other.use_replica()
        await other.close()
    finally:
        await replicas.dispose()


async def test_a_lagging_replica_is_skipped_for_the_primary(
    primary: AsyncEngine, fault_env: dict[str, str]
) -> None:
    # a standby an hour behind, as the probe would measure it on one
    lagging = router([second_url(fault_env["DATABASE_URL"])], lag_sql="SELECT 3600.0::float8")
    try:
        db = RequestDatabase(create_sessionmaker(primary), replicas=lagging, writer="user:1")
        assert not await db.use_replica()
        assert await where_read(db) == ON_PRIMARY
        await db.close()
    finally:
        await lagging.dispose()


async def test_an_unreachable_replica_is_skipped_and_a_good_one_used(
    primary: AsyncEngine, fault_env: dict[str, str]
) -> None:
    broken = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    replicas = router([broken, second_url(fault_env["DATABASE_URL"])])
    try:
        for _ in range(3):  # round robin never lands on the broken one
            db = RequestDatabase(create_sessionmaker(primary), replicas=replicas, writer="u")
            assert await db.use_replica()
            assert await where_read(db) == ON_REPLICA
            await db.close()
        only_broken = router([broken])
        db = RequestDatabase(create_sessionmaker(primary), replicas=only_broken, writer="u")
        assert not await db.use_replica()
        assert await where_read(db) == ON_PRIMARY
        await db.close()
        await only_broken.dispose()
    finally:
        await replicas.dispose()


async def test_read_your_writes_holds_across_hosts_through_redis(fault_env: dict[str, str]) -> None:
    prefix = f"dossier-test-{uuid.uuid4().hex}"
    url = second_url(fault_env["DATABASE_URL"])
    stores = [SharedStore("redis://127.0.0.1:6379/0", prefix=prefix) for _ in range(2)]
    host_a, host_b = (router([url], SharedWriteLog(store)) for store in stores)
    try:
        assert await host_b.sessions_for("user:9") is not None
        await host_a.note_write("user:9")
        assert await host_b.sessions_for("user:9") is None  # host b keeps it on the primary
        assert await host_b.sessions_for("user:10") is not None
    finally:
        await host_a.dispose()
        await host_b.dispose()
        for store in stores:
            store.close()
