"""`dossier audit`: verify the hash chain and archive old months."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import text

from api.cli.runtime import database_url, resolve_settings, run
from audit.archive import ArchiveError, ArchiveResult, archive_before, parse_month
from audit.verify import VerifyReport, verify_chain
from db.engine import create_engine, create_sessionmaker

# archiving streams whole months: the server-wide statement timeout is for requests
_no_timeout = text("SET LOCAL statement_timeout = 0")


async def verify_database(url: str) -> VerifyReport:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            # a long walk over millions of rows must not hit the server's statement timeout
            await connection.exec_driver_sql("SET statement_timeout = 0")
            return await verify_chain(connection)
    finally:
        await engine.dispose()


async def archive_database(url: str, before: str, directory: Path) -> ArchiveResult:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(_no_timeout)
            return await archive_before(session, parse_month(before), directory)
    finally:
        await engine.dispose()


@click.group()
def audit() -> None:
    """Inspect, verify and archive the audit trail."""


@audit.command()
def verify() -> None:
    """Recompute the hash chain; exit 1 naming the first altered, missing or reordered event."""
    settings = resolve_settings()
    report = run(verify_database(database_url(settings)))
    if not report.ok:
        click.echo(report.describe(), err=True)
        raise SystemExit(1)
    click.echo(report.describe())


@audit.command()
@click.option("--before", required=True, metavar="YYYY-MM", help="Archive months before this.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where archive files go (default: <data dir>/audit-archive).",
)
def archive(before: str, directory: Path | None) -> None:
    """Write old months to a verified JSON Lines file, then detach and drop their partitions."""
    settings = resolve_settings()
    target = directory or settings.data_dir / "audit-archive"
    try:
        result = run(archive_database(database_url(settings), before, target))
    except ArchiveError as error:
        raise click.ClickException(str(error)) from error
    if result.path is None:
        click.echo(f"nothing to archive before {before}")
        return
    click.echo(
        f"archived {result.event_count} events (seq {result.first_seq}..{result.last_seq}) "
        f"to {result.path}\nfinal hash {result.final_hash}\nfile sha256 {result.sha256}\n"
        f"dropped partitions: {', '.join(result.dropped_partitions) or 'none'}"
    )
