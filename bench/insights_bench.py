"""Insight latency: p50/p95 of each insight query over HTTP, per demo user, on N customers.

    python bench/insights_bench.py [--customers 100000] [--runs 30] [--keep]

Creates its own database (`dossier_bench_insights_<N>`), migrates it and loads the demo data set
with N customers (`api.seed.demo.seed_demo`); `--keep` reuses it when it is already seeded. The
server runs in-process (Starlette app over httpx's ASGI transport), so the figures are the whole
request: authentication, policy decisions, SQL, audit write and commit. Each query is run once to
warm the caches, then `--runs` times per user, after one refresh of the snapshots (its duration
is printed: what the server's schedule spends in the background). The users cover a sales rep
(own rows), a sales manager (the Sales subtree: nearly every customer), a service agent and
finance (all rows).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # after the path fix-up
from api.settings import Settings
from db.crypto import new_key
from db.engine import create_engine
from db.migrate import upgrade_to_head

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
USERS = ("alice", "bob", "carol", "dave")
PASSWORD = "dossier-demo"  # noqa: S105  # the published demo password

QUERIES = {
    "salesFunnel": """{ salesFunnel { totalCount totalAmount
        stages { stage count amount conversionRate medianDaysInStage } } }""",
    "serviceBoard": """{ serviceBoard { totalCount byStatus { status count }
        medianHoursToResolve p90HoursToResolve satisfactionAverage
        backlog { open inProgress assignee { username } } pastSla
        pastSlaByPriority { priority count } } }""",
    "customerSegments": """{ customerSegments { totalCount segments { segment count }
        levels { level count } regions { name count } industries { name count } } }""",
    "attention": """{ attention(first: 50) { totalCount withheldReasons
        pageInfo { hasNextPage endCursor }
        nodes { reasons daysSilent followUpDueOn openUrgentTickets customer { name level } } } }""",
    "leaderboard": """{ leaderboard(period: LAST_90_DAYS) { entries { owner { username }
        newCustomers wonCount wonAmount interactionsLogged } } }""",
}


async def prepare(customers: int, keep: bool) -> str:
    name = f"dossier_bench_insights_{customers}"
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and keep:
            probe = await asyncpg.connect(url)
            try:
                seeded = await probe.fetchval("SELECT count(*) FROM customers") == customers
            finally:
                await probe.close()
            if seeded:
                print(f"reusing {name}")
                engine = create_engine(url)
                await upgrade_to_head(engine)  # a migration added since the seed applies too
                await engine.dispose()
                return url
        if exists:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    from api.seed.demo import seed_demo  # the password hasher is only needed to seed

    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        started = time.perf_counter()
        summary = await seed_demo(engine, settings_for(url).field_cipher, customers=customers)
        seconds = time.perf_counter() - started
        print(f"seeded {name}: {summary.total_rows:,} rows in {seconds:.0f} s")
    finally:
        await engine.dispose()
    return url


def settings_for(url: str) -> Settings:
    """Throwaway keys: the bench reads no encrypted field."""
    return Settings.from_env(
        {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
            "DOSSIER_DATA_DIR": tempfile.gettempdir(),
            "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
            "DOSSIER_BLIND_INDEX_KEY": new_key(),
            "DOSSIER_JWT_SECRET": new_key(),
            "DOSSIER_LOG_LEVEL": "WARNING",
            # the bench refreshes once before measuring; a background round would compete
            "DOSSIER_INSIGHT_REFRESH_SECONDS": "0",
        }
    )


async def refresh(url: str) -> float:
    """Refresh the insight snapshots as the server's schedule would; seconds taken."""
    from insights.snapshots import SnapshotRefresher

    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        started = time.perf_counter()
        await SnapshotRefresher(engine, 0).refresh_once()
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def measure(url: str, runs: int) -> dict[tuple[str, str], list[float]]:
    app = create_app(settings_for(url))
    timings: dict[tuple[str, str], list[float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=60
        ) as http:
            for user in USERS:
                login = await http.post(
                    "/auth/token", data={"username": user, "password": PASSWORD}
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                for name, query in QUERIES.items():
                    samples: list[float] = []
                    for run in range(runs + 1):
                        started = time.perf_counter()
                        response = await http.post(
                            "/graphql", json={"query": query}, headers=headers
                        )
                        elapsed = (time.perf_counter() - started) * 1000
                        body = response.json()
                        if response.status_code != 200 or body.get("data") is None:
                            raise RuntimeError(f"{user} {name}: {response.text[:500]}")
                        if run:  # the first run warms parser, plans and caches
                            samples.append(elapsed)
                    timings[(user, name)] = samples
    return timings


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def report(timings: dict[tuple[str, str], list[float]], customers: int) -> None:
    print(f"\ninsight latency over HTTP in-process, {customers:,} customers (ms)")
    print(f"{'query':<18}" + "".join(f"{u:>16}" for u in USERS))
    for name in QUERIES:
        cells = []
        for user in USERS:
            samples = timings[(user, name)]
            cells.append(f"{statistics.median(samples):6.0f} / {p95(samples):5.0f}")
        print(f"{name:<18}" + "".join(f"{c:>16}" for c in cells))
    print("(each cell: p50 / p95)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse a seeded database")
    args = parser.parse_args()
    url = await prepare(args.customers, args.keep)
    print(f"snapshot refresh: {await refresh(url):.1f} s")
    report(await measure(url, args.runs), args.customers)


if __name__ == "__main__":
    asyncio.run(main())
