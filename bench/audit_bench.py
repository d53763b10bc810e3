"""Audit trail figures: chained appends/s, indexing, verify events/s, filtered list p95.

    python bench/audit_bench.py [--events 1000000] [--appends 2000] [--ids 550] [--keep]

Creates its own database (`dossier_bench_audit`), seeds N chained events (1-5 resource ids
each) through COPY spread over the previous five months, then measures on top of them:
- appends/s at concurrency 1 and 8, one READ event of `--ids` resource ids per transaction
  (550: the ids the benchmark's nested 50-customer view returns), next to the same INSERT into
  an unchained copy of the table without indexes: the difference is what the head lock and
  the indexes cost; and with 8 processes of one connection each (a fleet);
- where the schema has it (audit.indexer), the background resource indexer's events/s,
  (id, event) pairs/s and index bytes per event, once over the seeded history, once over the
  appended 550-id events and once over `--recurring` 550-id reads of `--views` views (ids
  recur within a batch, as under the server's load), then list p95 by one of those hot ids;
- `list_events` (first=50) by actor, by resource id, and by resource id and type: p50/p95
  over random picks — with the appended events not yet indexed (the tail a query must scan)
  and again after the indexer caught up;
- `verify_chain` events/s over the whole chain;
- the CPU one append of a nested read costs (4 events, `--ids` ids in all, as the server's
  nested 50-customer view writes them): Python µs of encoding it outside a database, then,
  appending one batch per transaction on one connection, this process's CPU and the CPU of
  that connection's PostgreSQL backend per append, and the indexer's backend CPU per append
  it indexes. Backend CPU is read from /proc (psutil) for that one backend, so other work on
  the server does not blur it. `--cpu-only` measures just this, on an empty chain.
Runs under bench/results/.lock, like `bench.run`: one bench at a time on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import multiprocessing
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit import chain  # after the path fix-up
from audit.canonical import GENESIS_HASH, CanonicalTemplate, event_hash
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.partitions import ensure_partitions, month_start, next_month
from audit.queries import AuditFilter, list_events
from audit.verify import verify_chain
from bench.run import one_bench_at_a_time
from db.engine import PoolOptions, create_engine
from db.migrate import upgrade_to_head

try:  # the schema before the resource index had none: the bench measures both
    from audit.indexer import index_once
except ImportError:
    index_once = None  # type: ignore[assignment]

DATABASE = "dossier_bench_audit"
ACTORS = 2_000
RESOURCES = 500_000
COPY_BATCH = 50_000
READ_IDS = 550  # --ids: what one nested 50-customer view returns
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


def read_record(rng: random.Random, ids: int = READ_IDS) -> AuditRecord:
    """A read of `ids` records: a page of neighbouring ids, as a list view returns them."""
    start = rng.randrange(RESOURCES - ids)
    return AuditRecord(
        actor=f"user{rng.randrange(ACTORS)}",
        actor_kind=ActorKind.USER,
        action=AuditAction.READ,
        resource_type="customer",
        resource_ids=[str(n) for n in range(start, start + ids)],
        fields=["email", "industry", "kind", "level", "name", "phone", "region", "updatedAt"],
        operation="CustomerView",
        query_hash="9f" * 32,
        ip="10.1.2.3",
        user_agent="audit_bench",
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


async def appends_per_second(engine: AsyncEngine, concurrency: int, total: int, ids: int) -> float:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    per_task = total // concurrency

    async def task(number: int) -> None:
        rng = random.Random(number + 100 * concurrency)
        records = [read_record(rng, ids) for _ in range(per_task)]
        for record in records:
            async with sessions() as session, session.begin():
                await append_events(session, [record])

    started = time.perf_counter()
    await asyncio.gather(*(task(number) for number in range(concurrency)))
    return per_task * concurrency / (time.perf_counter() - started)


def _process_appends(url: str, count: int, seed_number: int, ids: int, start: Any) -> None:
    async def run() -> None:
        engine = create_engine(url, PoolOptions(size=1, statement_timeout_ms=0))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        rng = random.Random(seed_number)
        records = [read_record(rng, ids) for _ in range(count)]
        try:
            async with engine.connect() as connection:  # connected before the clock starts
                await connection.exec_driver_sql("SELECT 1")
            start.wait()
            for record in records:
                async with sessions() as session, session.begin():
                    await append_events(session, [record])
        finally:
            await engine.dispose()

    asyncio.run(run())


def appends_per_second_in_processes(url: str, processes: int, total: int, ids: int) -> float:
    """Like a fleet of server processes: the head lock, not one event loop, is the limit."""
    context = multiprocessing.get_context("spawn")
    per_process = total // processes
    start = context.Barrier(processes + 1)
    workers = [
        context.Process(target=_process_appends, args=(url, per_process, number, ids, start))
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()  # every process started and connected: spawn time is not measured
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return per_process * processes / (time.perf_counter() - started)


async def unchained_per_second(url: str, concurrency: int, total: int, ids: int) -> float:
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
        records = [read_record(rng, ids) for _ in range(per_task)]
        try:
            for record in records:
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


async def report_lists(engine: AsyncEngine, queries: int, label: str) -> None:
    rng = random.Random(7)
    picks = [str(rng.randrange(RESOURCES)) for _ in range(queries)]
    sets = (
        ("actor", [AuditFilter(actor=f"user{rng.randrange(ACTORS)}") for _ in range(queries)]),
        ("resource id", [AuditFilter(resource_id=pick) for pick in picks]),
        (
            "resource id+type",
            [AuditFilter(resource_id=pick, resource_type="customer") for pick in picks],
        ),
    )
    for name, filters in sets:
        median, p95, worst = await list_latency(engine, filters)
        print(
            f"list_events first=50 by {name} ({label}): p50 {median:.1f} ms, "
            f"p95 {p95:.1f} ms, max {worst:.1f} ms"
        )


async def index_bytes(engine: AsyncEngine) -> int:
    """On-disk size of the resource index, every partition with its indexes and TOAST."""
    async with engine.connect() as connection:
        size = await connection.scalar(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                "FROM pg_partition_tree('audit_resource_index')"
            )
        )
    return int(size or 0)


async def report_indexing(engine: AsyncEngine, label: str) -> None:
    """Catch the resource index up (when the schema has one) and print how fast it went.

    Pairs are the (resource id, event) pairs indexed, counted from the events themselves so
    that the figure means the same whatever the index's row layout; bytes are after a VACUUM.
    """
    if index_once is None:
        return
    async with engine.connect() as connection:
        before = await connection.scalar(text("SELECT count(*) FROM audit_resource_index"))
        mark = await connection.scalar(text("SELECT indexed_seq FROM audit_index_state"))
    size_before = await index_bytes(engine)
    started = time.perf_counter()
    done = await index_once(engine)
    seconds = time.perf_counter() - started
    async with engine.begin() as connection:
        after = await connection.scalar(text("SELECT count(*) FROM audit_resource_index"))
        pairs = await connection.scalar(
            text(
                "SELECT coalesce(sum(cardinality(resource_ids)), 0) FROM audit_events "
                "WHERE seq > :low AND seq <= :high"
            ),
            {"low": mark, "high": done.watermark or mark},
        )
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE audit_resource_index"))
    grown = await index_bytes(engine) - size_before
    rows, pairs, events = int(after or 0) - int(before or 0), int(pairs or 0), done.events
    print(
        f"indexer ({label}): {events:,} events, {pairs:,} pairs, {rows:,} rows in "
        f"{seconds:.1f}s = {events / seconds:,.0f} events/s, {pairs / seconds:,.0f} pairs/s; "
        f"{grown / max(events, 1):,.0f} bytes/event, {grown / max(pairs, 1):.1f} bytes/pair"
    )


def view_record(rng: random.Random, start: int, ids: int) -> AuditRecord:
    """A read of one of a few views: the same `ids` records every time that view is read."""
    record = read_record(rng, ids)
    return dataclasses.replace(record, resource_ids=[str(n) for n in range(start, start + ids)])


async def report_recurring(engine: AsyncEngine, events: int, views: int, ids: int) -> None:
    """Index `events` reads of `ids` ids drawn from `views` views, as the server's load is:
    the same customer views read by many requests, so most ids recur within a batch. Then
    list by the ids every view names (hot: in every event of its view) and by the others."""
    if index_once is None or events <= 0:
        return
    rng = random.Random(11)
    starts = [rng.randrange(RESOURCES - ids) for _ in range(views)]
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for first in range(0, events, 100):
        records = [
            view_record(rng, rng.choice(starts), ids) for _ in range(min(100, events - first))
        ]
        async with sessions() as session, session.begin():
            await append_events(session, records)
    label = f"{events:,} events of {ids} ids from {views} views"
    await report_indexing(engine, label)
    timings = []
    async with sessions() as session:
        for _ in range(50):
            pick = AuditFilter(resource_id=str(rng.choice(starts) + rng.randrange(ids)))
            started = time.perf_counter()
            await list_events(session, pick, first=50, after_seq=None)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(
        f"list_events first=50 by a hot resource id (in ~{events // views:,} events): "
        f"p50 {statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95) - 1]:.1f}"
        f" ms, max {timings[-1]:.1f} ms"
    )


# a nested read of 50 customers: one event per resource type, sorted ids as api/graphql writes
# them; the shares of `--ids` each type gets, and how many fields it names
NESTED_READ = (("contact", 3, 6), ("customer", 1, 12), ("note", 4, 5), ("order", 3, 7))


def nested_read(rng: random.Random, ids: int, start: int | None = None) -> list[AuditRecord]:
    """The 4 events of one nested read naming `ids` ids in all (neighbouring, per type)."""
    shares = sum(share for _, share, _ in NESTED_READ)
    token = uuid.UUID(int=rng.getrandbits(128))
    request_id = f"{rng.getrandbits(64):016x}"
    records = []
    for number, (resource, share, fields) in enumerate(NESTED_READ):
        count = ids * share // shares
        first = (start if start is not None else rng.randrange(RESOURCES - ids)) + number * ids
        names = [str(n) for n in range(first, first + count)]
        records.append(
            AuditRecord(
                actor=f"user{rng.randrange(ACTORS)}",
                actor_kind=ActorKind.USER,
                action=AuditAction.READ,
                resource_type=resource,
                resource_ids=sorted(names, key=lambda i: (len(i), i)),
                fields=sorted(f"field{n}" for n in range(fields)),
                operation="NestedCustomers",
                query_hash="9f" * 32,
                ip="10.1.2.3",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) audit_bench",
                request_id=request_id,
                token_id=token,
            )
        )
    return records


def python_append_us(ids: int, rounds: int = 20_000) -> dict[str, float]:
    """Median µs per append of each step `chain._append` runs in Python before it executes
    (the hashes are made by its statement, in the database)."""
    records = nested_read(random.Random(3), ids)
    steps: dict[str, list[float]] = {"prepare": [], "template": [], "bound": []}
    for round_number in range(rounds + 2_000):
        started = time.perf_counter()
        rows = [chain.prepare_row(record) for record in records]
        prepared = time.perf_counter()
        templates = [CanonicalTemplate(row) for row in rows]
        templated = time.perf_counter()
        chain._bound(rows, templates)
        bound = time.perf_counter()
        if round_number >= 2_000:  # warmed up
            steps["prepare"].append(prepared - started)
            steps["template"].append(templated - prepared)
            steps["bound"].append(bound - templated)
    medians = {step: statistics.median(times) * 1e6 for step, times in steps.items()}
    medians["total"] = sum(medians.values())
    return medians


_EVENTS_BYTES = text(
    "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('audit_events')"
)


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def appends_cpu(
    url: str, appends: int, ids: int, views: int, group: int
) -> tuple[float, float, float, float]:
    """Append `appends` nested reads, `group` to a transaction as `audit.batch` does, on one
    connection, then index them; returns this process's CPU per read, its backend's CPU per
    read while appending and while indexing (seconds), and audit_events bytes per read."""
    engine = create_engine(url, PoolOptions(size=1, max_overflow=0, statement_timeout_ms=0))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(13 + group)
    starts = [rng.randrange(RESOURCES - 4 * ids) for _ in range(views)]
    reads = [nested_read(rng, ids, rng.choice(starts)) for _ in range(appends + 200)]
    batches = [
        [record for read in reads[first : first + group] for record in read]
        for first in range(0, len(reads), group)
    ]
    warm_up = 200 // group
    try:
        async with engine.connect() as connection:
            backend = psutil.Process(
                await connection.scalar(text("SELECT pg_backend_pid()"))  # type: ignore[arg-type]
            )
            size = int(await connection.scalar(_EVENTS_BYTES) or 0)
        for batch in batches[:warm_up]:  # plans, partitions, caches
            async with sessions() as session, session.begin():
                await append_events(session, batch)
        if index_once is not None:
            await index_once(engine)
        python, database = time.process_time(), _cpu_seconds(backend)
        for batch in batches[warm_up:]:
            async with sessions() as session, session.begin():
                await append_events(session, batch)
        python = time.process_time() - python
        database = _cpu_seconds(backend) - database
        indexing = _cpu_seconds(backend)
        if index_once is not None:
            await index_once(engine)
        indexing = _cpu_seconds(backend) - indexing
        async with engine.connect() as connection:
            grown = int(await connection.scalar(_EVENTS_BYTES) or 0)
        count = len(reads) - warm_up * group
        return python / count, database / count, indexing / count, (grown - size) / len(reads)
    finally:
        await engine.dispose()


async def report_append_cpu(url: str, appends: int, ids: int, views: int) -> None:
    """Python and PostgreSQL CPU per nested read's append, and the indexer's per read."""
    steps = python_append_us(ids)
    print(
        f"python per append of a {len(NESTED_READ)}-event, {ids}-id read: "
        f"{steps['total']:.1f} µs (prepare_row {steps['prepare']:.1f}, templates "
        f"{steps['template']:.1f}, parameters {steps['bound']:.1f})"
    )
    for group in (1, 8):
        python, database, indexing, size = await appends_cpu(url, appends, ids, views, group)
        print(
            f"CPU per read, {group} read(s) per transaction: python {python * 1e6:.0f} µs, "
            f"PostgreSQL backend {database * 1e3:.3f} ms appending + {indexing * 1e3:.3f} ms "
            f"indexing; audit_events {size:,.0f} bytes per read"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to seed")
    parser.add_argument("--appends", type=int, default=2_000, help="appends per concurrency")
    parser.add_argument("--ids", type=int, default=READ_IDS, help="resource ids per append")
    parser.add_argument("--queries", type=int, default=200, help="list queries per filter")
    parser.add_argument(
        "--recurring", type=int, default=5_000, help="events of recurring views to index"
    )
    parser.add_argument("--views", type=int, default=20, help="distinct views they read")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "DOSSIER_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1/postgres"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--cpu-only", action="store_true", help="only the CPU per append, on an empty chain"
    )
    args = parser.parse_args()

    url = await create_database(args.admin_url)
    engine = create_engine(url, PoolOptions(size=10, statement_timeout_ms=0))
    try:
        if args.cpu_only:
            await upgrade_to_head(engine)
            await report_append_cpu(url, args.appends, args.ids, args.views)
            return
        await upgrade_to_head(engine)
        print(f"seeding {args.events:,} events")
        await seed(url, args.events)
        async with engine.begin() as connection:
            await ensure_partitions(connection)
        await report_indexing(engine, "seeded history, 1-5 ids per event")
        await report_lists(engine, args.queries, "GIN index" if index_once is None else "indexed")

        for concurrency in (1, 8):
            chained = await appends_per_second(engine, concurrency, args.appends, args.ids)
            unchained = await unchained_per_second(url, concurrency, args.appends, args.ids)
            print(
                f"appends of {args.ids} ids, concurrency {concurrency}: {chained:,.0f}/s chained "
                f"({unchained:,.0f}/s for the same insert unchained, no index)"
            )
        in_processes = await asyncio.to_thread(
            appends_per_second_in_processes, url, 8, args.appends, args.ids
        )
        print(f"appends of {args.ids} ids, 8 processes x 1 connection: {in_processes:,.0f}/s")

        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE audit_events"))
        tail = "GIN index" if index_once is None else f"{args.appends * 3:,} events unindexed"
        await report_lists(engine, args.queries, tail)
        if index_once is not None:
            await report_indexing(engine, f"appended events, {args.ids} ids per event")
            await report_lists(engine, args.queries, "indexed again")
            await report_recurring(engine, args.recurring, args.views, args.ids)

        async with engine.connect() as connection:
            report = await verify_chain(connection)
        print(f"verify: {report.describe()}")
        await report_append_cpu(url, args.appends, args.ids, args.views)
    finally:
        await engine.dispose()
        if not args.keep:
            connection = await asyncpg.connect(plain(args.admin_url))
            await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            await connection.close()


if __name__ == "__main__":
    # bench.run's lock: figures taken while another bench runs are worthless
    with one_bench_at_a_time(print):
        asyncio.run(main())
