"""The head released early: only for autocommit appends, flushed before returning, never leaking.

`audit.chain` commits an autocommit append with `synchronous_commit` off for that statement's
own transaction and then waits for a synchronous flush; an append inside the caller's
transaction (a write's) keeps its synchronous commit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from audit.chain import _FLUSH, append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import verify_chain
from db.statements import statement_counter


def _read(number: int) -> AuditRecord:
    return AuditRecord(
        actor="early",
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type="customer",
        resource_ids=[str(number)],
    )


async def test_an_autocommit_append_flushes_and_leaves_synchronous_commit_on(
    fresh_engine: AsyncEngine,
) -> None:
    counter = [0]
    token = statement_counter.set(counter)
    try:
        async with fresh_engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await append_events(connection, [_read(1), _read(2)])
            assert counter[0] == 2  # the append, then the flush outside the head
            setting = await connection.scalar(text("SHOW synchronous_commit"))
            assert setting == "on"  # the statement's own transaction only
            head = await connection.scalar(text("SELECT seq FROM audit_chain_head"))
            assert head == 2
    finally:
        statement_counter.reset(token)


async def test_an_append_in_a_transaction_keeps_its_synchronous_commit(
    fresh_engine: AsyncEngine,
) -> None:
    counter = [0]
    token = statement_counter.set(counter)
    sessions = async_sessionmaker(fresh_engine, expire_on_commit=False)
    try:
        async with sessions() as session, session.begin():
            await append_events(session, [_read(3)])
            assert counter[0] == 1  # no flush of its own: the caller's commit is synchronous
            assert await session.scalar(text("SHOW synchronous_commit")) == "on"
    finally:
        statement_counter.reset(token)
    async with fresh_engine.connect() as connection:
        assert (await verify_chain(connection)).ok


async def test_the_flush_makes_what_committed_before_it_durable(fresh_engine: AsyncEngine) -> None:
    """The read is answered after the flush statement: when it returns, WAL must be on disk up
    to the early-released append. (A transaction that writes no WAL record of its own, such as
    one that only takes an xid, commits without flushing: this failed with it.)"""
    async with fresh_engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("CREATE TABLE flush_probe (n int)")
        for number in range(5):  # each time, not by the luck of the WAL writer's timing
            await raw.execute("SET synchronous_commit = off")
            await raw.execute("INSERT INTO flush_probe VALUES ($1)", number)
            await raw.execute("SET synchronous_commit = on")
            written = await raw.fetchval("SELECT pg_current_wal_insert_lsn()")
            await raw.execute(_FLUSH)
            flushed = await raw.fetchval("SELECT pg_current_wal_flush_lsn()")
            assert flushed >= written, (number, written, flushed)
