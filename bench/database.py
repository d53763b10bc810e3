"""The bench database: one per customer count, created, migrated and seeded once.

The keys the data was encrypted with are kept in the database's own COMMENT, together with the
customer count, so a later `--keep-db` run decrypts the same data with the same keys and knows
whether the seed it finds is the one it asked for. They are throwaway keys for generated data.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from api.settings import Settings
from db.crypto import new_key
from db.engine import create_engine
from db.migrate import upgrade_to_head

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_admin_url: str | None = None


async def admin_url(log: Callable[[str], None] = print) -> str:
    """`DOSSIER_BENCH_ADMIN_URL` (default: the local server on 5432) when it answers, otherwise
    the embedded PostgreSQL of the `pgserver` wheel, started in the temp directory and left
    running for the next run (like the test suite's fallback)."""
    global _admin_url
    if _admin_url is None:
        url = os.environ.get("DOSSIER_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL)
        try:
            connection = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            from db.embedded import start_embedded

            data_dir = Path(tempfile.gettempdir()) / "dossier-bench-pg"
            log(f"no PostgreSQL at {url}: using the embedded one in {data_dir}")
            url = await asyncio.to_thread(start_embedded, data_dir, database="postgres")
        else:
            await connection.close()
        _admin_url = url
    return _admin_url


def with_database(url: str, database: str) -> str:
    """`url` naming another database (its query, e.g. the embedded server's socket, kept)."""
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + database
    return f"{base}?{query}" if query else base


@dataclass(frozen=True)
class BenchDatabase:
    """A seeded database and the environment a server needs to read it."""

    name: str
    url: str  # postgresql://…, what asyncpg, the servers and PostGraphile take
    customers: int
    field_keys: str
    blind_index_key: str
    jwt_secret: str
    reused: bool

    def server_env(self, data_dir: str) -> dict[str, str]:
        """`DOSSIER_*` variables for a server in test mode (the SQL-count header is on)."""
        return {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": self.url,
            "DOSSIER_DATA_DIR": data_dir,
            "DOSSIER_FIELD_KEYS": self.field_keys,
            "DOSSIER_BLIND_INDEX_KEY": self.blind_index_key,
            "DOSSIER_JWT_SECRET": self.jwt_secret,
            "DOSSIER_LOG_LEVEL": "WARNING",
        }

    def settings(self, data_dir: str) -> Settings:
        return Settings.from_env(self.server_env(data_dir))


async def _settle(url: str) -> None:
    """VACUUM a freshly seeded database, so that no run pays for the load.

    Rows just COPYed carry no hint bits and no visibility map: the first reads set them (writing
    every page they touch) while autovacuum works through the same tables. Whichever server ran
    first after a seed paid for it (seen: ours at 424 req/s in round 1, 596 in round 2).
    """
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM (FREEZE, ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def checkpoint(url: str) -> None:
    """Flush every dirty page now, so the next measured run starts from the same state.

    Our server writes (read audit: ~10 KB of WAL per request), the peers and floors do not. A
    time-based checkpoint that began inside one of our runs cost it up to a third of its
    throughput (seen: 613 → 423 req/s between two rounds); after a CHECKPOINT the next one is
    5 minutes away, longer than any run, and every run pays the same full-page writes.
    """

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CHECKPOINT")
        finally:
            await connection.close()

    asyncio.run(run())


async def _comment_of(admin: asyncpg.Connection, name: str) -> dict[str, object] | None:
    row = await admin.fetchrow(
        "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database"
        " WHERE datname = $1",
        name,
    )
    if row is None:
        return None
    try:
        found = json.loads(row["comment"] or "")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


async def prepare_database(
    customers: int, *, keep: bool, log: Callable[[str], None] = print
) -> BenchDatabase:
    """A database seeded with `customers`; reused only with `keep` and a matching seed."""
    name = f"dossier_bench_{customers}"
    server = await admin_url(log)
    url = with_database(server, name)
    admin = await asyncpg.connect(server)
    try:
        found = await _comment_of(admin, name)
        if keep and found and found.get("customers") == customers and found.get("seeded"):
            log(f"reusing database {name} (seeded with {customers} customers)")
            engine = create_engine(url)
            try:
                await upgrade_to_head(engine)  # a migration added since the seed applies too
            finally:
                await engine.dispose()
            return BenchDatabase(
                name=name,
                url=url,
                customers=customers,
                field_keys=str(found["field_keys"]),
                blind_index_key=str(found["blind_index_key"]),
                jwt_secret=str(found["jwt_secret"]),
                reused=True,
            )
        if found is not None:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    database = BenchDatabase(
        name=name,
        url=url,
        customers=customers,
        field_keys=f"k1:{new_key()}",
        blind_index_key=new_key(),
        jwt_secret=new_key(),
        reused=False,
    )
    settings = database.settings(tempfile.gettempdir())
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        # imported late: the seed pulls in the password hasher, not needed on reuse
        from api.seed.demo import seed_demo

        started = time.perf_counter()
        summary = await seed_demo(engine, settings.field_cipher, customers=customers, seed=42)
        log(f"seeded {name}: {summary.total_rows:,} rows in {time.perf_counter() - started:.1f} s")
    finally:
        await engine.dispose()
    await _settle(database.url)

    comment = json.dumps(
        {
            "customers": customers,
            "seeded": True,
            "field_keys": database.field_keys,
            "blind_index_key": database.blind_index_key,
            "jwt_secret": database.jwt_secret,
        }
    )
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    finally:
        await admin.close()
    return database
