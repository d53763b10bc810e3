"""Server CPU per nested read, in process: the app driven over ASGI, no HTTP, no load generator.

`bench.run` measures what a client sees, but on a shared 2-core machine its requests/s move by
a quarter between runs. This measures only what our own code costs per request (the process's
CPU time over N requests at concurrency C, on uvloop as uvicorn runs it, against the real bench
database), which moves by about a tenth: good enough to compare two commits one after the other.

    python -m bench.inprocess --customers 10000 --requests 3000 --concurrency 8 --rounds 3
    python -m bench.inprocess --audit-cost --rounds 4   # read audit on vs off, same process
    python -m bench.inprocess --shape scalars           # every scalar: decryption, masks
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import orjson
import uvloop

from bench.database import prepare_database
from bench.query import shape_body
from bench.run import BENCH_ENV, PASSWORD, USER


async def call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5555),
        "server": ("bench", 80),
    }
    delivered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if delivered.is_set():
            await asyncio.Event().wait()  # the client never disconnects
        delivered.set()
        return {"type": "http.request", "body": body, "more_body": False}

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(
    requests: int,
    concurrency: int,
    rounds: int,
    *,
    audit_cost: bool = False,
    warmup: int | None = None,
    shape: str = "bench",
) -> list[float] | dict[str, list[float]]:
    """CPU milliseconds per request of each round, after one warm-up round (of `warmup`
    requests; a tenth of `requests` by default).

    `audit_cost`: every round runs twice, once as deployed and once with the endpoint's audit
    append a no-op (`bench.variants`' audit_off, swapped in this process between rounds), in
    alternating order; returns both series.
    """
    import api.graphql
    from api.app import create_app  # after the environment is set: settings read it
    from bench.variants import no_audit

    app = create_app()
    async with app.router.lifespan_context(app):
        form = f"username={USER}&password={PASSWORD}".encode()
        status, answer = await call(
            app, "/auth/token", form, {"content-type": "application/x-www-form-urlencoded"}
        )
        assert status == 200, answer
        token = orjson.loads(answer)["access_token"]
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        body = shape_body(shape, "dossier")

        async def worker(count: int) -> None:
            for _ in range(count):
                status, answer = await call(app, "/graphql", body, headers)
                assert status == 200, answer[:300]

        async def one_round(total: int) -> float:
            started = time.process_time()
            await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
            return (time.process_time() - started) * 1000 / (total // concurrency * concurrency)

        warm = max(concurrency, requests // 10) if warmup is None else warmup
        if warm:
            await one_round(warm)  # caches, pools, compiled statements
        if not audit_cost:
            return [await one_round(requests) for _ in range(rounds)]
        appending = api.graphql.append_events
        variants = {"on": appending, "off": no_audit}
        figures: dict[str, list[float]] = {"on": [], "off": []}
        for number in range(rounds):
            for name in ("on", "off") if number % 2 == 0 else ("off", "on"):
                api.graphql.append_events = variants[name]  # type: ignore[assignment]
                await one_round(max(concurrency, requests // 20))  # settle after the swap
                figures[name].append(await one_round(requests))
        api.graphql.append_events = appending  # type: ignore[assignment]
        return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--audit-cost", action="store_true", help="read audit on vs off, alternating rounds"
    )
    parser.add_argument(
        "--shape", choices=("bench", "scalars"), default="bench", help="as bench.run's --shape"
    )
    args = parser.parse_args(argv)
    database = asyncio.run(prepare_database(args.customers, keep=True, log=print))
    os.environ.update(database.server_env(tempfile.mkdtemp(prefix="dossier-inprocess-")))
    os.environ.update(BENCH_ENV)
    if args.audit_cost:
        both = uvloop.run(
            measure(args.requests, args.concurrency, args.rounds, audit_cost=True, shape=args.shape)
        )
        assert isinstance(both, dict)
        for name, series in both.items():
            shown = ", ".join(f"{ms:.3f}" for ms in series)
            print(f"server CPU per request, c={args.concurrency}, audit {name}: {shown} ms")
        on, off = (statistics.median(both[name]) for name in ("on", "off"))
        print(
            f"read audit cost: {on - off:.3f} ms of {on:.3f} ms per request = "
            f"{1 - off / on:.1%} of throughput at equal CPU (target <= 10 %)"
        )
        return
    figures = uvloop.run(measure(args.requests, args.concurrency, args.rounds, shape=args.shape))
    assert isinstance(figures, list)
    shown = ", ".join(f"{ms:.3f}" for ms in figures)
    print(
        f"server CPU per request, c={args.concurrency}, {args.requests} requests per round: "
        f"{shown} ms (best {min(figures):.3f})"
    )


if __name__ == "__main__":
    main()
