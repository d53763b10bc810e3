"""Audit trail figures: chained appends/s, verify events/s, filtered list p95 over N events.

    python bench/audit_bench.py [--events 1000000] [--appends 2000] [--admin-url URL] [--keep]

Creates its own database (`dossier_bench_audit`), seeds N chained events through COPY spread
over the previous five months, then measures on top of them:
- appends/s at concurrency 1 and 8, one READ event per transaction (what every GraphQL read
  request does), next to the same INSERT into an unchained copy of the table: the difference
  is what the chain's head lock costs;
- `verify_chain` events/s over the whole chain;
- `list_events` (first=50) filtered by actor and by resource id: p50/p95 over random picks.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.canonical import GENESIS_HASH, event_hash  # after the path fix-up
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.partitions import ensure_partitions, month_start, next_month
from audit.queries import AuditFilter, list_events
from audit.verify import verify_chain
from db.engine import PoolOptions, create_engine
from db.migrate import upgrade_to_head

DATABASE = "dossier_bench_audit"
ACTORS = 2_000
RESOURCES = 500_000
COPY_BATCH = 50_000
COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "action",
    "resource_type",
    "resource_ids",
    "fields",
    "changes",
    "operation",
    "query_hash",
    "ip",
    "user_agent",
    "request_id",
    "token_id",
    "prev_hash",
    "hash",
)


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


async def create_database(admin_url: str) -> str:
    connection = await asyncpg.connect(plain(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()
    return with_database(admin_url, DATABASE)


def read_record(rng: random.Random) -> AuditRecord:
    return AuditRecord(
        actor=f"user{rng.randrange(ACTORS)}",
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type="customer",
        resource_ids=[str(rng.randrange(RESOURCES)) for _ in range(rng.randint(1, 5))],
        fields=["name", "phone", "level"],
        operation="CustomerList",
        ip="10.1.2.3",
        request_id=f"{rng.getrandbits(64):016x}",
    )


async def seed(url: str, events: int) -> None:
    """COPY `events` chained events spread over the five months before now."""
    rng = random.Random(5)
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    start = end - dt.timedelta(days=150)
    step = (end - start) / max(events, 1)
    connection = await asyncpg.connect(plain(url))
    try:
        month = month_start(start)
        while month <= month_start(end):
            await connection.execute("SELECT audit_ensure_partition($1)", month)
            month = next_month(month)
        prev_hash, started = GENESIS_HASH, time.perf_counter()
        for first in range(1, events + 1, COPY_BATCH):
            batch = []
            for seq in range(first, min(first + COPY_BATCH, events + 1)):
                row = {
                    "seq": seq,
                    "at": start + step * seq,
                    "actor": f"user{rng.randrange(ACTORS)}",
                    "actor_kind": "USER",
                    "action": "READ" if rng.random() < 0.9 else "UPDATE",
                    "resource_type": "customer",
                    "resource_ids": [
                        str(rng.randrange(RESOURCES)) for _ in range(rng.randint(1, 5))
                    ],
                    "fields": ["name", "phone", "level"],
                    "changes": None,
                    "operation": "CustomerList",
                    "query_hash": None,
                    "ip": "10.1.2.3",
                    "user_agent": "bench",
                    "request_id": f"{rng.getrandbits(64):016x}",
                    "token_id": None,
                    "prev_hash": prev_hash,
                }
                row["hash"] = prev_hash = event_hash(row)
                batch.append(tuple(row[column] for column in COLUMNS))
            await connection.copy_records_to_table("audit_events", records=batch, columns=COLUMNS)
            done = min(first + COPY_BATCH - 1, events)
            print(f"  seeded {done:,} ({done / (time.perf_counter() - started):,.0f}/s)", end="\r")
        await connection.execute(
            "UPDATE audit_chain_head SET seq = $1, hash = $2, at = $3 WHERE id = 1",
            events,
            prev_hash,
            start + step * events,
        )
        # what autovacuum would have done by the time anyone queries these months
        await connection.execute("VACUUM ANALYZE audit_events")
        print(f"  seeded {events:,} events in {time.perf_counter() - started:.1f}s" + " " * 20)
    finally:
        await connection.close()


async def appends_per_second(engine: AsyncEngine, concurrency: int, total: int) -> float:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    per_task = total // concurrency

    async def task(number: int) -> None:
        rng = random.Random(number)
        for _ in range(per_task):
            async with sessions() as session, session.begin():
                await append_events(session, [read_record(rng)])

    started = time.perf_counter()
    await asyncio.gather(*(task(number) for number in range(concurrency)))
    return per_task * concurrency / (time.perf_counter() - started)


def _process_appends(url: str, count: int, seed_number: int) -> None:
    async def run() -> None:
        engine = create_engine(url, PoolOptions(size=1, statement_timeout_ms=0))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        rng = random.Random(seed_number)
        try:
            for _ in range(count):
                async with sessions() as session, session.begin():
                    await append_events(session, [read_record(rng)])
        finally:
            await engine.dispose()

    asyncio.run(run())


def appends_per_second_in_processes(url: str, processes: int, total: int) -> float:
    """Like a fleet of server processes: the head lock, not one event loop, is the limit."""
    context = multiprocessing.get_context("spawn")
    per_process = total // processes
    workers = [
        context.Process(target=_process_appends, args=(url, per_process, number))
        for number in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_process * processes / (time.perf_counter() - started)


async def unchained_per_second(url: str, concurrency: int, total: int) -> float:
    """The same one-row transactions without the chain: a sequence, no head lock."""
    setup = await asyncpg.connect(plain(url))
    await setup.execute(
        "CREATE TABLE IF NOT EXISTS bench_unchained (LIKE audit_events INCLUDING DEFAULTS);"
        "CREATE SEQUENCE IF NOT EXISTS bench_unchained_seq"
    )
    await setup.close()
    per_task = total // concurrency

    async def task(number: int) -> None:
        connection = await asyncpg.connect(plain(url))
        rng = random.Random(number)
        try:
            for _ in range(per_task):
                record = read_record(rng)
                async with connection.transaction():
                    await connection.execute(
                        "INSERT INTO bench_unchained (seq, at, actor, actor_kind, action, "
                        "resource_type, resource_ids, fields, operation, ip, request_id, "
                        "prev_hash, hash) VALUES (nextval('bench_unchained_seq'), now(), $1, $2, "
                        "$3, $4, $5, $6, $7, $8, $9, '', '')",
                        record.actor,
                        str(record.actor_kind),
                        str(record.action),
                        record.resource_type,
                        list(record.resource_ids),
                        list(record.fields),
                        record.operation,
                        record.ip,
                        record.request_id,
                    )
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(task(number) for number in range(concurrency)))
    return per_task * concurrency / (time.perf_counter() - started)


async def list_latency(
    engine: AsyncEngine, filters: list[AuditFilter]
) -> tuple[float, float, float]:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    timings = []
    async with sessions() as session:
        for audit_filter in filters:
            started = time.perf_counter()
            await list_events(session, audit_filter, first=50, after_seq=None)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    return statistics.median(timings), p95, timings[-1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to seed")
    parser.add_argument("--appends", type=int, default=2_000, help="appends per concurrency")
    parser.add_argument("--queries", type=int, default=200, help="list queries per filter")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "DOSSIER_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1/postgres"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    url = await create_database(args.admin_url)
    engine = create_engine(url, PoolOptions(size=10, statement_timeout_ms=0))
    try:
        await upgrade_to_head(engine)
        print(f"seeding {args.events:,} events")
        await seed(url, args.events)
        async with engine.begin() as connection:
            await ensure_partitions(connection)

        for concurrency in (1, 8):
            chained = await appends_per_second(engine, concurrency, args.appends)
            unchained = await unchained_per_second(url, concurrency, args.appends)
            print(
                f"appends, concurrency {concurrency}: {chained:,.0f}/s chained "
                f"({unchained:,.0f}/s for the same insert unchained)"
            )

        in_processes = await asyncio.to_thread(
            appends_per_second_in_processes, url, 8, args.appends * 2
        )
        print(f"appends, 8 processes x 1 connection: {in_processes:,.0f}/s chained")

        async with engine.connect() as connection:
            report = await verify_chain(connection)
        print(f"verify: {report.describe()}")

        rng = random.Random(7)
        actors = [AuditFilter(actor=f"user{rng.randrange(ACTORS)}") for _ in range(args.queries)]
        ids = [AuditFilter(resource_id=str(rng.randrange(RESOURCES))) for _ in range(args.queries)]
        for name, filters in (("actor", actors), ("resource id", ids)):
            median, p95, worst = await list_latency(engine, filters)
            print(
                f"list_events first=50 by {name}: p50 {median:.1f} ms, p95 {p95:.1f} ms, "
                f"max {worst:.1f} ms"
            )
    finally:
        await engine.dispose()
        if not args.keep:
            connection = await asyncpg.connect(plain(args.admin_url))
            await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
