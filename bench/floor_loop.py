"""The SQL floor: the floor's one statement (and its decrypt step) run through asyncpg, no HTTP.

Run pinned to the server core by `bench.run`; prints one JSON object with a result per
concurrency. Each concurrent worker has its own connection, as pooled server requests would.

    python -m bench.floor_loop --url postgresql://… --seconds 20 --concurrency 1,8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import orjson

from api.settings import Settings
from bench.floor_app import connect, manager_scope, view_answer


def _percentile(values: list[float], fraction: float) -> float:
    index = min(len(values) - 1, max(0, round(fraction * len(values)) - 1))
    return values[index]


async def measure(url: str, concurrency: int, seconds: float, warmup: float) -> dict[str, object]:
    cipher = Settings.from_env().field_cipher
    connections = [await connect(url) for _ in range(concurrency)]
    try:
        scope = await manager_scope(connections[0])
        latencies: list[float] = []

        async def worker(connection: object, until: float, record: bool) -> None:
            while time.perf_counter() < until:
                sent = time.perf_counter()
                await view_answer(connection, scope, cipher)  # type: ignore[arg-type]  # asyncpg.Connection
                if record:
                    latencies.append((time.perf_counter() - sent) * 1000)

        until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(c, until, False) for c in connections))
        started, cpu_started = time.perf_counter(), time.process_time()
        until = started + seconds
        await asyncio.gather(*(worker(c, until, True) for c in connections))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        for connection in connections:
            await connection.close()
    latencies.sort()
    return {
        "generator": "asyncpg loop",
        "concurrency": concurrency,
        "seconds": elapsed,
        "requests": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99),
        "errors": 0,
        "cpu_ms_per_request": cpu * 1000 / max(1, len(latencies)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args(argv)
    results = [
        asyncio.run(measure(args.url, int(c), args.seconds, args.warmup))
        for c in args.concurrency.split(",")
    ]
    sys.stdout.write(orjson.dumps(results).decode() + "\n")


if __name__ == "__main__":
    main()
