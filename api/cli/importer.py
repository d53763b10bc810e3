"""`dossier import customers FILE.csv|FILE.xlsx`: the same validated import as the GraphQL one.

The rows become the customers of the user named by `--as`, in that user's department, and that
user's policies decide whether the import may run at all: the command line is no way around
them. A progress bar shows rows per second and the time left; `--report` keeps the CSV report.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from sqlalchemy import select

from api.cli.runtime import database_url, resolve_settings, run
from api.settings import Settings
from bulk.columns import map_columns
from bulk.imports import CustomerImport, Importer, ImportForbiddenError, ImportOutcome
from bulk.jobs import Progress
from bulk.sources import FileRejectedError, Table, read_table
from db.engine import create_engine, create_sessionmaker
from db.migrate import upgrade_to_head
from db.models import User
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import read_snapshot
from resolvers.context import RequestMeta


def _mapping(pairs: Sequence[str]) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {}
    for pair in pairs:
        header, sep, field = pair.partition("=")
        if not sep or not header.strip():
            raise click.BadParameter(f"{pair!r}: write HEADER=field (or HEADER= to skip)")
        mapping[header.strip()] = field.strip() or None
    return mapping


async def import_customers(
    settings: Settings,
    url: str,
    *,
    path: Path,
    table: Table,
    mapping: dict[str, str | None],
    username: str,
    dry_run: bool,
    on_progress: Callable[[int, str], None] | None = None,
) -> ImportOutcome:
    """Run one import against the database at `url` as `username`; the engine lives for it."""
    columns = map_columns(table.header, mapping)
    engine = create_engine(url, settings.pool)
    try:
        await upgrade_to_head(engine)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            user = (
                await session.execute(select(User).where(User.username == username))
            ).scalar_one_or_none()
            if user is None or not user.is_active:
                raise click.ClickException(f"no active user {username!r}")
            snapshot = await read_snapshot(session, 0)
        principal = Principal(
            kind=PrincipalKind.USER,
            name=user.username,
            user_id=user.id,
            department_id=user.department_id,
        )
        started = time.perf_counter()

        def advance(progress: Progress, rows: int) -> None:
            if on_progress is not None:
                elapsed = max(time.perf_counter() - started, 1e-6)
                on_progress(rows, f"{progress.processed / elapsed:,.0f} rows/s")

        directory = settings.bulk.directory_under(settings.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        work = CustomerImport(
            sessions=sessions,
            cipher=settings.field_cipher,
            settings=settings.bulk,
            directory=directory,
            importer=Importer(
                principal, AccessDecisions(principal, snapshot), RequestMeta(operation="cli")
            ),
            table=table,
            columns=columns,
            file_name=path.name,
            dry_run=dry_run,
            on_progress=advance,
        )
        return await work.run()
    finally:
        await engine.dispose()


def describe(outcome: ImportOutcome, dry_run: bool, elapsed: float) -> str:
    p = outcome.progress
    verb = "would write" if dry_run else "wrote"
    rate = p.processed / elapsed if elapsed > 0 else 0.0
    lines = [
        f"{p.processed:,} rows in {elapsed:.1f} s ({rate:,.0f} rows/s): {p.accepted:,} accepted, "
        f"{p.rejected:,} rejected, {p.duplicates:,} duplicates; {verb} {p.accepted:,}"
        f"{'' if dry_run else f' ({p.written:,} written)'}",
        f"import job {outcome.job_id}",
    ]
    if outcome.ignored_columns:
        lines.append(f"ignored columns: {', '.join(outcome.ignored_columns)}")
    for issue in outcome.issues[:10]:
        where = f" {issue.field}" if issue.field else ""
        lines.append(f"  row {issue.row}{where}: {issue.status}: {issue.message}")
    if len(outcome.issues) > 10 or p.rejected + p.duplicates > len(outcome.issues):
        lines.append("  … the full list is in the report (--report FILE)")
    return "\n".join(lines)


@click.command("import")
@click.argument("resource", type=click.Choice(["customers"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report of rejected and duplicate rows to this CSV file.",
)
@click.option(
    "--as",
    "username",
    envvar="DOSSIER_IMPORT_AS",
    required=True,
    help="User who imports and will own the rows (env DOSSIER_IMPORT_AS).",
)
@click.option("--map", "mapping", multiple=True, metavar="HEADER=field",
              help="Fill a field from a column the built-in names do not know.")  # fmt: skip
def import_(
    resource: str,
    file: Path,
    dry_run: bool,
    report: Path | None,
    username: str,
    mapping: tuple[str, ...],
) -> None:
    """Import customers from a CSV (any common encoding) or XLSX file."""
    settings = resolve_settings()
    limit = settings.bulk.max_upload_bytes
    if file.stat().st_size > limit:
        raise click.ClickException(
            f"{file.name} is larger than the import limit of {limit // (1024 * 1024)} MB "
            "(DOSSIER_BULK_MAX_UPLOAD_MB)"
        )
    try:
        table = read_table(file, file.name)
        map_columns(table.header, _mapping(mapping))  # refuse a bad header before connecting
    except FileRejectedError as error:
        raise click.ClickException(f"{file.name}: {error.message}") from None
    url = database_url(settings)
    started = time.perf_counter()
    with click.progressbar(
        length=table.total_rows,
        label="importing" if not dry_run else "checking",
        show_eta=True,
        show_percent=True,
        item_show_func=lambda item: item,
        file=sys.stderr,
    ) as bar:
        try:
            outcome = run(
                import_customers(
                    settings,
                    url,
                    path=file,
                    table=table,
                    mapping=_mapping(mapping),
                    username=username,
                    dry_run=dry_run,
                    on_progress=bar.update,
                )
            )
        except ImportForbiddenError as error:
            raise click.ClickException(f"{username}: {error}") from None
    elapsed = time.perf_counter() - started
    if report is not None:
        shutil.copyfile(outcome.report_path, report)
    click.echo(describe(outcome, dry_run, elapsed))
