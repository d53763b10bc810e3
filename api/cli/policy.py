"""`dossier policy export|import`: the whole rule set as a reviewable CSV file."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli.runtime import run
from api.cli.users import cli_actor, in_transaction
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.models import Department
from policy import text_format
from policy.admin import LockoutError, PolicyInputError, current_lines, replace_all


async def _departments(session: AsyncSession) -> dict[int, str]:
    rows = (await session.execute(select(Department.id, Department.name))).all()
    return {row.id: row.name for row in rows}


class DryRunDoneError(Exception):
    """Carries a dry run's result out of the transaction it rolls back."""

    def __init__(self, added: set[tuple[str, ...]], removed: set[tuple[str, ...]]) -> None:
        super().__init__("dry run")
        self.added, self.removed = added, removed


@click.group()
def policy() -> None:
    """Move the rule set in and out as a text file."""


@policy.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
def export(file: Path | None) -> None:
    """Write every rule and role assignment as CSV (to FILE, or standard output)."""

    async def work(session: AsyncSession) -> str:
        return text_format.dump(await current_lines(session), await _departments(session))

    text = run(in_transaction(work))
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        click.echo(f"wrote {file}", err=True)


@policy.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show the difference; change nothing.")
def import_(file: Path, dry_run: bool) -> None:
    """Replace the whole rule set with FILE, after validating every line."""

    text = file.read_text(encoding="utf-8")

    async def work(session: AsyncSession) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
        names = await _departments(session)
        lines = text_format.load(text, {v: k for k, v in names.items()})
        before = set(await current_lines(session))
        await replace_all(session, lines)
        added, removed = set(lines) - before, before - set(lines)
        if dry_run:
            raise DryRunDoneError(added, removed)  # leaving the transaction rolls it back
        change = AuditRecord(
            actor=cli_actor(),
            actor_kind=ActorKind.SYSTEM,
            action=AuditAction.POLICY_CHANGE,
            resource_type="policy",
            changes={
                "imported": file.name,
                "added": sorted(map(list, added)),
                "removed": sorted(map(list, removed)),
            },
        )
        await append_events(session, [change])
        return added, removed

    try:
        added, removed = run(in_transaction(work))
    except DryRunDoneError as done:
        added, removed = done.added, done.removed
    except (PolicyInputError, LockoutError) as error:
        raise click.ClickException(f"refused, nothing changed: {error}") from error
    for line in sorted(added):
        click.echo("+ " + ",".join(v for v in line if v))
    for line in sorted(removed):
        click.echo("- " + ",".join(v for v in line if v))
    verb = "would change" if dry_run else "changed"
    click.echo(f"{verb}: {len(added)} added, {len(removed)} removed", err=True)
