"""`dossier remind`: one reminder pass (follow-ups, renewals, overdue payments), for cron.

Idempotent like the pass inside `dossier serve`: run it as often as you like, from any host.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from api.cli.runtime import database_url, resolve_settings, run
from db.engine import create_engine
from resolvers.reminders import ReminderCounts, run_reminders


async def remind_once(url: str, pool: object, now: datetime) -> ReminderCounts:
    engine = create_engine(url, pool)  # type: ignore[arg-type]  # the settings' pool options
    try:
        return await run_reminders(engine, now)
    finally:
        await engine.dispose()


@click.command()
@click.option("--at", "at", default=None, help="Pretend it is this ISO time (default: now).")
def remind(at: str | None) -> None:
    """Create the reminder tasks that are due and do not exist yet."""
    settings = resolve_settings()
    url = database_url(settings)
    now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if now.tzinfo is None:
        raise click.BadParameter("needs a time zone offset", param_hint="--at")
    counts = run(remind_once(url, settings.pool, now))
    click.echo(
        f"follow-ups {counts.follow_ups}, renewals {counts.renewals}, "
        f"overdue payments {counts.overdue_payments}"
    )
    click.echo(
        f"statuses: payments OVERDUE {counts.payments_marked_overdue}, "
        f"contracts EXPIRED {counts.contracts_expired}"
    )
