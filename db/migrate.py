"""Schema upgrades through Alembic, callable from the CLI, the server start and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import async_url

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseAheadError(RuntimeError):
    """The database carries a revision this code does not know: refuse to touch it."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolates `%`: the embedded server's `?host=%2Ftmp…` must be escaped
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration; a no-op when already at head, so safe to run twice."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(config)
    known = {rev.revision for rev in script.walk_revisions()}

    def upgrade(connection: object) -> None:
        current = MigrationContext.configure(connection).get_current_heads()  # type: ignore[arg-type]  # a sync Connection at run time
        unknown = [rev for rev in current if rev not in known]
        if unknown:
            raise DatabaseAheadError(
                f"database is at revision {', '.join(unknown)}, unknown to this version of "
                "Dossier: upgrade the code before migrating"
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
