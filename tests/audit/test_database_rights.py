"""The split of database rights in docs/operations.md (`db/app_role_grants.sql`): the
application role appends to the audit trail and cannot change it, and the partitions it may not
create are made ahead by the owner without failing the application's transactions."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import Settings
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.partitions import ensure_partitions, partition_name
from db.engine import create_engine, create_sessionmaker

GRANTS = Path(__file__).resolve().parents[2] / "db" / "app_role_grants.sql"


@pytest.fixture
async def app_engine(settings: Settings, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine logged in as a fresh role holding exactly the rights of the grants file."""
    role = f"dossier_app_{uuid.uuid4().hex[:8]}"
    script = GRANTS.read_text().replace("dossier_app", role)
    async with engine.connect() as owner:
        await owner.execute(text(f"CREATE ROLE {role} LOGIN"))
        await owner.commit()
        raw = await owner.get_raw_connection()
        await raw.driver_connection.execute(script)  # type: ignore[union-attr]
        await owner.commit()
    url = make_url(settings.database_url or "").set(username=role, password=None)
    app = create_engine(url.render_as_string(hide_password=False))
    try:
        yield app
    finally:
        await app.dispose()
        async with engine.connect() as owner:
            await owner.execute(text(f"DROP OWNED BY {role}"))
            await owner.execute(text(f"DROP ROLE {role}"))
            await owner.commit()


def _event(actor: str) -> AuditRecord:
    return AuditRecord(
        actor=actor, actor_kind=ActorKind.SYSTEM, action=AuditAction.READ, resource_type="probe"
    )


async def test_application_role_appends_but_cannot_change_the_trail(
    app_engine: AsyncEngine,
) -> None:
    actor = f"rights-{uuid.uuid4().hex[:8]}"
    async with create_sessionmaker(app_engine)() as session, session.begin():
        await append_events(session, [_event(actor)])
    async with app_engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM audit_events WHERE actor = :a"), {"a": actor}
        )
        assert found == 1
        await connection.rollback()
    month = partition_name(dt.datetime.now(dt.UTC).date().replace(day=1))
    async with app_engine.connect() as connection:
        for statement in (
            "UPDATE audit_events SET actor = 'x' WHERE actor = :a",
            "DELETE FROM audit_events WHERE actor = :a",
            "TRUNCATE audit_events",
            f"DELETE FROM {month} WHERE actor = :a",  # noqa: S608  # not around the parent either
            "DELETE FROM audit_anchors",
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with connection.begin():
                    await connection.execute(text(statement), {"a": actor})


async def test_missing_partitions_warn_and_keep_the_transaction_and_the_owner_makes_them(
    app_engine: AsyncEngine, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    future = dt.datetime(2044, 2, 1, tzinfo=dt.UTC)
    # at WARNING whatever level an earlier test's `configure_logging` left the root logger at
    with caplog.at_level(logging.WARNING, logger="audit.partitions"):
        async with app_engine.begin() as connection:
            made = await ensure_partitions(connection, future)
            # the refused DDL ran under a savepoint: the transaction is still usable
            assert await connection.scalar(text("SELECT 1")) == 1
    assert made == []
    assert "dossier audit partitions" in caplog.text
    async with engine.begin() as owner:
        made = await ensure_partitions(owner, future, months=3)
    assert made == ["audit_events_y2044m02", "audit_events_y2044m03", "audit_events_y2044m04"]
    async with app_engine.begin() as connection:  # present now: a look-up, no DDL
        assert await ensure_partitions(connection, future) == made[:2]
