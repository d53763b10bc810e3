"""`dossier keys generate`: fresh values for every secret setting, as environment lines."""

from __future__ import annotations

from collections.abc import Callable

import click

from api.secrets import random_secret
from audit.digests import new_signing_key_text
from db.crypto import new_key

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
