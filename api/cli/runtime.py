"""What every CLI command needs: settings, a database URL (embedded if none), an event loop."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from api.secrets import ConfigurationError
from api.settings import Settings

T = TypeVar("T")


def resolve_settings() -> Settings:
    """Settings from the environment; a configuration error becomes a clean CLI error."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def database_url(settings: Settings, *, keep_running: bool = False) -> str:
    """`DATABASE_URL` when set; otherwise start the embedded PostgreSQL and return its URL.

    The embedded server lives in `<data dir>/pg`. By default it stops when the last process
    using it exits (pgserver counts its users), so `dossier seed` beside a running `dossier
    serve` does not pull the server from under it.
    """
    if settings.database_url:
        return settings.database_url
    # pgserver keeps its lock under the runtime dir and warns when XDG_RUNTIME_DIR is unset,
    # as it is in containers and CI; the /tmp fallback it takes is fine for one machine
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
    from db.embedded import start_embedded  # imported late: pgserver is heavy and not always used

    click.echo(f"starting embedded PostgreSQL in {settings.data_dir / 'pg'}", err=True)
    return start_embedded(settings.data_dir / "pg", keep_running=keep_running)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from a synchronous click callback."""
    return asyncio.run(coro)
