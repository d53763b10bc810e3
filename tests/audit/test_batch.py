"""Group commit of read events: many requests, one append each batch, nobody released early."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from audit.batch import ReadAuditBatcher
from audit.chain import Guard, append_events
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


# claims travel as jsonb; this one holds when its "ok" says so
_OK_CLAIMS = "SELECT (c->>'n')::bigint FROM jsonb_array_elements({claims}) c WHERE (c->>'ok')::bool"


async def test_a_guarded_append_writes_only_the_events_whose_claim_holds_and_leaves_no_gap(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    records = [read_event(actor, "1") for actor in ("a1", "a2", "b1", "free", "c1")]
    claims = [{"n": 1, "ok": True}, {"n": 2, "ok": False}, {"n": 3, "ok": True}]
    guard = Guard(_OK_CLAIMS, claims, owners=[1, 1, 2, None, 3])
    async with fresh_engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        held = await append_events(autocommit, records, guard=guard)
        assert held == {1, 3}
        refused = await append_events(
            autocommit,
            [read_event("d1", "2")],
            guard=Guard(_OK_CLAIMS, [{"n": 1, "ok": False}], owners=[1]),
        )
        assert refused == frozenset()
    async with sessions() as session:
        rows = await session.execute(select(AuditEvent.seq, AuditEvent.actor).order_by("seq"))
        stored = [tuple(row) for row in rows]
        report = await verify_chain(session)
    assert [actor for _, actor in stored] == ["a1", "a2", "free", "c1"]
    assert [seq for seq, _ in stored] == list(range(stored[0][0], stored[0][0] + 4))
    assert report.ok and report.checked == 4


class _Confirmation:
    """Claims are actor names; those in `refused` fail, explained as PermissionError."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.explained: list[Any] = []

    async def append_confirmed(
        self, connection: AsyncConnection, records: Any, owners: Any, preconditions: Any
    ) -> tuple[int, frozenset[int]]:
        claims = [
            {"n": number, "ok": claim not in self.refused}
            for number, claim in enumerate(preconditions, start=1)
        ]
        held = await append_events(connection, records, guard=Guard(_OK_CLAIMS, claims, owners))
        return 2, held

    async def explain(
        self, connection: AsyncConnection, preconditions: Any
    ) -> tuple[int, list[Exception | None]]:
        self.explained.extend(preconditions)
        return 1, [PermissionError(claim) for claim in preconditions]


async def test_in_one_batch_a_failed_precondition_fails_its_own_request_and_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], fresh_engine: AsyncEngine
) -> None:
    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
        await append_events(connection, records)

    confirmation = _Confirmation(refused={"revoked"})
    batcher = ReadAuditBatcher(fresh_engine, append, confirmation)
    actors = ["ok-1", "revoked", "ok-2", "unchecked"]
    outcomes: list[Any] = await asyncio.gather(
        *(batcher.append([read_event(a, "1")], None if a == "unchecked" else a) for a in actors),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == ["int", "PermissionError", "int", "int"]
    assert confirmation.explained == ["revoked"]  # asked only about the one that failed
    assert sorted(await _stored(sessions)) == ["ok-1", "ok-2", "unchecked"]
    async with sessions() as session:
        assert (await verify_chain(session)).ok
