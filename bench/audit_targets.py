"""Issue 22's audit targets in one run: appends/s under 16 writers, auditEvents p95 at 5M events.

    python -m bench.audit_targets [--events 5000000] [--queries 200] [--writers 16] [--keep]

1. Writers (`bench/audit_writers.py`): events/s of `--writers` processes, each a read-audit
   batcher with 8 concurrent nested reads, for both strategies of `audit.chain` (head held
   through the fsync, head released early) alternating in the same run, on a fresh chain that is
   verified afterwards; then the same for single-event reads of 10 ids.
2. auditEvents: `--events` chained events are seeded through COPY (`bench/audit_bench.seed`: the
   hashes in Python, 50 000 rows per COPY, spread over five months), the resource index is
   built by the real indexer in batches of 50 000, then `list_events(first=50)` (what the
   resolver runs for a page) is timed for every filter of the compliance officer: actor,
   resource id, action (common and rare), a time range of an hour and of a day, and actor or
   action within a day. `--keep` keeps the seeded database for the next run (reused when it
   holds `--events` events).
3. Read-audit cost: `python -m bench.inprocess --audit-cost` on `--customers` customers (server
   CPU per request with the audit append as deployed and as a no-op, alternating rounds).
Runs under bench/results/.lock, like every bench.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import subprocess
import sys
import time

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from audit.indexer import index_once
from audit.partitions import ensure_partitions
from audit.queries import AuditFilter, list_events
from bench import audit_bench, audit_writers
from db.engine import PoolOptions, create_engine
from db.migrate import upgrade_to_head

TARGET_P95_MS = 50.0
# a name of its own: audit_bench drops and recreates its database, so a kept 5M seed lives apart
audit_bench.DATABASE = "dossier_bench_audit_targets"


async def seeded_database(admin_url: str, events: int, keep: bool) -> str:
    """The bench database holding `events` seeded events, indexed; seeded afresh unless kept."""
    url = audit_bench.with_database(admin_url, audit_bench.DATABASE)
    if keep:
        try:
            connection = await asyncpg.connect(audit_bench.plain(url))
        except asyncpg.InvalidCatalogNameError:
            pass
        else:
            try:
                seq = await connection.fetchval("SELECT seq FROM audit_chain_head WHERE id = 1")
            finally:
                await connection.close()
            if seq == events:
                print(f"reusing {audit_bench.DATABASE} with {events:,} events")
                engine = create_engine(url)
                await upgrade_to_head(engine)  # an index added since it was seeded
                await engine.dispose()
                return url
    url = await audit_bench.create_database(admin_url)
    engine = create_engine(url, PoolOptions(size=2, statement_timeout_ms=0))
    try:
        await upgrade_to_head(engine)
        print(f"seeding {events:,} events")
        await audit_bench.seed(url, events)
        async with engine.begin() as connection:
            await ensure_partitions(connection)
        started = time.perf_counter()
        done = await index_once(engine, limit=50_000)
        print(f"  indexed {done.events:,} events in {time.perf_counter() - started:.1f}s")
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE audit_resource_index"))
    finally:
        await engine.dispose()
    return url


def filters(rng: random.Random, queries: int, span: tuple[dt.datetime, dt.datetime]) -> dict:
    """The compliance officer's filters, `queries` random picks each."""
    start, end = span
    seconds = (end - start).total_seconds()

    def window(length: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
        begin = start + dt.timedelta(seconds=rng.uniform(0, seconds - length.total_seconds()))
        return begin, begin + length

    def actor() -> str:
        return f"user{rng.randrange(audit_bench.ACTORS)}"

    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    picks: dict[str, list[AuditFilter]] = {
        "actor": [AuditFilter(actor=actor()) for _ in range(queries)],
        "resource id": [
            AuditFilter(resource_id=str(rng.randrange(audit_bench.RESOURCES)))
            for _ in range(queries)
        ],
        "resource id+type": [
            AuditFilter(
                resource_id=str(rng.randrange(audit_bench.RESOURCES)), resource_type="customer"
            )
            for _ in range(queries)
        ],
        "action READ": [AuditFilter(action="READ") for _ in range(queries)],
        "action UPDATE": [AuditFilter(action="UPDATE") for _ in range(queries)],
        "action EXPORT (none)": [AuditFilter(action="EXPORT") for _ in range(queries)],
    }
    for name, length in (("an hour", hour), ("a day", day)):
        ranges = [window(length) for _ in range(queries)]
        picks[f"time range of {name}"] = [AuditFilter(from_=a, to=b) for a, b in ranges]
    days = [window(day) for _ in range(queries)]
    picks["actor in a day"] = [AuditFilter(actor=actor(), from_=a, to=b) for a, b in days]
    picks["action UPDATE in a day"] = [AuditFilter(action="UPDATE", from_=a, to=b) for a, b in days]
    picks["from a day ago"] = [AuditFilter(from_=end - day) for _ in range(queries)]
    return picks


async def list_percentiles(engine: AsyncEngine, picks: list[AuditFilter]) -> tuple[float, float]:
    """p50 and p95 milliseconds of one page (first=50) per filter, in one session."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    timings = []
    async with sessions() as session:
        for pick in picks:
            started = time.perf_counter()
            await list_events(session, pick, first=50, after_seq=None)
            timings.append((time.perf_counter() - started) * 1000)
            await session.rollback()  # one transaction per query, as one request each
    timings.sort()
    return statistics.median(timings), timings[max(int(len(timings) * 0.95) - 1, 0)]


async def report_queries(url: str, events: int, queries: int) -> None:
    engine = create_engine(url, PoolOptions(size=2, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            span = (
                await connection.execute(text("SELECT min(at), max(at) FROM audit_events"))
            ).one()
        picks = filters(random.Random(22), queries, (span[0], span[1]))
        await list_percentiles(engine, picks["actor"][:20])  # plans and caches
        for name, chosen in picks.items():
            p50, p95 = await list_percentiles(engine, chosen)
            verdict = "ok" if p95 < TARGET_P95_MS else "ABOVE TARGET"
            print(
                f"auditEvents first=50 by {name} over {events:,} events: "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({verdict})",
                flush=True,
            )
    finally:
        await engine.dispose()


def report_writers(admin_url: str, writers: int, seconds: float, rounds: int) -> None:
    async def fresh() -> str:
        connection = await asyncpg.connect(audit_bench.plain(admin_url))
        try:
            await connection.execute('DROP DATABASE IF EXISTS "dossier_bench_writers" WITH (FORCE)')
            await connection.execute('CREATE DATABASE "dossier_bench_writers"')
        finally:
            await connection.close()
        url = audit_bench.with_database(admin_url, "dossier_bench_writers")
        engine = create_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        return url

    # a nested view's 4 events (550 ids) and a single record's event, 8 reads in flight per
    # writer (its batcher groups them); then one read at a time per writer: the head's worst case
    for shape in ((4, 550, 8), (1, 10, 8), (1, 10, 1)):
        url = asyncio.run(fresh())
        figures = audit_writers.measure(url, writers, seconds, rounds, shape)
        print("\n".join(figures.lines(writers, shape)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per filter")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per writer round")
    parser.add_argument("--rounds", type=int, default=2, help="writer rounds per strategy")
    parser.add_argument(
        "--customers",
        type=int,
        default=10_002,
        help="bench database of the read-audit cost (its own size: a database another "
        "checkout also uses would be migrated to this one's head)",
    )
    parser.add_argument("--skip-audit-cost", action="store_true")
    parser.add_argument("--skip-writers", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the seeded database")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1/postgres")
    args = parser.parse_args()
    if not args.skip_writers:
        report_writers(args.admin_url, args.writers, args.seconds, args.rounds)
    if not args.skip_queries:
        url = asyncio.run(seeded_database(args.admin_url, args.events, args.keep))
        asyncio.run(report_queries(url, args.events, args.queries))
    if not args.skip_audit_cost:
        # a process of its own: the app reads its settings from the environment at import
        subprocess.run(  # noqa: S603  # our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "bench.inprocess",
                "--customers",
                str(args.customers),
                "--audit-cost",
                "--rounds",
                "4",
                "--requests",
                "1500",
            ],
            check=True,
        )


if __name__ == "__main__":
    from bench.run import one_bench_at_a_time

    with one_bench_at_a_time(print):
        main()
