"""`exportAuditEvents` through HTTP: compliance only, one-time download, a re-verifiable excerpt.

Runs on the demo database and app of tests/graphql (shared per run), so the trail already holds
the logins and reads of other tests; every assertion is about the file and the events it names.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.canonical import GENESIS_HASH, event_hash
from tests.graphql import conftest as graphql_fixtures
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

# the demo database and app of tests/graphql, shared: one seeded database per run
demo_database_url = graphql_fixtures.demo_database_url
demo_settings = graphql_fixtures.demo_settings
demo_engine = graphql_fixtures.demo_engine
demo = graphql_fixtures.demo
demo_app = graphql_fixtures.demo_app
gql = graphql_fixtures.gql

EXPORT_AUDIT = """
mutation($filter: AuditEventFilter, $format: AuditExportFormat! = JSONL) {
  exportAuditEvents(filter: $filter, format: $format) { id rowCount url fields sha256 expiresAt }
}"""

TRAIL = """query($f: AuditEventFilter) { auditEvents(first: 5, filter: $f) {
  totalCount nodes { action actor resourceType changes } } }"""


async def _export(
    gql: GraphQLClient, variables: dict[str, Any], username: str = "erin"
) -> dict[str, Any]:
    body = await gql.query(username, EXPORT_AUDIT, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["exportAuditEvents"]
    return result


async def _download(gql: GraphQLClient, username: str, url: str) -> httpx.Response:
    token = await gql.token(username)
    return await gql.http.get(url, headers={"Authorization": f"Bearer {token}"})


def _documents(content: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content.decode("utf-8").splitlines()]


def _recomputed_hash(document: dict[str, Any]) -> str:
    """What a recipient does: parse `at` back and hash the canonical form (audit.canonical)."""
    fields = dict(document)
    fields["at"] = dt.datetime.strptime(document["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.UTC
    )
    return event_hash(fields)


def _assert_chain_excerpt(documents: list[dict[str, Any]]) -> None:
    """Every event matches its own hash and links to the one before it."""
    assert documents
    for document in documents:
        assert _recomputed_hash(document) == document["hash"], document["seq"]
    for previous, current in zip(documents, documents[1:], strict=False):
        assert current["seq"] == previous["seq"] + 1
        assert current["prev_hash"] == previous["hash"], current["seq"]


async def test_compliance_officer_exports_the_chain_and_downloads_it_once(gql):
    await gql.query("bob", "{ customers(first: 3) { nodes { id name } } }")  # something to see
    result = await _export(gql, {})

    first = await _download(gql, "erin", result["url"])
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/x-ndjson")
    assert first.headers["x-content-sha256"] == result["sha256"]
    assert hashlib.sha256(first.content).hexdigest() == result["sha256"]
    assert (await _download(gql, "erin", result["url"])).status_code == 404

    documents = _documents(first.content)
    assert len(documents) == result["rowCount"] > 0
    assert documents[0]["seq"] == 1 and documents[0]["prev_hash"] == GENESIS_HASH
    _assert_chain_excerpt(documents)
    assert {"hash", "prev_hash", "seq", "actor", "action"} <= set(result["fields"])


async def test_a_time_window_is_an_excerpt_a_recipient_can_reverify(gql, demo_engine: AsyncEngine):
    for _ in range(3):
        await gql.query("bob", "{ customers(first: 2) { nodes { id } } }")
    async with demo_engine.connect() as connection:
        middle = (
            await connection.execute(text("SELECT at FROM audit_events ORDER BY seq DESC LIMIT 1"))
        ).scalar_one()
    result = await _export(gql, {"filter": {"from": middle.isoformat()}})
    documents = _documents((await _download(gql, "erin", result["url"])).content)

    assert len(documents) == result["rowCount"]
    assert documents[0]["seq"] > 1 and documents[0]["prev_hash"] != GENESIS_HASH
    assert all(
        document["at"] >= middle.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        for document in documents
    )
    _assert_chain_excerpt(documents)


async def test_a_filtered_export_holds_what_audit_events_counts(gql):
    await gql.query("bob", "{ customers(first: 1) { nodes { id } } }")
    criteria = {"actor": "bob", "action": "READ"}
    counted = await gql.query("erin", TRAIL, {"f": criteria})
    result = await _export(gql, {"filter": criteria, "format": "CSV"})
    response = await _download(gql, "erin", result["url"])

    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert response.headers["content-type"].startswith("text/csv")
    assert len(rows) == result["rowCount"] >= counted["data"]["auditEvents"]["totalCount"] > 0
    assert {(row["actor"], row["action"]) for row in rows} == {("bob", "READ")}
    for row in rows:
        assert len(row["hash"]) == len(row["prev_hash"]) == 64
    assert [int(row["seq"]) for row in rows] == sorted(int(row["seq"]) for row in rows)


async def test_only_the_exporting_principal_can_download(gql):
    result = await _export(gql, {"filter": {"actor": "erin"}})
    assert (await _download(gql, "bob", result["url"])).status_code == 404
    assert (await _download(gql, "erin", result["url"])).status_code == 200


async def test_everyone_without_export_on_audit_is_refused(gql):
    for username in ("admin", "alice", "bob", "carol", "dave", "frank"):
        body = await gql.query(username, EXPORT_AUDIT, {})
        assert body["data"]["exportAuditEvents"] is None, username
        assert error_codes(body) == ["FORBIDDEN"], username
        assert forbidden_fields(body) == {"Mutation.exportAuditEvents"}, username


async def test_the_export_is_recorded_with_filter_row_count_and_file_hash(
    gql, demo_engine: AsyncEngine
):
    criteria = {"actor": "erin", "resourceType": "audit"}
    result = await _export(gql, {"filter": criteria})
    content = (await _download(gql, "erin", result["url"])).content
    async with demo_engine.connect() as connection:
        events = (
            await connection.execute(
                text(
                    "SELECT actor, resource_type, changes FROM audit_events "
                    "WHERE action = 'AUDIT_EXPORT' AND changes->>'exportId' = :id"
                ),
                {"id": result["id"]},
            )
        ).all()
    assert len(events) == 1
    actor, resource_type, changes = events[0]
    assert (actor, resource_type) == ("erin", "audit")
    assert changes["filter"] == criteria
    assert changes["format"] == "JSONL"
    assert changes["rowCount"] == result["rowCount"] == len(_documents(content))
    assert changes["sha256"] == result["sha256"] == hashlib.sha256(content).hexdigest()

    trail = await gql.query("erin", TRAIL, {"f": {"action": "AUDIT_EXPORT"}})
    assert trail["data"]["auditEvents"]["nodes"][0]["changes"]["exportId"] == result["id"]
