"""Retention: archive files past the retention period are deleted, each expiry is an event, and
the chain still verifies from the anchors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.archive import archive_before
from audit.chain import append_events, append_events_at
from audit.retention import expire_archives
from audit.verify import verify_chain
from tests.audit.test_queries_archive import record


async def test_expired_archives_are_deleted_audited_and_the_chain_verifies(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        await append_events_at(
            session, [record("alice", "READ", "1")] * 2, dt.datetime(2024, 10, 15, tzinfo=dt.UTC)
        )
        await append_events_at(
            session, [record("alice", "READ", "2")], dt.datetime(2024, 12, 15, tzinfo=dt.UTC)
        )
        await append_events(session, [record("bob", "READ", "3")])
    async with sessions() as session, session.begin():
        first = await archive_before(session, dt.date(2024, 11, 1), tmp_path)
    async with sessions() as session, session.begin():
        second = await archive_before(session, dt.date(2025, 1, 1), tmp_path)
    assert first.path is not None and second.path is not None

    now = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)  # first cut 80 days ago, second 19
    async with sessions() as session, session.begin():
        expired = await expire_archives(session, 30, now=now)
    assert [e.path for e in expired] == [first.path]
    assert not first.path.exists() and second.path.exists()

    async with sessions() as session:
        events = (
            await session.execute(
                text(
                    "SELECT action, changes FROM audit_events WHERE resource_type = 'audit_archive'"
                )
            )
        ).all()
        report = await verify_chain(session)
    assert [(e.action, e.changes["archiveSha256"]) for e in events] == [("DELETE", first.sha256)]
    assert report.ok, report.describe()

    async with sessions() as session, session.begin():  # nothing left to expire: no new event
        assert await expire_archives(session, 30, now=now) == []
    with pytest.raises(ValueError):
        async with sessions() as session, session.begin():
            await expire_archives(session, 0)
