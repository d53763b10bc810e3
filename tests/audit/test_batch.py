"""Group commit of read events: many requests, one append each batch, nobody released early."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from audit.batch import ReadAuditBatcher
from audit.chain import append_events
from audit.events import AuditRecord
from audit.verify import verify_chain
from db.models.audit import AuditEvent
from tests.audit.test_chain import read_event


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(select(AuditEvent.actor).order_by(AuditEvent.seq))
        return list(rows.scalars())


async def test_concurrent_reads_share_transactions_and_the_chain_verifies(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    batches: list[int] = []

    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> int:
        batches.append(len(records))
        await append_events(connection, records)
        return len(batches)

    batcher = ReadAuditBatcher(fresh_engine, append)
    actors = [f"reader-{i}" for i in range(40)]
    results = await asyncio.gather(*(batcher.append([read_event(a, "1", "2")]) for a in actors))

    assert sum(batches) == len(actors)
    assert len(batches) < len(actors)  # the requests that queued meanwhile went together
    assert all(isinstance(r, int) for r in results)
    assert sorted(await _stored(sessions)) == sorted(actors)
    async with sessions() as session:
        report = await verify_chain(session)
    assert report.ok and report.checked == len(actors)


async def test_a_waiter_is_released_only_after_its_events_are_committed(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
        await append_events(connection, records)

    batcher = ReadAuditBatcher(fresh_engine, append)
    for actor in ("first", "second"):
        await batcher.append([read_event(actor, "7")])
        # a fresh session sees it: the commit happened before the waiter was released
        assert actor in await _stored(sessions)


async def test_a_record_that_cannot_be_written_fails_its_own_request_only(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
        if any(r.actor == "poison" for r in records):
            raise RuntimeError("cannot encode")
        await append_events(connection, records)

    batcher = ReadAuditBatcher(fresh_engine, append)
    actors = ["a", "b", "poison", "c", "d"]
    outcomes: list[Any] = await asyncio.gather(
        *(batcher.append([read_event(a, "1")]) for a in actors), return_exceptions=True
    )
    failed = [a for a, o in zip(actors, outcomes, strict=True) if isinstance(o, Exception)]
    assert failed == ["poison"]
    assert sorted(await _stored(sessions)) == ["a", "b", "c", "d"]


async def test_when_the_store_is_down_every_waiter_fails(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
        raise RuntimeError("audit storage unavailable")

    batcher = ReadAuditBatcher(fresh_engine, append)
    outcomes = await asyncio.gather(
        *(batcher.append([read_event(f"r{i}", "1")]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(AuditEvent))).scalar() == 0
