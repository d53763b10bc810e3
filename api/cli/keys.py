"""`dossier keys`: fresh values for every secret setting (`generate`), a new field key
(`new`), and rotation of data keys and stored values to the active field key (`rotate`)."""

from __future__ import annotations

from collections.abc import Callable

import click

from api.cli.runtime import database_url, resolve_settings, run
from api.secrets import random_secret
from api.settings import Settings
from audit.digests import new_signing_key_text
from db.crypto import new_key
from db.engine import create_engine
from db.rotation import RotationReport, rotate_field_keys

# every secret setting and how a fresh value is made; docs/operations.md says what each keys
SECRET_SETTINGS: dict[str, Callable[[], str]] = {
    "DOSSIER_FIELD_KEYS": lambda: f"k1:{new_key()}",
    "DOSSIER_BLIND_INDEX_KEY": new_key,
    "DOSSIER_JWT_SECRET": random_secret,
    "DOSSIER_AUDIT_SIGNING_KEY": new_signing_key_text,
    "DOSSIER_METRICS_TOKEN": random_secret,
}


@click.group()
def keys() -> None:
    """Make secrets for the settings."""


@keys.command()
def generate() -> None:
    """Print a fresh value for every secret setting, one `NAME=value` line each.

    Keep them in your secret store. Generate them once: a new DOSSIER_FIELD_KEYS or
    DOSSIER_BLIND_INDEX_KEY for a database that holds data makes its encrypted fields
    unreadable (rotate field keys by adding a key to the ring instead), and a new
    DOSSIER_JWT_SECRET logs everyone out.
    """
    click.echo("# fresh secrets for Dossier; store them, never commit them")
    for name, make in SECRET_SETTINGS.items():
        click.echo(f"{name}={make()}")


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
    """Re-wrap every data key (and re-encrypt values sealed directly under a field key) under
    the active field key (the first in the ring unless DOSSIER_FIELD_KEY_ACTIVE says otherwise);
    also seals e-mails and addresses left in clear columns. Servers keep running meanwhile."""
    settings = resolve_settings()
    report = run(_rotate(database_url(settings), settings))
    for column, count in report.rewritten.items():
        click.echo(f"{column}: {count} rewritten")
    click.echo(f"{report.total} values now under key {settings.field_cipher.active_key_id!r}")
