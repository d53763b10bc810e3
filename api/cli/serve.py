"""`dossier serve`: the HTTP server, with an embedded PostgreSQL when no DATABASE_URL is set.

The database is prepared once in this process (start, migrate, seed on first start); then
uvicorn runs the app factory by import string, so `--workers N` starts N processes that each
read the same resolved DATABASE_URL from the environment.
"""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass
from types import FrameType

import click
import uvicorn

from api.cli.runtime import database_url, resolve_settings, run
from api.cli.seed import demo_logins, describe
from api.metrics import prepare_multiprocess_directory
from api.seed import DEFAULT_CUSTOMERS, DEMO_USERS, DemoSummary, database_is_empty, seed_demo
from api.settings import Settings
from db.engine import create_engine
from db.migrate import DatabaseAheadError, upgrade_to_head

APP_FACTORY = "api.app:create_app"
PROTOCOL = "api.server.protocol:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class Preparation:
    """What happened to the database before the server started."""

    seeded: DemoSummary | None
    has_demo_users: bool


async def prepare_database(
    url: str, settings: Settings, *, migrate: bool, seed_if_empty: bool
) -> Preparation:
    engine = create_engine(url, settings.pool)
    try:
        if migrate:
            await upgrade_to_head(engine)
        seeded = None
        if seed_if_empty and await database_is_empty(engine):
            seeded = await seed_demo(engine, settings.field_cipher, customers=DEFAULT_CUSTOMERS)
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            found = await raw.driver_connection.fetchval(  # type: ignore[union-attr]  # set once connected
                "SELECT count(*) FROM users WHERE username = ANY($1::text[])",
                [username for username, _, _ in DEMO_USERS],
            )
        return Preparation(seeded=seeded, has_demo_users=found == len(DEMO_USERS))
    finally:
        await engine.dispose()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes; each keeps its own connection pool.",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Upgrade the schema before serving (a no-op when it is current).",
)
def serve(host: str, port: int, workers: int, migrate: bool) -> None:
    """Run the HTTP server.

    Without DATABASE_URL an embedded PostgreSQL is started in the data directory
    (DOSSIER_DATA_DIR, default: the user's data dir), migrated, and loaded with the demo data
    set on first start. It stops when the server stops.
    """
    os.environ.setdefault("DOSSIER_ENV", "dev")
    settings = resolve_settings()
    embedded = settings.database_url is None
    url = database_url(settings)
    try:
        prepared = run(prepare_database(url, settings, migrate=migrate, seed_if_empty=embedded))
    except DatabaseAheadError as exc:
        raise click.ClickException(str(exc)) from exc
    # workers are fresh processes: they find the database (and the dev secrets) the same way
    os.environ["DATABASE_URL"] = url
    os.environ["DOSSIER_DATA_DIR"] = str(settings.data_dir)
    prepare_multiprocess_directory(workers)  # /metrics sums over every worker

    base = f"http://{_display_host(host)}:{port}"
    if prepared.seeded is not None:
        click.echo(f"first start: loaded the demo data set ({describe(prepared.seeded)})")
    click.echo(f"Dossier {settings.env} at {base}  (GraphQL: POST {base}/graphql)")
    if settings.is_dev:
        click.echo(f"GraphiQL: {base}/graphql")
    if embedded:
        click.echo(f"embedded PostgreSQL: {url}")
    if prepared.has_demo_users:
        click.echo(demo_logins(production=settings.is_production))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; with the default
    # handler that kills the process before atexit, leaving the embedded PostgreSQL running
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    limits = settings.server
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        # api.server: the header timeout, header size and connection caps uvicorn lacks
        http=PROTOCOL,
        timeout_keep_alive=max(1, math.ceil(limits.keepalive_seconds)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        backlog=limits.backlog,
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):  # noqa: S104  # only naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
