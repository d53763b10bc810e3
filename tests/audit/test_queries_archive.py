"""Reading the trail (filters, keyset pages, exports) and archiving old months across the cut."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.archive import ArchiveError, archive_before, verify_archive_file
from audit.canonical import GENESIS_HASH
from audit.chain import append_events, append_events_at
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.queries import AuditFilter, count_events, list_events, stream_events
from audit.verify import Problem, verify_chain


def record(actor: str, action: str, *ids: str) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        actor_kind=ActorKind.USER,
        action=action,
        resource_type="customer",
        resource_ids=ids,
        fields=["name"],
        operation="=HYPERLINK()",
    )


@pytest.fixture
async def trail(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        for number in range(30):
            actor = "alice" if number % 3 == 0 else "bob"
            action = AuditAction.UPDATE if number % 5 == 0 else AuditAction.READ
            await append_events(session, [record(actor, action, str(number), "shared")])


async def test_list_events_filters_newest_first_with_keyset_pages(
    trail: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice = AuditFilter(actor="alice")
    async with sessions() as session:
        page, more = await list_events(session, alice, first=4, after_seq=None)
        assert [event.seq for event in page] == [28, 25, 22, 19] and more
        page, more = await list_events(session, alice, first=4, after_seq=page[-1].seq)
        assert [event.seq for event in page] == [16, 13, 10, 7] and more
        page, more = await list_events(session, alice, first=4, after_seq=page[-1].seq)
        assert [event.seq for event in page] == [4, 1] and not more
        assert await count_events(session, alice) == 10
        by_id, _ = await list_events(session, AuditFilter(resource_id="12"), first=10)
        assert [event.seq for event in by_id] == [13]
        assert await count_events(session, AuditFilter(resource_id="shared")) == 30
        updates = AuditFilter(action=AuditAction.UPDATE, actor="bob")
        assert await count_events(session, updates) == 4
        future = AuditFilter(from_=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        assert await count_events(session, future) == 0


async def test_exports_stream_every_matching_event_as_csv_and_jsonl(
    trail: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        lines = b"".join(
            [chunk async for chunk in stream_events(session, AuditFilter(actor="bob"), "jsonl")]
        )
        table = b"".join([chunk async for chunk in stream_events(session, AuditFilter(), "csv")])
    documents = [json.loads(line) for line in lines.splitlines()]
    assert len(documents) == 20 and all(doc["actor"] == "bob" for doc in documents)
    assert documents[0]["seq"] < documents[-1]["seq"]
    rows = list(csv.DictReader(io.StringIO(table.decode())))
    assert len(rows) == 30 and rows[0]["seq"] == "1"
    assert rows[0]["operation"] == "'=HYPERLINK()"  # no formula reaches a spreadsheet
    assert json.loads(rows[0]["resource_ids"]) == ["0", "shared"]


async def test_archive_moves_old_months_out_and_the_chain_stays_verifiable(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    months = [dt.datetime(2024, month, 15, tzinfo=dt.UTC) for month in (10, 11, 12)]
    async with sessions() as session, session.begin():
        for at in months:
            await append_events_at(session, [record("alice", "READ", "1")] * 3, at)
        january = dt.datetime(2025, 1, 3, tzinfo=dt.UTC)
        await append_events_at(session, [record("alice", "READ", "2")], january)
        await append_events(session, [record("bob", "READ", "3")])

    async with sessions() as session, session.begin():
        result = await archive_before(session, dt.date(2024, 12, 1), tmp_path)
    assert result.event_count == 6 and (result.first_seq, result.last_seq) == (1, 6)
    assert set(result.dropped_partitions) == {"audit_events_y2024m10", "audit_events_y2024m11"}
    assert result.path is not None
    count, final_hash, last_seq = verify_archive_file(
        result.path, start_seq=0, start_hash=GENESIS_HASH
    )
    assert (count, final_hash, last_seq) == (6, result.final_hash, 6)

    async with sessions() as session:
        report = await verify_chain(session)
        remaining = await session.scalar(text("SELECT min(seq) FROM audit_events"))
    assert report.ok and report.anchor_seq == 6, report.describe()
    assert report.checked == 6  # 3 of December, January, today's, and the archive's own event
    assert remaining == 7

    # a second archive continues from the first anchor
    async with sessions() as session, session.begin():
        second = await archive_before(session, dt.date(2025, 1, 1), tmp_path)
    assert (second.first_seq, second.last_seq) == (7, 9)
    assert second.path is not None
    verify_archive_file(second.path, start_seq=6, start_hash=result.final_hash or "")
    async with sessions() as session:
        assert (await verify_chain(session)).ok

    # the first kept event is still tied to the archive: deleting it is caught
    async with sessions() as session, session.begin():
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text("DELETE FROM audit_events WHERE seq = 10"))
    async with sessions() as session:
        report = await verify_chain(session)
    assert (report.first_bad_seq, report.problem) == (10, Problem.MISSING)


async def test_an_altered_archive_file_is_rejected(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        may = dt.datetime(2024, 5, 2, tzinfo=dt.UTC)
        await append_events_at(session, [record("alice", "READ", "1")] * 3, may)
        result = await archive_before(session, dt.date(2024, 6, 1), tmp_path)
    assert result.path is not None
    content = result.path.read_text(encoding="utf-8").replace('"alice"', '"mallory"', 1)
    result.path.write_text(content, encoding="utf-8")
    with pytest.raises(ArchiveError, match="altered"):
        verify_archive_file(result.path, start_seq=0, start_hash=GENESIS_HASH)


async def test_the_current_month_cannot_be_archived(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    next_month = (dt.date.today().replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    async with sessions() as session, session.begin():
        with pytest.raises(ArchiveError, match="current month"):
            await archive_before(session, next_month, tmp_path)
