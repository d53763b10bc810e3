"""Events out, measured: webhook deliveries per second, and what the outbox adds to a write.

    python -m bench.webhook_bench --customers 2000 --writes 300 --events 600 --workers 1,2

1. Added cost per write: `updateCustomer` (alice, her own customers) through the ASGI app in
   process, sequentially, timed with the outbox as shipped, with `enqueue` replaced by a no-op,
   and with the outbox plus one subscribed webhook (its delivery row is part of the statement).
   The three alternate in rounds, so drift on a shared machine hits all of them alike.
2. Deliveries per second: `--events` committed changes fanned out to 8 endpoints on a local
   receiver (uvicorn on 127.0.0.1, a free port), drained by N in-process delivery workers; the
   time from the first claim to the last recorded outcome, for every delivery (each: claim, the
   masked read as the webhook's role through the schema, URL check, signature, POST, audit).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import api.graphql
from api.app import create_app
from api.settings import Settings
from bench.database import prepare_database
from bench.run import BENCH_ENV, PASSWORD
from events.delivery import DeliveryWorker
from schema.node import to_global_id

UPDATE = """mutation($id: ID!, $address: String) {
  updateCustomer(id: $id, input: {address: $address}, force: true) { id version } }"""
ENDPOINTS = 8
_SERIAL = itertools.count()  # every write changes the record: an unchanged one writes nothing


async def _no_outbox(*_: Any) -> None:
    return None


async def _login(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post("/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["access_token"])


async def _write_latencies(
    http: httpx.AsyncClient, token: str, ids: list[str], writes: int
) -> list[float]:
    found = []
    for n in range(writes):
        started = time.perf_counter()
        response = await http.post(
            "/graphql",
            json={"query": UPDATE,
                  "variables": {"id": ids[n % len(ids)], "address": f"bench {next(_SERIAL)}"}},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        found.append(time.perf_counter() - started)
        body = response.json()
        assert "errors" not in body, body
    return found


def _receiver() -> tuple[Starlette, list[int]]:
    seen = [0]

    async def hook(request: Request) -> Response:
        await request.body()
        seen[0] += 1
        return Response("ok")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])]), seen


async def _create_webhooks(http: httpx.AsyncClient, token: str, url: str, n: int) -> None:
    for _ in range(n):
        response = await http.post(
            "/graphql",
            json={"query": "mutation($i: WebhookInput!) { createWebhook(input: $i) { id } }",
                  "variables": {"i": {"url": url, "events": ["customer.updated"],
                                      "role": "finance"}}},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert "errors" not in response.json(), response.text


async def main_async(args: argparse.Namespace) -> None:
    database = await prepare_database(args.customers, keep=True)
    env = {
        **database.server_env(tempfile.mkdtemp(prefix="dossier-webhook-bench-")),
        **BENCH_ENV,
        "DOSSIER_WEBHOOK_DELIVER": "0",
        "DOSSIER_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    settings = Settings.from_env(env)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.dossier
        async with state.engine.begin() as connection:
            await connection.execute(text("UPDATE webhooks SET active = false"))
            owned = (
                await connection.execute(
                    text(
                        "SELECT c.id FROM customers c JOIN users u ON u.id = c.owner_id "
                        "WHERE u.username = 'alice' AND c.archived_at IS NULL ORDER BY c.id "
                        "LIMIT 50"
                    )
                )
            ).scalars()
            ids = [to_global_id("Customer", pk) for pk in owned]
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            alice, admin = await _login(http, "alice"), await _login(http, "admin")
            await _write_latencies(http, alice, ids, 30)  # warm up
            timings: dict[str, list[float]] = {"no outbox": [], "outbox": [], "outbox+hook": []}
            real = api.graphql.enqueue
            receiver_app, seen = _receiver()
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            server = uvicorn.Server(
                uvicorn.Config(receiver_app, log_level="warning", lifespan="off")
            )
            serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
            per_round = max(args.writes // args.rounds, 1)
            inside: dict[str, list[float]] = {"outbox": [], "outbox+hook": []}
            current = ["outbox"]

            async def timed_enqueue(session: Any, records: Any) -> None:
                started = time.perf_counter()
                await real(session, records)
                inside[current[0]].append(time.perf_counter() - started)

            for _ in range(args.rounds):
                api.graphql.enqueue = _no_outbox  # type: ignore[assignment]
                timings["no outbox"] += await _write_latencies(http, alice, ids, per_round)
                api.graphql.enqueue = timed_enqueue  # type: ignore[assignment]
                current[0] = "outbox"
                timings["outbox"] += await _write_latencies(http, alice, ids, per_round)
                await _create_webhooks(http, admin, url, 1)
                current[0] = "outbox+hook"
                timings["outbox+hook"] += await _write_latencies(http, alice, ids, per_round)
                api.graphql.enqueue = real
                async with state.engine.begin() as connection:
                    await connection.execute(text("UPDATE webhooks SET active = false"))
            print(f"write latency, updateCustomer, {len(timings['outbox'])} writes each:")
            base = statistics.median(timings["no outbox"])
            for name, values in timings.items():
                median = statistics.median(values)
                print(f"  {name:12s} median {median * 1000:7.2f} ms  "
                      f"mean {statistics.fmean(values) * 1000:7.2f} ms  "
                      f"added {1000 * (median - base):+6.2f} ms")  # fmt: skip
            for name, values in inside.items():
                print(f"  time inside enqueue() ({name}): median "
                      f"{statistics.median(values) * 1000:.3f} ms, p95 "
                      f"{sorted(values)[int(len(values) * 0.95)] * 1000:.3f} ms")  # fmt: skip

            for workers in args.workers:
                async with state.engine.begin() as connection:
                    await connection.execute(text("UPDATE webhooks SET active = false"))
                await _create_webhooks(http, admin, url, ENDPOINTS)
                writes = max(args.events // ENDPOINTS, 1)
                await _write_latencies(http, alice, ids, writes)
                total = writes * ENDPOINTS
                seen[0] = 0
                pool = [
                    DeliveryWorker(
                        sessions=state.sessions, settings=settings.webhooks,
                        cipher=settings.field_cipher, schema=state.extras["schema"],
                        store=state.extras["policy_store"], name=f"bench-{n}",
                    )
                    for n in range(workers)
                ]  # fmt: skip

                async def drain(worker: DeliveryWorker) -> None:
                    while await worker.run_once():
                        pass

                started = time.perf_counter()
                await asyncio.gather(*(drain(w) for w in pool))
                elapsed = time.perf_counter() - started
                for worker in pool:
                    await worker.stop()
                print(f"deliveries: {total} to {ENDPOINTS} endpoints, {workers} worker(s): "
                      f"{elapsed:.2f} s, {total / elapsed:.0f} deliveries/s "
                      f"(receiver counted {seen[0]})")  # fmt: skip
            server.should_exit = True
            await serving


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.setdefault("DOSSIER_LOG_LEVEL", "WARNING")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
