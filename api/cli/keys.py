"""`dossier keys`: field encryption keys (DOSSIER_FIELD_KEYS)."""

from __future__ import annotations

import click

from api.cli.runtime import database_url, resolve_settings, run
from api.settings import Settings
from db.crypto import new_key
from db.engine import create_engine
from db.rotation import RotationReport, rotate_field_keys


@click.group()
def keys() -> None:
    """Field encryption keys."""


@keys.command()
def new() -> None:
    """Print a fresh random key for DOSSIER_FIELD_KEYS (as id:key, choose the id)."""
    click.echo(new_key())


async def _rotate(url: str, settings: Settings) -> RotationReport:
    engine = create_engine(url)
    try:
        return await rotate_field_keys(engine, settings.field_cipher)
    finally:
        await engine.dispose()


@keys.command()
def rotate() -> None:
    """Re-encrypt every stored value under the active field key (the first in the ring is
    active unless DOSSIER_FIELD_KEY_ACTIVE says otherwise); servers keep running meanwhile."""
    settings = resolve_settings()
    report = run(_rotate(database_url(settings), settings))
    for column, count in report.rewritten.items():
        click.echo(f"{column}: {count} re-encrypted")
    click.echo(f"{report.total} values now under key {settings.field_cipher.active_key_id!r}")
