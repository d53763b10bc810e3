"""Round trip: export, import into an empty database, export again — the same rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import insert

from api.app import create_app
from api.seed.demo import seed_demo
from db.engine import create_engine
from db.migrate import upgrade_to_head
from db.models import PolicyRule
from tests.bulk.conftest import (
    EXPORT_CUSTOMERS,
    GraphQLClient,
    csv_rows,
    download,
    export,
    upload,
)
from tests.conftest import fresh_database, settings_for

FIELDS = ["name", "kind", "industry", "region", "level", "source", "tags", "phone", "email",
          "address"]  # fmt: skip
# in the empty database a sales rep may also export her own customers, phone and e-mail included
EXPORT_RULES = [
    ("p", "sales_rep", "*", "customer", "EXPORT", "OWN", "allow"),
    ("p", "sales_rep", "*", "customer.{phone,email}", "EXPORT", "OWN", "allow"),
]


def _table(rows: list[dict[str, str]]) -> Counter[tuple[str, ...]]:
    return Counter(tuple(row[field] for field in FIELDS) for row in rows)


async def test_export_import_export_gives_the_same_rows(gql: GraphQLClient, data_dir: Path):
    departments = await gql.query("bob", "{ departments { id name } }")
    sales = next(d["id"] for d in departments["data"]["departments"] if d["name"] == "销售部")
    variables = {"filter": {"departmentId": sales}, "fields": FIELDS}
    first = await export(gql, "bob", EXPORT_CUSTOMERS, variables, "exportCustomers")
    content = (await download(gql, "bob", first["url"])).content
    original = _table(csv_rows(content))
    assert first["rowCount"] > 0 and first["omittedFields"] == []
    assert all(row[FIELDS.index("phone")] for row in original)  # nothing masked on the way out

    database = fresh_database("dossier_roundtrip")  # creates with asyncio.run: not on our loop
    url = await asyncio.to_thread(database.__enter__)
    try:
        second = await _import_and_export_again(url, data_dir, content, first["rowCount"])
    finally:
        await asyncio.to_thread(database.__exit__, None, None, None)
    assert _table(second) == original


async def _import_and_export_again(
    url: str, data_dir: Path, content: bytes, expected: int
) -> list[dict[str, str]]:
    settings = settings_for(url, data_dir / "roundtrip")
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        await seed_demo(engine, settings.field_cipher, customers=0)
        async with engine.begin() as connection:
            await connection.execute(
                insert(PolicyRule),
                [dict(zip(("ptype", "v0", "v1", "v2", "v3", "v4", "v5"), rule, strict=True))
                 for rule in EXPORT_RULES],
            )  # fmt: skip
    finally:
        await engine.dispose()
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50004))
        async with httpx.AsyncClient(transport=transport, base_url="http://rt") as http:
            client = GraphQLClient(http, {})
            imported = await upload(client, "alice", content, "export.csv", dry_run=False)
            job = imported.json()["data"]["importCustomers"]
            assert (job["rejectedRows"], job["duplicateRows"]) == (0, 0), job["issues"]
            assert job["writtenRows"] == expected
            again = await export(client, "alice", EXPORT_CUSTOMERS, {"fields": FIELDS},
                                 "exportCustomers")  # fmt: skip
            rows = csv_rows((await download(client, "alice", again["url"])).content)
        await application.state.dossier.extras["bulk"].drain()
    return rows
