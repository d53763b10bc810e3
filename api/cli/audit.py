"""`dossier audit`: verify the hash chain, sign digests of its head, archive, index, make
partitions ahead."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text

from api.cli.runtime import database_url, resolve_settings, run
from api.digest_keys import load_signing_key
from api.secrets import ConfigurationError
from api.settings import Settings
from audit.archive import ArchiveError, ArchiveResult, archive_before, parse_month
from audit.digests import (
    DigestKeyError,
    DigestReport,
    SignedDigest,
    public_key_from_text,
    public_key_text,
    sign_digest,
    verify_digests,
)
from audit.indexer import IndexRound, index_once
from audit.partitions import ensure_partitions
from audit.retention import RETENTION_SETTING, ExpiredArchive, expire_archives
from audit.verify import VerifyReport, verify_chain
from db.engine import create_engine, create_sessionmaker
from db.models.audit import AuditDigest

VERIFY_KEY = "DOSSIER_AUDIT_VERIFY_KEY"

# archiving streams whole months: the server-wide statement timeout is for requests
_no_timeout = text("SET LOCAL statement_timeout = 0")


async def verify_database(url: str) -> VerifyReport:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            # a long walk over millions of rows must not hit the server's statement timeout
            await connection.exec_driver_sql("SET statement_timeout = 0")
            return await verify_chain(connection)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class AuditCheck:
    """The chain's report, and the digests' when verification keys were given."""

    chain: VerifyReport
    digests: DigestReport | None
    unchecked_digests: int  # digests in the table that no key was given to check

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.digests is None or self.digests.ok)


async def check_database(url: str, keys: Sequence[Ed25519PublicKey]) -> AuditCheck:
    """The chain, then (with keys) every signed digest, on one connection."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SET statement_timeout = 0")
            chain = await verify_chain(connection)
            if keys:
                return AuditCheck(chain, await verify_digests(connection, keys), 0)
            count = await connection.scalar(select(func.count()).select_from(AuditDigest))
            return AuditCheck(chain, None, int(count or 0))
    finally:
        await engine.dispose()


async def sign_database(url: str, key: Ed25519PrivateKey) -> SignedDigest:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await sign_digest(session, key)
    finally:
        await engine.dispose()


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The digest signing key (`api.digest_keys.load_signing_key`), or a CLI error naming it."""
    try:
        return load_signing_key(settings)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error


def verify_keys(options: Sequence[str]) -> list[Ed25519PublicKey]:
    """`--public-key` values, else the comma-separated `DOSSIER_AUDIT_VERIFY_KEY`."""
    given = list(options) or [
        part for part in os.environ.get(VERIFY_KEY, "").split(",") if part.strip()
    ]
    try:
        return [public_key_from_text(value) for value in given]
    except DigestKeyError as error:
        source = "--public-key" if options else VERIFY_KEY
        raise click.ClickException(f"{source}: {error}") from error


async def archive_database(url: str, before: str, directory: Path) -> ArchiveResult:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(_no_timeout)
            return await archive_before(session, parse_month(before), directory)
    finally:
        await engine.dispose()


async def index_database(url: str) -> IndexRound:
    engine = create_engine(url)
    try:
        return await index_once(engine)
    finally:
        await engine.dispose()


@click.group()
def audit() -> None:
    """Inspect, verify, sign and archive the audit trail."""


@audit.command()
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    metavar="BASE64",
    help="Also check the signed digests with this Ed25519 public key (repeat for old keys); "
    f"default ${VERIFY_KEY} (comma-separated).",
)
def verify(public_keys: tuple[str, ...]) -> None:
    """Recompute the hash chain; exit 1 naming the first altered, missing or reordered event.

    With a public key, also check every signed digest: its signature, its link to the digest
    before it, and that the head it names is still in the chain with the same hash.
    """
    settings = resolve_settings()
    keys = verify_keys(public_keys)
    check = run(check_database(database_url(settings), keys))
    click.echo(check.chain.describe(), err=not check.chain.ok)
    if check.digests is not None:
        click.echo(check.digests.describe(), err=not check.digests.ok)
    elif check.unchecked_digests:
        click.echo(
            f"{check.unchecked_digests} signed digests not checked: pass --public-key "
            f"or set {VERIFY_KEY}",
            err=True,
        )
    if not check.ok:
        raise SystemExit(1)


@audit.command()
def digest() -> None:
    """Sign the chain head (seq, hash, time, previous digest) and store the digest.

    Prints the digest as one JSON line: keep a copy outside the database, so that removing
    the newest digests is noticed too. Run it periodically (a timer, cron).
    """
    settings = resolve_settings()
    key = signing_key(settings)
    signed = run(sign_database(database_url(settings), key))
    click.echo(json.dumps(signed.document(), sort_keys=True))


@audit.command("public-key")
def public_key() -> None:
    """Print the public key of the digest signing key, for `verify --public-key`."""
    click.echo(public_key_text(signing_key(resolve_settings())))


@audit.command()
@click.option("--before", required=True, metavar="YYYY-MM", help="Archive months before this.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where archive files go (default: <data dir>/audit-archive).",
)
def archive(before: str, directory: Path | None) -> None:
    """Write old months to a verified JSON Lines file, then detach and drop their partitions."""
    settings = resolve_settings()
    target = directory or settings.data_dir / "audit-archive"
    try:
        result = run(archive_database(database_url(settings), before, target))
    except ArchiveError as error:
        raise click.ClickException(str(error)) from error
    if result.path is None:
        click.echo(f"nothing to archive before {before}")
        return
    click.echo(
        f"archived {result.event_count} events (seq {result.first_seq}..{result.last_seq}) "
        f"to {result.path}\nfinal hash {result.final_hash}\nfile sha256 {result.sha256}\n"
        f"dropped partitions: {', '.join(result.dropped_partitions) or 'none'}"
    )


async def expire_database(url: str, retention_days: int) -> list[ExpiredArchive]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await expire_archives(session, retention_days)
    finally:
        await engine.dispose()


@audit.command()
@click.option(
    "--retention-days",
    type=int,
    default=None,
    help=f"Keep archive files this many days after their cut (default: ${RETENTION_SETTING}).",
)
def expire(retention_days: int | None) -> None:
    """Delete archive files past the retention period; each deletion is an audit event."""
    settings = resolve_settings()
    days = retention_days or int(os.environ.get(RETENTION_SETTING, "0") or 0)
    if days < 1:
        raise click.ClickException(
            f"no retention: pass --retention-days or set {RETENTION_SETTING}"
        )
    expired = run(expire_database(database_url(settings), days))
    for item in expired:
        click.echo(f"deleted {item.path} (up to seq {item.last_seq}, sha256 {item.sha256})")
    click.echo(f"{len(expired)} archive file(s) expired")


@audit.command()
def index() -> None:
    """Bring the resource-id index up to the chain head now (servers do it in the background)."""
    settings = resolve_settings()
    result = run(index_database(database_url(settings)))
    if not result.locked:
        click.echo("another process is indexing; nothing done")
        return
    click.echo(f"indexed {result.events} events; index watermark at seq {result.watermark}")


async def make_partitions(url: str, months: int) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await ensure_partitions(connection, months=months)
    finally:
        await engine.dispose()


@audit.command()
@click.option(
    "--months",
    default=3,
    show_default=True,
    type=click.IntRange(1, 120),
    help="This month and the ones after it, in all.",
)
def partitions(months: int) -> None:
    """Create the audit trail's monthly partitions ahead of time; run it as the owner role
    (the one that runs migrations), e.g. monthly from cron: the application role cannot."""
    settings = resolve_settings()
    names = run(make_partitions(database_url(settings), months))
    click.echo(f"audit partitions present: {', '.join(names) or 'none'}")
    if len(names) < months:
        raise click.ClickException(
            "some partitions could not be created (see the warnings above): "
            "this role may not, or the default partition holds rows of that month"
        )
