"""Exports past the inline limit: RUNNING in the request, finished by a worker, same file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bulk.conftest import EXPORT_CUSTOMERS, csv_rows, download
from tests.graphql.conftest import GraphQLClient
from tests.jobs.conftest import BACKGROUND_ROWS, eventually

EXPORT_STATE = """
query($id: ID!) { export(id: $id) { id status progress rowCount url sha256 format error } }"""
FIELDS = ["id", "name", "phone", "email", "totalSpend"]


async def export_state(client: GraphQLClient, username: str, export_id: str) -> Any:
    body = await client.query(username, EXPORT_STATE, {"id": export_id})
    assert "errors" not in body, body
    return body["data"]["export"]


async def test_large_export_runs_in_background_with_progress_and_downloads_once(
    gql: GraphQLClient, worker_gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    inline = await gql.query("bob", EXPORT_CUSTOMERS, {"fields": FIELDS})
    inline_export = inline["data"]["exportCustomers"]
    assert inline_export["rowCount"] > BACKGROUND_ROWS
    inline_rows = csv_rows((await download(gql, "bob", inline_export["url"])).content)

    started = await worker_gql.query(
        "bob",
        EXPORT_CUSTOMERS.replace("expiresAt", "expiresAt status progress"),
        {"fields": FIELDS},
    )
    assert "errors" not in started, started
    running = started["data"]["exportCustomers"]
    assert running["status"] == "RUNNING" and running["url"] is None
    assert running["rowCount"] == inline_export["rowCount"]
    export_id = running["id"]

    seen: list[float] = []

    async def done() -> Any:
        state = await export_state(worker_gql, "bob", export_id)
        seen.append(state["progress"])
        return state if state["status"] == "DONE" else None

    state = await eventually(done)
    assert state["progress"] == 1.0 and seen == sorted(seen)
    assert state["rowCount"] == inline_export["rowCount"] and state["url"]
    # someone else's export does not exist for them
    assert await export_state(worker_gql, "alice", export_id) is None
    assert (await download(worker_gql, "alice", state["url"])).status_code == 404

    # served by the other app, as another host would: the file is in the database
    fetched = await download(gql, "bob", state["url"])
    assert fetched.status_code == 200, fetched.text
    # the same rows and the same row-dependent masks as the inline export of the request
    assert csv_rows(fetched.content) == inline_rows
    assert (await download(worker_gql, "bob", state["url"])).status_code == 404
    assert (await export_state(worker_gql, "bob", export_id))["url"] is None

    events = await export_events(demo_engine, [inline_export["id"], export_id])
    assert set(events) == {inline_export["id"], export_id}
    # the same event as the request writes, for the same user and the same field mask
    assert {event.actor for event in events.values()} == {"bob"}
    assert events[export_id].fields == events[inline_export["id"]].fields
    assert "totalSpend" in inline_export["omittedFields"]  # bob may not export it
    background, inline_event = events[export_id].changes, events[inline_export["id"]].changes
    assert background["rowCount"] == inline_event["rowCount"] == state["rowCount"]
    assert background["sha256"] == state["sha256"]
    for key in ("filter", "format", "omittedFields"):
        assert background[key] == inline_event[key]


async def export_events(engine: AsyncEngine, export_ids: list[str]) -> dict[str, Any]:
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT actor, fields, changes FROM audit_events WHERE action = 'EXPORT' "
                    "AND changes->>'exportId' = ANY(:ids)"
                ),
                {"ids": export_ids},
            )
        ).all()
    return {row.changes["exportId"]: row for row in rows}
