"""The resource-id index: queries by id are exact whatever the indexer has reached, the indexer
is idempotent, resumes after a crash, never indexes twice, and archiving keeps it consistent.

Ground truth is computed in Python from the records appended, never from the SQL under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from audit.archive import archive_before
from audit.chain import append_events, append_events_at
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.indexer import (
    INDEX_LOCK_KEY,
    ResourceIndexer,
    index_batch,
    index_once,
    index_watermark,
)
from audit.queries import AuditFilter, count_events, list_events, stream_events
from audit.verify import verify_chain
from db.engine import create_engine
from db.migrate import alembic_config

# awkward ids on purpose: array syntax, quoting, the NULL keyword, non-ASCII, empty
ODD_IDS = ["{a,b}", 'say "hi"', "back\\slash", "NULL", "北京", "", " spaced "]


class Trail:
    """Appends events and remembers, per (id, type), which seqs name it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.by_id: dict[str, set[tuple[int, str | None]]] = defaultdict(set)
        self.seq = 0
        self.removed: set[int] = set()

    async def add(self, batches: Iterable[list[AuditRecord]], at: dt.datetime | None = None):
        for records in batches:
            async with self.sessions() as session, session.begin():
                if at is None:
                    await append_events(session, records)
                else:
                    await append_events_at(session, records, at)
            for record in records:
                self.seq += 1
                for resource_id in record.resource_ids:
                    self.by_id[resource_id].add((self.seq, record.resource_type))

    def expected(self, resource_id: str, resource_type: str | None = None) -> list[int]:
        return sorted(
            (
                seq
                for seq, kind in self.by_id.get(resource_id, ())
                if (resource_type is None or kind == resource_type) and seq not in self.removed
            ),
            reverse=True,
        )

    def index_rows(self) -> int:
        return sum(1 for hits in self.by_id.values() for seq, _ in hits if seq not in self.removed)


def event(number: int, *ids: str, resource_type: str | None = "customer") -> AuditRecord:
    return AuditRecord(
        actor=f"user{number % 3}",
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type=resource_type,
        resource_ids=ids,
        fields=["name"],
    )


def batches(start: int, count: int) -> list[list[AuditRecord]]:
    """Requests of one to three events: shared ids, repeated ids, typeless events, odd ids."""
    out = []
    for number in range(start, start + count):
        records = [event(number, str(number), "shared", str(number % 7), str(number % 7))]
        if number % 2:
            records.append(event(number, "shared", str(number), resource_type="contact"))
        if number % 5 == 0:
            records.append(event(number, ODD_IDS[number % len(ODD_IDS)], resource_type=None))
        out.append(records)
    return out


PROBES = [
    *[("shared", None), ("shared", "contact"), ("3", None), ("3", "customer"), ("3", "contact")],
    *[("11", None), ("nobody", None), *((odd, None) for odd in ODD_IDS)],
]


async def check_queries(trail: Trail) -> None:
    """list (paged), count and export agree with the ground truth for every probe."""
    async with trail.sessions() as session:
        for resource_id, resource_type in PROBES:
            want = trail.expected(resource_id, resource_type)
            criteria = AuditFilter(resource_id=resource_id, resource_type=resource_type)
            got: list[int] = []
            after = None
            while True:
                page, more = await list_events(session, criteria, first=4, after_seq=after)
                got += [e.seq for e in page]
                if not more:
                    break
                after = page[-1].seq
            assert got == want, (resource_id, resource_type)
            assert await count_events(session, criteria) == len(want), resource_id
            lines = b"".join([c async for c in stream_events(session, criteria, "jsonl")])
            streamed = [json.loads(line)["seq"] for line in lines.splitlines()]
            assert streamed == sorted(want), resource_id


async def index_rows(session: AsyncSession) -> tuple[int, int]:
    """(pairs, distinct (id, type, seq)) over the rows' seqs: equal when nothing was indexed
    twice."""
    row = (
        await session.execute(
            text(
                "SELECT count(*), count(DISTINCT (resource_id, resource_type, seq)) "
                "FROM audit_resource_index, unnest(seqs) AS seq"
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def head_seq(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT seq FROM audit_chain_head")) or 0)


@pytest.fixture
def trail(sessions: async_sessionmaker[AsyncSession]) -> Trail:
    return Trail(sessions)


async def test_lookups_are_exact_before_during_and_after_indexing(
    trail: Trail, fresh_engine: AsyncEngine
) -> None:
    await trail.add(batches(0, 25))
    await check_queries(trail)  # nothing indexed: all from the tail
    async with trail.sessions() as session, session.begin():
        events, watermark = await index_batch(session, limit=9)
    assert (events, watermark) == (9, 9)
    await check_queries(trail)  # half indexed, half tail
    done = await index_once(fresh_engine, limit=7)
    async with trail.sessions() as session:
        assert done.locked and done.watermark == await head_seq(session)
        assert await index_watermark(session) == done.watermark
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
    await check_queries(trail)  # all indexed
    await trail.add(batches(25, 6))
    await check_queries(trail)  # indexed, and a tail written after


async def test_indexing_is_idempotent_and_resumes_after_a_crash(
    trail: Trail, fresh_engine: AsyncEngine, fresh_url: str
) -> None:
    await trail.add(batches(0, 20))
    # a crash after the insert but before the commit: nothing of the batch survives
    async with trail.sessions() as session:
        await session.begin()
        await index_batch(session, limit=10)
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with fresh_engine.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError):
            await session.commit()
    async with trail.sessions() as session:
        assert await index_watermark(session) == 0
        assert await index_rows(session) == (0, 0)
    # and a rolled-back batch neither
    async with trail.sessions() as session, session.begin():
        await index_batch(session, limit=10)
        await session.rollback()
    first = await index_once(fresh_engine, limit=6)
    again = await index_once(fresh_engine, limit=6)
    assert first.events == trail.seq and again.events == 0
    assert again.watermark == first.watermark == trail.seq
    async with trail.sessions() as session:
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
    await check_queries(trail)


async def test_two_indexers_never_index_a_batch_twice(
    trail: Trail, fresh_engine: AsyncEngine, fresh_url: str
) -> None:
    await trail.add(batches(0, 30))
    # a round holding the advisory lock makes another process skip its round
    async with fresh_engine.begin() as holder:
        locked = await holder.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": INDEX_LOCK_KEY}
        )
        assert locked
        await index_batch(holder, limit=5)
        skipped = await index_once(fresh_engine)
        assert not skipped.locked and skipped.events == 0
    # without the advisory lock (a CLI run during a server's round), the watermark row
    # serialises them: the second waits and continues where the first stopped
    first = await fresh_engine.connect()
    await first.begin()
    await index_batch(first, limit=8)
    second_engine = create_engine(fresh_url)
    try:

        async def second() -> tuple[int, int]:
            async with second_engine.begin() as connection:
                return await index_batch(connection, limit=8)

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the watermark row
        await first.commit()
        await first.close()
        assert await waiting == (8, 21)
        # and many rounds at once from two engines: exactly everything, once
        rounds = [index_once(engine, limit=3) for engine in (fresh_engine, second_engine) * 4]
        await asyncio.gather(*rounds)
    finally:
        await second_engine.dispose()
    async with trail.sessions() as session:
        assert await index_watermark(session) == trail.seq
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
    await check_queries(trail)


async def test_archiving_drops_the_index_rows_of_archived_months(
    trail: Trail, fresh_engine: AsyncEngine, tmp_path: Path
) -> None:
    october, november = (dt.datetime(2024, m, 10, tzinfo=dt.UTC) for m in (10, 11))
    await trail.add(batches(0, 6), at=october)
    await index_once(fresh_engine)  # October indexed
    await trail.add(batches(6, 6), at=november)  # November not yet
    await trail.add(batches(12, 6))  # this month
    await check_queries(trail)
    async with trail.sessions() as session, session.begin():
        result = await archive_before(session, dt.date(2024, 12, 1), tmp_path)
    assert result.last_seq is not None
    trail.removed = set(range(1, result.last_seq + 1))
    trail.seq += 1  # the archive's own event (no resource ids)
    async with trail.sessions() as session:
        gone = await session.scalar(
            text("SELECT count(*) FROM audit_resource_index WHERE first_seq <= :s"),
            {"s": result.last_seq},
        )
        assert gone == 0
        names = set(
            await session.scalars(
                text("SELECT relname FROM pg_class WHERE relname LIKE 'audit_resource_index_y%'")
            )
        )
        assert not {"audit_resource_index_y2024m10", "audit_resource_index_y2024m11"} & names
    await check_queries(trail)  # the watermark sits inside the archived months: still exact
    await index_once(fresh_engine)
    async with trail.sessions() as session:
        assert await index_watermark(session) == trail.seq
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
        assert (await verify_chain(session)).ok
    await check_queries(trail)


async def test_the_server_task_indexes_in_the_background(
    trail: Trail, fresh_engine: AsyncEngine
) -> None:
    indexer = ResourceIndexer(fresh_engine, 0.05)
    await indexer.start()
    try:
        await trail.add(batches(0, 8))
        for _ in range(100):
            async with trail.sessions() as session:
                if await index_watermark(session) == trail.seq:
                    break
            await asyncio.sleep(0.05)
    finally:
        await indexer.stop()
    async with trail.sessions() as session:
        assert await index_watermark(session) == trail.seq
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())


async def test_the_migration_backfills_the_index_and_downgrades(
    trail: Trail, fresh_engine: AsyncEngine, fresh_url: str
) -> None:
    config = alembic_config(fresh_url)

    def migrate(target: str, down: bool) -> None:
        def run(connection: Connection) -> None:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, target)

        return run  # type: ignore[return-value]

    async with fresh_engine.begin() as connection:
        await connection.run_sync(migrate("0006", down=True))
    async with fresh_engine.connect() as connection:
        assert await connection.scalar(text("SELECT to_regclass('audit_resource_index')")) is None
        assert await connection.scalar(text("SELECT to_regclass('ix_audit_events_resource_ids')"))
    await trail.add(batches(0, 12))  # appends work on the old schema
    async with fresh_engine.begin() as connection:
        await connection.run_sync(migrate("head", down=False))
    async with trail.sessions() as session:
        assert await index_watermark(session) == trail.seq
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
        assert not await session.scalar(text("SELECT to_regclass('ix_audit_events_resource_ids')"))
        month = dt.datetime.now(dt.UTC).strftime("y%Ym%m")
        assert await session.scalar(text(f"SELECT to_regclass('audit_resource_index_{month}')"))
    await check_queries(trail)


async def rows_of(session: AsyncSession, resource_id: str) -> list[tuple[str, int, int, int]]:
    """(partition, first_seq, last_seq, number of seqs) of an id's index rows, oldest first."""
    result = await session.execute(
        text(
            "SELECT tableoid::regclass::text, first_seq, last_seq, cardinality(seqs) "
            "FROM audit_resource_index WHERE resource_id = :id ORDER BY first_seq"
        ),
        {"id": resource_id},
    )
    return [tuple(row) for row in result]  # type: ignore[misc]


def hot_batches(start: int, count: int) -> list[list[AuditRecord]]:
    """Every event names the same view ("hot", "warm" twice over) and one id of its own."""
    return [
        [event(number, "hot", "warm", "warm", f"own{number}")]
        + ([event(number, "hot", resource_type="contact")] if number % 4 == 0 else [])
        for number in range(start, start + count)
    ]


HOT_PROBES = [("hot", None), ("hot", "customer"), ("hot", "contact"), ("warm", None)]
HOT_KINDS = ("customer", "contact")


async def all_pages(
    session: AsyncSession, criteria: AuditFilter, first: int
) -> tuple[list[int], int]:
    got: list[int] = []
    after, pages = None, 0
    while True:
        page, more = await list_events(session, criteria, first=first, after_seq=after)
        got, pages = got + [e.seq for e in page], pages + 1
        if not more:
            return got, pages
        after = page[-1].seq


async def test_ids_recurring_in_a_batch_make_one_row_holding_every_seq(
    trail: Trail, fresh_engine: AsyncEngine
) -> None:
    await trail.add(hot_batches(0, 40))
    done = await index_once(fresh_engine, limit=500)  # one batch
    assert done.events == trail.seq
    async with trail.sessions() as session:
        customer, contact = (sorted(trail.expected("hot", kind)) for kind in HOT_KINDS)
        assert {(first, last, n) for _, first, last, n in await rows_of(session, "hot")} == {
            (customer[0], customer[-1], 40),
            (contact[0], contact[-1], 10),  # the same batch, a type of its own
        }
        # "warm" is listed twice by each event: once in its row per event
        assert [n for *_, n in await rows_of(session, "warm")] == [40]
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
        for resource_id, resource_type in HOT_PROBES:
            want = trail.expected(resource_id, resource_type)
            criteria = AuditFilter(resource_id=resource_id, resource_type=resource_type)
            assert (await all_pages(session, criteria, 7))[0] == want
            assert await count_events(session, criteria) == len(want)
            # other criteria combine with the unnested seqs
            by_actor = AuditFilter(resource_id=resource_id, actor="user1")
            count = await count_events(session, by_actor)
            page, _ = await list_events(session, by_actor, first=500)
            assert count == len(page) > 0
            assert all(e.actor == "user1" and resource_id in e.resource_ids for e in page)
    await check_queries(trail)


async def test_paging_newest_first_through_many_batch_rows_and_the_tail(
    trail: Trail, fresh_engine: AsyncEngine
) -> None:
    await trail.add(hot_batches(0, 30))
    await index_once(fresh_engine, limit=8)  # rows of 8 events
    await trail.add(hot_batches(30, 6))  # and a tail above the watermark
    async with trail.sessions() as session:
        # several rows of several seqs each for one id: pages cut through rows and across them
        assert len([row for row in await rows_of(session, "hot") if row[3] >= 5]) >= 4
        for resource_id, resource_type in HOT_PROBES:
            want = trail.expected(resource_id, resource_type)
            criteria = AuditFilter(resource_id=resource_id, resource_type=resource_type)
            for first in (1, 3, 5, 50):
                got, pages = await all_pages(session, criteria, first)
                assert got == want, (resource_id, resource_type, first)
                assert pages == max(1, -(-len(want) // first))
            # a cursor in the middle of a row, and one in the tail
            for after in (want[len(want) // 2], want[1]):
                page, _ = await list_events(session, criteria, first=4, after_seq=after)
                assert [e.seq for e in page] == [s for s in want if s < after][:4]
            assert await count_events(session, criteria) == len(want)
            lines = b"".join([c async for c in stream_events(session, criteria, "csv")])
            assert len(lines.splitlines()) == len(want) + 1  # and the header
    await check_queries(trail)


async def test_a_batch_spanning_a_month_boundary_makes_a_row_per_month(
    trail: Trail, fresh_engine: AsyncEngine, tmp_path: Path
) -> None:
    october = dt.datetime(2024, 10, 31, 23, 59, tzinfo=dt.UTC)
    await trail.add(hot_batches(0, 5), at=october)
    october_last = trail.seq
    await trail.add(hot_batches(5, 4), at=october + dt.timedelta(minutes=2))  # November
    warm = sorted(trail.expected("warm"))
    in_october = [s for s in warm if s <= october_last]
    in_november = [s for s in warm if s > october_last]
    done = await index_once(fresh_engine, limit=500)
    assert done.events == trail.seq
    async with trail.sessions() as session:
        assert await rows_of(session, "warm") == [
            ("audit_resource_index_y2024m10", in_october[0], in_october[-1], 5),
            ("audit_resource_index_y2024m11", in_november[0], in_november[-1], 4),
        ]
        assert await index_rows(session) == (trail.index_rows(), trail.index_rows())
        for resource_id, resource_type in HOT_PROBES:
            want = trail.expected(resource_id, resource_type)
            criteria = AuditFilter(resource_id=resource_id, resource_type=resource_type)
            assert (await all_pages(session, criteria, 2))[0] == want
            assert await count_events(session, criteria) == len(want)
            # the month filters meet the rows' months
            november = AuditFilter(
                resource_id=resource_id,
                resource_type=resource_type,
                from_=dt.datetime(2024, 11, 1, tzinfo=dt.UTC),
            )
            assert await count_events(session, november) == len(
                [s for s in want if s > october_last]
            )
    await check_queries(trail)
    # archiving October drops October's row and keeps November's
    async with trail.sessions() as session, session.begin():
        result = await archive_before(session, dt.date(2024, 11, 1), tmp_path)
    assert result.last_seq == october_last
    trail.removed = set(range(1, october_last + 1))
    trail.seq += 1  # the archive's event
    async with trail.sessions() as session:
        assert [row[0] for row in await rows_of(session, "warm")] == [
            "audit_resource_index_y2024m11"
        ]
    await check_queries(trail)
    for resource_id, resource_type in HOT_PROBES:
        async with trail.sessions() as session:
            criteria = AuditFilter(resource_id=resource_id, resource_type=resource_type)
            want = trail.expected(resource_id, resource_type)
            assert (await all_pages(session, criteria, 3))[0] == want
            assert await count_events(session, criteria) == len(want)
