"""`dossier migrate`: bring the database schema to the newest revision."""

from __future__ import annotations

import click

from api.cli.runtime import database_url, resolve_settings, run
from db.engine import create_engine
from db.migrate import DatabaseAheadError, upgrade_to_head


async def migrate_database(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@click.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision (a no-op when already there)."""
    settings = resolve_settings()
    url = database_url(settings)
    try:
        run(migrate_database(url))
    except DatabaseAheadError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database schema is up to date")
