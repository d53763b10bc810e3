"""Writers in several OS processes share one chain: gap-free, verifiable, and kill -9 safe.

Each writer process appends the way a server process does — read events through its
`ReadAuditBatcher` (autocommit, the head released early) and write events in their own
transaction (`append_events` in a session) — and records every append it saw acknowledged in a
file of its own, flushed to disk before the next. Killing writers with SIGKILL mid-append must
leave a chain that `verify_chain` accepts, numbered 1..N without a gap, that still holds every
acknowledged event, and that the surviving writers keep extending (no fork).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
import uuid
from pathlib import Path
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from audit.batch import ReadAuditBatcher
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import verify_chain
from db.engine import PoolOptions, create_engine


def _record(writer: int, number: int, action: AuditAction) -> AuditRecord:
    return AuditRecord(
        actor=f"writer{writer}",
        actor_kind=ActorKind.USER,
        action=action,
        resource_type="customer",
        resource_ids=[str(n) for n in range(number, number + 20)],
        fields=["name", "phone"],
        request_id=f"{writer}-{number}-{uuid.uuid4().hex[:8]}",
    )


def _write(url: str, writer: int, appends: int, log: str) -> None:
    """Append `appends` times (three reads, then a write, in turn); log each acknowledgement."""

    async def run(acknowledged: TextIO) -> None:
        engine = create_engine(url, PoolOptions(size=2, max_overflow=0, statement_timeout_ms=0))

        async def read_append(connection: AsyncConnection, records: list[AuditRecord]) -> None:
            await append_events(connection, records)

        batcher = ReadAuditBatcher(engine, read_append)  # type: ignore[arg-type]
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        for number in range(appends):
            if number % 4 == 3:
                record = _record(writer, number, AuditAction.UPDATE)
                async with sessions() as session, session.begin():
                    await session.execute(text("SELECT 1"))  # the write's own statements
                    await append_events(session, [record])
            else:
                record = _record(writer, number, AuditAction.READ)
                await batcher.append([record])
            acknowledged.write(f"{record.request_id}\n")
            acknowledged.flush()
            os.fsync(acknowledged.fileno())
        await engine.dispose()

    with open(log, "a", encoding="utf-8") as acknowledged:
        asyncio.run(run(acknowledged))


def _spawn(url: str, writer: int, appends: int, tmp_path: Path) -> multiprocessing.Process:
    context = multiprocessing.get_context("spawn")
    log = tmp_path / f"writer{writer}.log"
    process = context.Process(target=_write, args=(url, writer, appends, str(log)))
    process.start()
    return process


def _wait_appending(tmp_path: Path, writer: int, appends: int = 5, timeout: float = 90) -> None:
    """Until `writer` saw `appends` acknowledged: it is appending back to back by then."""
    deadline, log = time.monotonic() + timeout, tmp_path / f"writer{writer}.log"
    while not log.exists() or len(log.read_text(encoding="utf-8").splitlines()) < appends:
        assert time.monotonic() < deadline, f"writer {writer} did not get going"
        time.sleep(0.05)


def _acknowledged(tmp_path: Path) -> set[str]:
    ids: set[str] = set()
    for log in tmp_path.glob("writer*.log"):
        ids.update(line for line in log.read_text(encoding="utf-8").splitlines() if line)
    return ids


async def _chain(url: str) -> tuple[bool, str, list[int], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            report = await verify_chain(connection)
            rows = (
                await connection.execute(text("SELECT seq, request_id FROM audit_events"))
            ).all()
    finally:
        await engine.dispose()
    return (
        report.ok,
        report.describe(),
        sorted(row.seq for row in rows),
        {r.request_id for r in rows},
    )


async def test_writers_in_several_processes_make_one_gap_free_chain(
    fresh_url: str, tmp_path: Path
) -> None:
    writers = [_spawn(fresh_url, number, 40, tmp_path) for number in range(3)]
    for process in writers:
        await asyncio.to_thread(process.join, 120)
        assert process.exitcode == 0
    ok, described, seqs, request_ids = await _chain(fresh_url)
    assert ok, described
    assert seqs == list(range(1, 3 * 40 + 1))
    assert _acknowledged(tmp_path) == request_ids


async def test_kill_9_of_writers_mid_append_loses_nothing_acknowledged(
    fresh_url: str, tmp_path: Path
) -> None:
    survivor = _spawn(fresh_url, 0, 150, tmp_path)
    victims = [_spawn(fresh_url, number, 100_000, tmp_path) for number in (1, 2)]
    for number in (1, 2):
        await asyncio.to_thread(_wait_appending, tmp_path, number)
    await asyncio.sleep(0.3)  # a kill now lands inside an append: it is all they do
    for victim in victims:
        os.kill(victim.pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
    for victim in victims:
        await asyncio.to_thread(victim.join, 30)
        assert victim.exitcode == -signal.SIGKILL
    await asyncio.to_thread(survivor.join, 180)
    assert survivor.exitcode == 0
    after = _spawn(fresh_url, 3, 8, tmp_path)  # the chain goes on from where it was left
    await asyncio.to_thread(after.join, 60)
    assert after.exitcode == 0

    ok, described, seqs, request_ids = await _chain(fresh_url)
    assert ok, described
    assert seqs == list(range(1, len(seqs) + 1))
    acknowledged = _acknowledged(tmp_path)
    assert any(rid.startswith("1-") for rid in acknowledged)  # the victims did append
    assert acknowledged <= request_ids
    # at most the append each victim was killed in can be in the chain unacknowledged
    assert len(request_ids - acknowledged) <= 2
