"""Backups: a pg_dump of a live database restores into a new one whose audit chain verifies."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api.cli import main
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.engine import create_engine, create_sessionmaker, plain_url
from tests.conftest import fresh_database
from tests.ops.conftest import migrate_and_seed, server_env

EVENTS = 40


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install -y postgresql-client)")
    return found


@pytest.fixture
def source_url() -> Iterator[str]:
    with fresh_database("dossier_backup_src") as url:
        yield url


@pytest.fixture
def target_url() -> Iterator[str]:
    with fresh_database("dossier_backup_dst") as url:
        yield url


async def write_events(url: str) -> int:
    """Audit a few changes and return the chain head's sequence number."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await append_events(
                session,
                [
                    AuditRecord(
                        actor="ops-test",
                        actor_kind=ActorKind.SYSTEM,
                        action=AuditAction.UPDATE,
                        resource_type="customer",
                        resource_ids=[str(n)],
                        changes={"level": ["C", "B"]},
                    )
                    for n in range(1, EVENTS + 1)
                ],  # fmt: skip
            )
        async with engine.connect() as connection:
            head = await connection.scalar(text("SELECT seq FROM audit_chain_head WHERE id = 1"))
            return int(head)
    finally:
        await engine.dispose()


def test_dump_restored_into_a_new_database_passes_audit_verify(
    source_url: str, target_url: str, tmp_path: Path
) -> None:
    env = server_env(source_url, tmp_path / "data")
    asyncio.run(migrate_and_seed(env, customers=20))
    head = asyncio.run(write_events(source_url))
    assert head >= EVENTS

    dump = tmp_path / "dossier.dump"
    subprocess.run(  # noqa: S603  # fixed tool, our own arguments
        [tool("pg_dump"), "--format=custom", "--file", str(dump), plain_url(source_url)],
        check=True,
    )
    subprocess.run(  # noqa: S603  # fixed tool, our own arguments
        [tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname",
         plain_url(target_url), str(dump)],
        check=True,
    )  # fmt: skip

    result = CliRunner().invoke(main, ["audit", "verify"], env={**env, "DATABASE_URL": target_url})
    assert result.exit_code == 0, result.output
    assert f"audit chain ok: {head} events" in result.output
