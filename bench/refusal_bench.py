"""How long the server takes to refuse a maximal abusive request, next to a normal one.

    python bench/refusal_bench.py [--rounds 200] [--admin-url URL]

Creates its own database (dossier_bench_refusal), seeds the demo organisation with 60
customers, starts the app in-process (httpx over ASGI, the full middleware stack, JWT
authentication with its one query) and times, per request kind, the median and p95 of
`rounds` requests as alice. Each abusive request is the largest of its kind the limits let
through the door: a body just under the body limit, a query just under the token limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # after the path fix-up
from api.hardening.settings import HardeningSettings
from api.seed.demo import seed_demo
from api.settings import Settings
from db.crypto import new_key
from db.engine import create_engine
from db.migrate import upgrade_to_head

DATABASE = "dossier_bench_refusal"
LIMITS = HardeningSettings()


def abusive_requests() -> dict[str, str]:
    heavy = (
        "customers(first: 500) { nodes { contacts(first: 500) { nodes { customer { "
        "tickets(first: 500) { nodes { title } } } } } } }"
    )
    deep = "name"
    for _ in range(LIMITS.max_depth * 3):
        deep = f"parent {{ {deep} }}"
    bomb = " ".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    return {
        "cost bomb (3 nested pages of 500, ×30 aliases)": "{ "
        + " ".join(f"a{i}: {heavy}" for i in range(LIMITS.max_aliases))
        + " }",
        "depth (30 levels)": f"{{ me {{ user {{ department {{ {deep} }} }} }} }}",
        "fragment bomb (2^40 selections)": "{ me { user { ...F0 } } } "
        + bomb
        + " fragment F40 on User { username }",
        "field duplication (1990 copies)": "{ me { user { "
        + " ".join(["username"] * (LIMITS.max_tokens - 10))
        + " } } }",
        "aliases (1000)": "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }",
        "token flood (body-sized)": "{ " + "__typename " * 25_000 + "}",
        "first: 100000": "{ customers(first: 100000) { nodes { name } } }",
    }


async def prepare(admin_url: str) -> Settings:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + DATABASE
    settings = Settings.from_env(
        {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": url,
            "DOSSIER_DATA_DIR": tempfile.mkdtemp(prefix="dossier-refusal-"),
            "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
            "DOSSIER_BLIND_INDEX_KEY": new_key(),
            "DOSSIER_JWT_SECRET": new_key(),
            "DOSSIER_RATE_USER_BURST": "1000000",
            "DOSSIER_RATE_USER_PER_SECOND": "1000000",
        }
    )
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await seed_demo(engine, settings.field_cipher, customers=60)
    await engine.dispose()
    return settings


async def timed(rounds: int, send: Callable[[], object]) -> tuple[float, float, int]:
    samples = []
    status = 0
    for _ in range(rounds):
        start = time.perf_counter()
        response = await send()  # type: ignore[misc]
        samples.append((time.perf_counter() - start) * 1000)
        status = response.status_code
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], status


async def main(rounds: int, admin_url: str) -> None:
    settings = await prepare(admin_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            login = await http.post(
                "/auth/token", data={"username": "alice", "password": "dossier-demo"}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

            def post(query: str) -> Callable[[], object]:
                return lambda: http.post("/graphql", json={"query": query}, headers=headers)

            print(f"{'request':52} {'status':>6} {'p50 ms':>8} {'p95 ms':>8}  refused as")
            cases = {
                "normal: 50 customers with contacts": post(
                    "{ customers(first: 50) { nodes { name phone contacts { nodes { name } } } } }"
                ),
                "normal: me": post("{ me { user { username } } }"),
                **{name: post(query) for name, query in abusive_requests().items()},
                f"oversized body ({LIMITS.max_body_bytes + 1} bytes)": lambda: http.post(
                    "/graphql",
                    content=b"{" + b" " * LIMITS.max_body_bytes + b"}",
                    headers={**headers, "Content-Type": "application/json"},
                ),
            }
            for name, send in cases.items():
                await timed(3, send)  # warm the caches a real attacker would also warm
                p50, p95, status = await timed(rounds, send)
                response = await send()  # type: ignore[operator]
                body = response.json() if status != 413 else {"errors": [{}]}
                reason = ""
                if body.get("errors"):
                    extensions = body["errors"][0].get("extensions", {})
                    reason = f"{extensions.get('code', 'PAYLOAD_TOO_LARGE')} "
                    reason += str(extensions.get("limit", "") or extensions.get("argument", ""))
                print(f"{name:52} {status:>6} {p50:8.2f} {p95:8.2f}  {reason}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "DOSSIER_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.admin_url))
