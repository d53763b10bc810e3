"""Appending: events commit with the caller's change, stay linear under concurrency, and a
failed append fails the caller (fail closed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.canonical import GENESIS_HASH
from audit.chain import AuditWriteError, append_events, append_events_at
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import verify_chain
from db.models.audit import AuditEvent


def read_event(actor: str, *ids: str) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type="customer",
        resource_ids=ids,
        fields=("name", "phone"),
        operation="Customers",
        ip="127.0.0.1",
        request_id=uuid.uuid4().hex,
    )


async def test_appended_events_round_trip_and_verify(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    token = uuid.uuid4()
    change = AuditRecord(
        actor="acme-partner",
        actor_kind=ActorKind.PARTNER,
        action=AuditAction.UPDATE,
        resource_type="customer",
        resource_ids=["7"],
        changes={"phone": {"old": "138****5678", "new": "139****0000"}, "level": {"old": "C"}},
        token_id=token,
        user_agent="x" * 1000,
    )
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("alice", "1", "2"), change])
    async with sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
        report = await verify_chain(session)
    assert [event.seq for event in events] == [1, 2]
    assert events[0].prev_hash == GENESIS_HASH and events[1].prev_hash == events[0].hash
    assert events[0].resource_ids == ["1", "2"] and events[0].fields == ["name", "phone"]
    assert events[1].token_id == token and events[1].changes["level"] == {"old": "C"}
    assert len(events[1].user_agent or "") == 400  # a client's header is cut, not refused
    assert report.ok and report.checked == 2 and report.head_seq == 2, report.describe()


async def test_events_land_in_the_monthly_partition_not_the_default(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("alice", "1")])
    async with sessions() as session:
        partition = await session.scalar(text("SELECT tableoid::regclass::text FROM audit_events"))
    assert partition is not None and partition.startswith("audit_events_y")


async def test_concurrent_appends_keep_the_chain_linear_and_complete(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writers, appends = 8, 50

    async def writer(number: int) -> None:
        for index in range(appends):
            async with sessions() as session, session.begin():
                await append_events(session, [read_event(f"user{number}", str(index))])

    await asyncio.gather(*(writer(number) for number in range(writers)))
    async with sessions() as session:
        rows = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).order_by(
                    AuditEvent.seq
                )
            )
        ).all()
        report = await verify_chain(session)
    assert [row.seq for row in rows] == list(range(1, writers * appends + 1))
    assert [row.prev_hash for row in rows[1:]] == [row.hash for row in rows[:-1]]
    assert len({row.prev_hash for row in rows}) == len(rows)  # no two events share a parent
    assert report.ok and report.checked == writers * appends, report.describe()


async def test_a_rolled_back_change_leaves_no_event_and_no_gap(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("alice", "1")])
    async with sessions() as session:
        await session.begin()
        await append_events(session, [read_event("bob", "2")])
        await session.rollback()
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("carol", "3")])
    async with sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
        report = await verify_chain(session)
    assert [(event.seq, event.actor) for event in events] == [(1, "alice"), (2, "carol")]
    assert report.ok, report.describe()


async def test_a_failing_append_raises_and_takes_the_change_down_with_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Fail closed: the head is locked elsewhere and the lock wait times out."""
    async with sessions() as holder, sessions() as session:
        await holder.begin()
        await holder.execute(text("SELECT 1 FROM audit_chain_head FOR UPDATE"))
        await session.begin()
        await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
        await session.execute(
            text("CREATE TEMP TABLE change_of_this_request (id int) ON COMMIT DROP")
        )
        with pytest.raises(AuditWriteError):
            await append_events(session, [read_event("alice", "1")])
        await session.rollback()
        await holder.rollback()
    async with sessions() as session:
        assert await session.scalar(select(AuditEvent.seq)) is None


async def test_a_record_without_a_stable_encoding_is_refused_before_any_write(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bad = AuditRecord(actor="alice", actor_kind="USER", action="UPDATE", changes={"x": b"raw"})
    async with sessions() as session, session.begin():
        with pytest.raises(AuditWriteError):
            await append_events(session, [bad])
        with pytest.raises(AuditWriteError):
            await append_events(session, [read_event("a" * 301)])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE {partition} SET actor = 'mallory'",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "TRUNCATE audit_events_default",
    ],
)
async def test_the_application_cannot_update_or_delete_audit_rows(
    sessions: async_sessionmaker[AsyncSession], statement: str
) -> None:
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("alice", "1")])
    async with sessions() as session, session.begin():
        partition = await session.scalar(text("SELECT tableoid::regclass::text FROM audit_events"))
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement.format(partition=partition)))
    async with sessions() as session:
        assert (await verify_chain(session)).ok


async def test_ids_and_fields_of_any_text_are_stored_exactly(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """They travel as one text[] literal each: quoting must be exact, whatever the text."""
    odd = ['{a,"b"}', "back\\slash", "\\", '"', "NULL", "", " spaced ", "北京", "a,b", "}{"]
    records = [read_event("alice", *odd), read_event("bob"), read_event("carol", "1")]
    records.append(AuditRecord(actor="dave", actor_kind=ActorKind.USER, action="READ", fields=odd))
    async with sessions() as session, session.begin():
        await append_events(session, records)
    async with sessions() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
        report = await verify_chain(session)
    assert [row.resource_ids for row in rows] == [odd, [], ["1"], []]
    assert rows[3].fields == odd and rows[0].fields == ["name", "phone"]
    assert report.ok, report.describe()


async def test_an_event_names_each_record_once_in_the_order_first_given(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The resource indexer unnests an event's ids as they are, so repeats never reach it."""
    async with sessions() as session, session.begin():
        await append_events(session, [read_event("alice", "7", "3", "7", "", "3", "")])
    async with sessions() as session:
        stored = (await session.scalars(select(AuditEvent))).one()
        report = await verify_chain(session)
    assert stored.resource_ids == ["7", "3", ""]
    assert report.ok, report.describe()  # the hash covers the ids as stored


async def test_a_stamp_before_the_year_1000_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The database writes such a year with leading zeros, `format_at` without: no chain."""
    ancient = dt.datetime(999, 12, 31, tzinfo=dt.UTC)
    async with sessions() as session, session.begin():
        with pytest.raises(AuditWriteError, match="year 1000"):
            await append_events_at(session, [read_event("alice", "1")], ancient)
