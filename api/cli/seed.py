"""`dossier seed`: load the demo data set, optionally scaled to N generated customers."""

from __future__ import annotations

import time

import click

from api.cli.runtime import database_url, resolve_settings, run
from api.seed import (
    DEFAULT_CUSTOMERS,
    DEMO_PASSWORD,
    DEMO_USERS,
    DatabaseNotEmptyError,
    DemoSummary,
    seed_demo,
)
from api.seed.customers import Block
from api.settings import Settings
from db.engine import create_engine
from db.migrate import DatabaseAheadError, upgrade_to_head

PROGRESS_EVERY = 20_000  # customers between progress lines on large loads


async def seed_database(url: str, settings: Settings, *, customers: int, seed: int) -> DemoSummary:
    """Migrate the database at `url`, then seed it; the engine lives only for this call."""
    engine = create_engine(url, settings.pool)
    done = 0

    def report(block: Block) -> None:
        nonlocal done
        before, done = done, done + len(block.rows["customers"])
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            click.echo(f"  {done:,} / {customers:,} customers", err=True)

    try:
        await upgrade_to_head(engine)
        return await seed_demo(
            engine, settings.field_cipher, customers=customers, seed=seed, on_block=report
        )
    finally:
        await engine.dispose()


def describe(summary: DemoSummary) -> str:
    rows = ", ".join(f"{table} {count:,}" for table, count in summary.counts.items())
    return f"{summary.total_rows:,} rows: {rows}"


def demo_logins(*, production: bool = False) -> str:
    """The demo users; the well-known password only outside production."""
    users = ", ".join(username for username, _, _ in DEMO_USERS)
    if production:
        return (
            f"demo logins present: {users}. Their password is public: deactivate them or "
            "set new passwords (`dossier user`) before this server takes real traffic."
        )
    return f"demo logins: {users} (password {DEMO_PASSWORD!r}); partner: acme-partner"


PRODUCTION_SEED_WARNING = """\
!!! WARNING: seeding the DEMO data set with DOSSIER_ENV=prod !!!
!!! Every demo user (admin included) gets the published password; anyone who knows it
!!! can log in as an administrator. Use this only for a throwaway evaluation database."""


@click.command()
@click.option("--demo", is_flag=True, help="Load the demo organisation (implied by --customers).")
@click.option(
    "--customers",
    type=click.IntRange(min=0),
    default=None,
    help=f"Generated customers (default {DEFAULT_CUSTOMERS}), each with 5 contacts, "
    "3 opportunities and 2 tickets.",
)
@click.option("--seed", "seed_value", type=int, default=42, show_default=True,
              help="Random seed: the same N and seed give the same data.")  # fmt: skip
def seed(demo: bool, customers: int | None, seed_value: int) -> None:
    """Load the demo data set into an empty database (migrating it first)."""
    if not demo and customers is None:
        raise click.UsageError("say what to load: --demo and/or --customers N")
    settings = resolve_settings()
    if settings.is_production:
        click.secho(PRODUCTION_SEED_WARNING, err=True, fg="red", bold=True)
    url = database_url(settings)
    count = DEFAULT_CUSTOMERS if customers is None else customers
    started = time.perf_counter()
    try:
        summary = run(seed_database(url, settings, customers=count, seed=seed_value))
    except (DatabaseNotEmptyError, DatabaseAheadError) as exc:
        raise click.ClickException(str(exc)) from exc
    elapsed = time.perf_counter() - started
    click.echo(f"seeded {describe(summary)} in {elapsed:.1f} s")
    click.echo(demo_logins(production=settings.is_production))
    if settings.is_production:
        click.secho(PRODUCTION_SEED_WARNING, err=True, fg="red", bold=True)
