"""The procrastinate App of Dossier: one connector, every job module registered."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from procrastinate import App, PsycopgConnector

from db.engine import plain_url

if TYPE_CHECKING:
    from jobs.settings import JobSettings

# one job (or one family of jobs) per module, each with `register(app, settings)`
JOB_MODULES = (
    "jobs.exports",
    "jobs.imports",
    "jobs.stalled",
    "jobs.digests",
    "jobs.snapshots",
    "jobs.expiry",
)


def conninfo(database_url: str) -> str:
    """psycopg takes libpq URLs; DATABASE_URL may name the asyncpg driver."""
    return plain_url(database_url)


def build_app(settings: JobSettings, *, pool_size: int = 4) -> App:
    assert settings.database_url is not None
    connector = PsycopgConnector(
        conninfo=conninfo(settings.database_url), min_size=1, max_size=pool_size
    )
    app = App(connector=connector, periodic_defaults={"max_delay": 600})
    for name in JOB_MODULES:
        importlib.import_module(name).register(app, settings)
    return app
