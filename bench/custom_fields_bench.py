"""The nested view with two custom fields in the selection against the one without, in process.

Issue 19 asks that selecting `customFields` (two definitions: one readable everywhere, one
behind a row-dependent rule, as bob's phone is) keep the nested view within 10 % of the view
without it. Both queries run as bob against the same database and definitions, in alternating
rounds, and the server CPU milliseconds per request (as `bench.inprocess` counts them) and the
executor that answered are printed for each.

    python -m bench.custom_fields_bench --customers 10007 --requests 2000 --rounds 3

The database is `dossier_bench_<customers>`; pick a count no other bench uses, since the
definitions, the rule and the values are added to it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
import uvloop

from bench.database import prepare_database
from bench.inprocess import call
from bench.query import dossier_query, request_body
from bench.run import BENCH_ENV, PASSWORD, USER

DEFINITIONS = (
    ("contractTier", "CHOICE", ["gold", "silver", "bronze"]),
    ("seats", "NUMBER", []),
)
# bob reads contractTier only on his own department's customers: a CASE per row
RULE = ("p", "sales_manager", "*", "customer.cf.contractTier", "READ", "DEPARTMENT", "allow")


async def add_custom_fields(url: str) -> None:
    """The two definitions, bob's rule on one of them, and values on every customer."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for key, kind, options in DEFINITIONS:
            await connection.execute(
                "INSERT INTO custom_field_definitions (resource, key, type, options) "
                "VALUES ('customer', $1, $2, $3) ON CONFLICT DO NOTHING",
                key, kind, options,
            )  # fmt: skip
        await connection.execute(
            "INSERT INTO policy_rules (ptype, v0, v1, v2, v3, v4, v5) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            *RULE,
        )
        await connection.execute(
            "UPDATE customers SET custom_fields = jsonb_build_object("
            "'contractTier', (ARRAY['gold','silver','bronze'])[1 + id % 3], 'seats', id % 500)"
        )
    finally:
        await connection.close()


def custom_query() -> str:
    return dossier_query().replace(" updatedAt", " updatedAt customFields", 1)


async def measure(requests: int, concurrency: int, rounds: int) -> dict[str, list[float]]:
    from api.app import create_app  # after the environment is set: settings read it

    app = create_app()
    figures: dict[str, list[float]] = {"without": [], "with": []}
    async with app.router.lifespan_context(app):
        form = f"username={USER}&password={PASSWORD}".encode()
        status, answer = await call(
            app, "/auth/token", form, {"content-type": "application/x-www-form-urlencoded"}
        )
        assert status == 200, answer
        token = orjson.loads(answer)["access_token"]
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        bodies = {"without": request_body(dossier_query()), "with": request_body(custom_query())}
        _, sample = await call(app, "/graphql", bodies["with"], headers)
        parsed: Any = orjson.loads(sample)
        nodes = parsed["data"]["customers"]["nodes"]
        shown = sum("contractTier" in n["customFields"] for n in nodes)
        print(f"customFields with contractTier on {shown} of {len(nodes)} customers; errors: "
              f"{sorted(e['extensions']['field'] for e in parsed.get('errors', []))}")  # fmt: skip

        async def one_round(body: bytes, total: int) -> float:
            async def worker(count: int) -> None:
                for _ in range(count):
                    status, answer = await call(app, "/graphql", body, headers)
                    assert status == 200, answer[:300]

            started = time.process_time()
            await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
            return (time.process_time() - started) * 1000 / (total // concurrency * concurrency)

        for body in bodies.values():  # caches, pools, compiled statements
            await one_round(body, max(concurrency, requests // 10))
        for _ in range(rounds):
            for name, body in bodies.items():
                figures[name].append(await one_round(body, requests))
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_007)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    database = asyncio.run(prepare_database(args.customers, keep=True, log=print))
    asyncio.run(add_custom_fields(database.url))
    os.environ.update(database.server_env(tempfile.mkdtemp(prefix="dossier-cf-bench-")))
    os.environ.update(BENCH_ENV)
    figures = uvloop.run(measure(args.requests, args.concurrency, args.rounds))
    for name, values in figures.items():
        shown = ", ".join(f"{ms:.3f}" for ms in values)
        print(f"{name:>7} customFields: {shown} ms per request (best {min(values):.3f})")
    ratio = min(figures["with"]) / min(figures["without"])
    print(f"with / without (best rounds): {ratio:.3f}")


if __name__ == "__main__":
    main()
