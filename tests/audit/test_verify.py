"""`verify_chain` and `dossier audit verify` catch each way a DBA could tamper with the trail.

Each test writes a clean chain, then changes rows directly in SQL the way a database
administrator would (with triggers switched off for the session), and checks that verification
names the first bad entry and says what happened to it.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.canonical import event_hash
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import Problem, VerifyReport, verify_chain

EVENTS = 10


@pytest.fixture
async def chain(sessions: async_sessionmaker[AsyncSession]) -> None:
    for number in range(EVENTS):
        async with sessions() as session, session.begin():
            record = AuditRecord(
                actor=f"user{number % 3}",
                actor_kind=ActorKind.USER,
                action=AuditAction.READ,
                resource_type="customer",
                resource_ids=[str(number)],
                fields=["name"],
            )
            await append_events(session, [record])


async def tamper(sessions: async_sessionmaker[AsyncSession], *statements: str) -> VerifyReport:
    async with sessions() as session, session.begin():
        # what a superuser does to get past the append-only trigger
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await session.execute(text(statement))
    async with sessions() as session:
        return await verify_chain(session)


async def test_an_untouched_chain_verifies(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        report = await verify_chain(session)
    assert report.ok and report.checked == EVENTS and report.first_bad_seq is None


async def test_verify_names_an_altered_event(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(sessions, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    assert (report.first_bad_seq, report.problem) == (4, Problem.ALTERED)
    assert report.checked == 3


async def test_verify_names_an_event_whose_ids_were_trimmed(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(sessions, "UPDATE audit_events SET resource_ids = '{}' WHERE seq = 9")
    assert (report.first_bad_seq, report.problem) == (9, Problem.ALTERED)


async def test_verify_names_a_deleted_event(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(sessions, "DELETE FROM audit_events WHERE seq = 6")
    assert (report.first_bad_seq, report.problem) == (6, Problem.MISSING)


async def test_verify_names_the_first_event_when_it_was_deleted(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(sessions, "DELETE FROM audit_events WHERE seq = 1")
    assert (report.first_bad_seq, report.problem) == (1, Problem.MISSING)


async def test_verify_catches_removal_of_the_newest_events(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(sessions, "DELETE FROM audit_events WHERE seq >= 9")
    assert (report.first_bad_seq, report.problem) == (EVENTS - 1, Problem.MISSING)


async def test_verify_names_swapped_events(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(
        sessions,
        "UPDATE audit_events SET seq = -5 WHERE seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE seq = 6",
        "UPDATE audit_events SET seq = 6 WHERE seq = -5",
    )
    assert (report.first_bad_seq, report.problem) == (5, Problem.REORDERED)


async def test_verify_catches_a_deletion_hidden_by_renumbering(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await tamper(
        sessions,
        "DELETE FROM audit_events WHERE seq = 3",
        "UPDATE audit_events SET seq = -seq WHERE seq > 3",
        "UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0",
        "UPDATE audit_chain_head SET seq = seq - 1",
    )
    assert (report.first_bad_seq, report.problem) == (3, Problem.BROKEN_LINK)


async def test_verify_catches_an_event_rewritten_with_a_recomputed_hash(
    chain: None, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Rehashing the altered entry moves the break to the link of its successor."""
    async with sessions() as session:
        row = (
            (await session.execute(text("SELECT * FROM audit_events WHERE seq = 2")))
            .one()
            ._asdict()
        )
    row["actor"] = "mallory"
    forged = event_hash(row)
    report = await tamper(
        sessions,
        # S608: `forged` is 64 hex digits computed just above, not outside input
        f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 2",  # noqa: S608
    )
    assert (report.first_bad_seq, report.problem) == (3, Problem.BROKEN_LINK)


async def test_cli_verify_exits_non_zero_naming_the_first_bad_event(
    chain: None, sessions: async_sessionmaker[AsyncSession], fresh_url: str, tmp_path: object
) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": fresh_url,
        "DOSSIER_ENV": "dev",
        "DOSSIER_DATA_DIR": str(tmp_path),
    }

    async def run_cli() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "audit",
            "verify",
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    code, output = await run_cli()
    assert code == 0, output
    assert f"{EVENTS} events" in output
    await tamper(sessions, "UPDATE audit_events SET fields = '{phone}' WHERE seq = 7")
    code, output = await run_cli()
    assert code == 1
    assert "seq 7" in output and "altered" in output
