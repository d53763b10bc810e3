"""Chained appends/s under concurrent writer processes: the head held through the fsync or not.

    python -m bench.audit_writers [--writers 16] [--seconds 10] [--rounds 2] [--ids 550]

Each writer is an OS process standing for a server process: `--requests` concurrent reads
(`--events` events of `--ids` resource ids in all each, as a nested view writes them) hand their
events to that process's `ReadAuditBatcher` (`audit.batch`, one autocommit connection) for
`--seconds`, back to back. Both strategies of `audit.chain` run in
the same bench, alternating round by round so drift on the shared machine favours neither:
- `held`: the append commits synchronously, so the head stays locked through the WAL fsync
  (the strategy before early release);
- `early`: the append commits with the head released at its commit record and waits for the
  fsync outside the lock (`audit.chain`'s module docstring).
Afterwards the chain is verified (`audit.verify`): every append of every writer in one chain,
gap-free. Also used by `bench/audit_targets.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit import chain
from audit.batch import ReadAuditBatcher
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import verify_chain
from db.engine import PoolOptions, create_engine

STRATEGIES = ("held", "early")
RESOURCES = 500_000
TYPES = ("customer", "contact", "opportunity", "ticket")


def nested_read(rng: random.Random, events: int, ids: int) -> list[AuditRecord]:
    """One request's read events: `events` resource types sharing `ids` neighbouring ids."""
    start = rng.randrange(RESOURCES - ids)
    per_event = max(ids // events, 1)
    request_id = f"{rng.getrandbits(64):016x}"
    return [
        AuditRecord(
            actor=f"user{rng.randrange(2_000)}",
            actor_kind=ActorKind.USER,
            action=AuditAction.READ,
            resource_type=TYPES[number % len(TYPES)],
            resource_ids=[
                str(n) for n in range(start + number * per_event, start + (number + 1) * per_event)
            ],
            fields=["name", "phone", "email", "level"],
            operation="NestedCustomers",
            query_hash="9f" * 32,
            ip="10.1.2.3",
            user_agent="audit_writers",
            request_id=request_id,
        )
        for number in range(events)
    ]


def _writer(
    url: str,
    strategy: str,
    seconds: float,
    shape: tuple[int, int, int],
    seed: int,
    start: Any,
    out: Any,
) -> None:
    """One writer process: `requests` concurrent reads handing their events to a
    `ReadAuditBatcher`, as a server process does; with one, a plain loop of appends."""
    events, ids, requests = shape

    async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
        await chain._append(connection, records, at=None, release_early=strategy == "early")

    async def run() -> int:
        engine = create_engine(url, PoolOptions(size=1, max_overflow=0, statement_timeout_ms=0))
        batcher = ReadAuditBatcher(engine, append)  # type: ignore[arg-type]
        rng = random.Random(seed)
        reads = [nested_read(rng, events, ids) for _ in range(64)]
        written = [0]

        async def request(number: int, deadline: float) -> None:
            while time.perf_counter() < deadline:
                await batcher.append(reads[(number + written[0]) % len(reads)])
                written[0] += 1

        try:
            async with engine.connect() as connection:  # connected before the clock starts
                pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            backend = psutil.Process(pid)  # the pool's one connection: every batch's
            start.wait()
            cpu = time.process_time(), _cpu_seconds(backend)
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(request(number, deadline) for number in range(requests)))
            used = (time.process_time() - cpu[0], _cpu_seconds(backend) - cpu[1])
        finally:
            await engine.dispose()
        return written[0] * events, *used

    out.put(asyncio.run(run()))


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class Round:
    rate: float  # events/s
    client_ms: float  # the writer processes' CPU per 1 000 events
    server_ms: float  # their PostgreSQL backends' CPU per 1 000 events
    load: float  # the machine's 1-minute load average at the end

    def describe(self) -> str:
        return (
            f"{self.rate:,.0f} events/s; CPU per 1 000 events {self.client_ms:.0f} ms in the "
            f"writers + {self.server_ms:.0f} ms in PostgreSQL; load {self.load:.1f}"
        )


def events_per_second(
    url: str, strategy: str, writers: int, seconds: float, shape: tuple[int, int, int]
) -> Round:
    """Events/s of `writers` processes appending for `seconds` with `strategy`, and the CPU
    they and their backends used (the figure the other tenants of the machine move least)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(writers + 1)
    out = context.Queue()
    processes = [
        context.Process(target=_writer, args=(url, strategy, seconds, shape, number, start, out))
        for number in range(writers)
    ]
    for process in processes:
        process.start()
    start.wait()  # spawned and connected: start-up is not measured
    started = time.perf_counter()
    results = [out.get() for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    total = sum(result[0] for result in results)
    client = sum(result[1] for result in results) * 1e6 / max(total, 1)
    server = sum(result[2] for result in results) * 1e6 / max(total, 1)
    return Round(total / elapsed, client, server, os.getloadavg()[0])


@dataclass(frozen=True)
class WriterFigures:
    per_round: dict[str, list[Round]]
    verified: str

    def lines(self, writers: int, shape: tuple[int, int, int]) -> list[str]:
        events, ids, requests = shape
        shape_text = f"{requests} concurrent reads of {events} events / {ids} ids each"
        lines = []
        for strategy, rounds in self.per_round.items():
            shown = ", ".join(f"{r.rate:,.0f}" for r in rounds)
            cpu = statistics.mean(r.client_ms + r.server_ms for r in rounds)
            lines.append(
                f"appends, {writers} writer processes x {shape_text}, head {strategy}: "
                f"{statistics.mean(r.rate for r in rounds):,.0f} events/s (rounds: {shown}); "
                f"{cpu:.0f} CPU ms per 1 000 events (writers + PostgreSQL), i.e. "
                f"{2_000_000 / cpu:,.0f} events/s if they had both cores to themselves"
            )
        held, early = (statistics.mean(r.rate for r in self.per_round[s]) for s in STRATEGIES)
        lines.append(f"early release / held: {early / held:.2f}x; {self.verified}")
        return lines


async def _verified(url: str) -> str:
    engine: AsyncEngine = create_engine(url, PoolOptions(size=1, statement_timeout_ms=0))
    try:
        async with engine.connect() as connection:
            report = await verify_chain(connection)
    finally:
        await engine.dispose()
    if not report.ok:
        raise SystemExit(f"chain broken after the writers: {report.describe()}")
    return f"verify: {report.describe()}"


def measure(
    url: str, writers: int, seconds: float, rounds: int, shape: tuple[int, int, int]
) -> WriterFigures:
    """Both strategies, `rounds` times each, alternating; then verify the whole chain.
    `shape`: events and resource ids per read, concurrent reads per writer process."""
    per_round: dict[str, list[Round]] = {strategy: [] for strategy in STRATEGIES}
    for number in range(rounds):
        order: Sequence[str] = STRATEGIES if number % 2 == 0 else STRATEGIES[::-1]
        for strategy in order:
            measured = events_per_second(url, strategy, writers, seconds, shape)
            per_round[strategy].append(measured)
            print(f"  round {number + 1}, head {strategy}: {measured.describe()}", flush=True)
    return WriterFigures(per_round, asyncio.run(_verified(url)))


def main() -> None:
    from bench.audit_bench import create_database
    from db.migrate import upgrade_to_head

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=4, help="events per read")
    parser.add_argument("--ids", type=int, default=550, help="resource ids per read, in all")
    parser.add_argument(
        "--requests", type=int, default=8, help="concurrent reads per writer (its batcher)"
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1/postgres")
    args = parser.parse_args()

    async def prepare() -> str:
        url = await create_database(args.admin_url)
        engine = create_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        return url

    url = asyncio.run(prepare())
    shape = (args.events, args.ids, args.requests)
    figures = measure(url, args.writers, args.seconds, args.rounds, shape)
    print("\n".join(figures.lines(args.writers, shape)))


if __name__ == "__main__":
    from bench.run import one_bench_at_a_time

    with one_bench_at_a_time(print):
        main()
