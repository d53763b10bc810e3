"""The SQL-built responses equal the direct executor's: data, FORBIDDEN entries and audit trail.

The direct executor is the reference (itself checked against graphql-core in
test_direct_executor.py). Each query runs twice as the same caller — once compiled into one
statement, once with compilation switched off — and the bodies and the audit records the
endpoint writes must be equal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import api.graphql
from sqljson.values import iso_timestamp
from tests.graphql.conftest import GraphQLClient, switch_off_sql
from tests.graphql.test_direct_executor import QUERIES as DIRECT_QUERIES
from tests.graphql.test_statements import NESTED

USERS = ("admin", "alice", "bob", "carol", "dave", "erin", "frank")

EDGES = """query($after: String, $order: CustomerOrder, $first: Int) {
  customers(first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { endCursor hasNextPage __typename } __typename
    edges { __typename cursor node { id name updatedAt totalSpend createdAt lastInteractionAt
      tags level source creditCode idNumber address version
      owner { id username active department { name parent { name } } }
      contacts(first: 2) { totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { id name phone email isDecisionMaker } } }
      tickets(first: 1, after: "bjo6MQ") { nodes { title openedAt resolvedAt satisfaction } }
      interactions(first: 3) {
        nodes { channel summary occurredAt nextFollowUpOn author { username } } }
    } } } }"""

CHILDREN_ROOTS = """{
  contacts(first: 6) { nodes { name phone customer { name phone owner { username } } } }
  opportunities(first: 5, filter: {stage: WON}) { totalCount nodes {
    name amount stage expectedCloseDate version customer { id level } owner { displayName } } }
  tickets(first: 4) { edges { cursor node { title status priority assignee { username } } } }
}"""

ONE = """query($id: ID!) { customer(id: $id) { id __typename name phone idNumber email
  contacts(first: 0) { totalCount pageInfo { hasNextPage endCursor } nodes { name } }
  opportunities { nodes { id } } } }"""

# nested pages after a cursor ("n::100": some customers have children after it, some none, so
# their totalCount is 0), first: 0, and every pageInfo key; relations under children and under
# relations, where a role may see them on some rows only
CHILD_PAGES = """query($first: Int, $after: String) {
  customers(first: $first) { pageInfo { hasNextPage endCursor } nodes { id phone
    owner { username department { name parent { name } } }
    contacts(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { name phone customer { name owner { username } } } } }
    opportunities(first: 2, after: "bjo6MTAw") { totalCount pageInfo { endCursor hasNextPage }
      nodes { name amount owner { username displayName } } }
    tickets(first: 0) { totalCount pageInfo { hasNextPage endCursor } nodes { title } }
    interactions(after: "bjo6OTk5OTk") { totalCount pageInfo { hasNextPage } nodes { summary } }
    followUps: interactions(first: 2) { pageInfo { endCursor } edges { node { summary
      author { username department { name } } } } }
  } }
  one: customer(id: "Q3VzdG9tZXI6Mg") { name contacts(first: 2, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { name } } tickets { totalCount } }
}"""

QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    *[(user, CHILD_PAGES, {"first": 12, "after": "bjo6MTAw"}) for user in USERS],
    *[(user, CHILD_PAGES, {"first": 3}) for user in USERS],
    *[(user, NESTED, {"first": 500}) for user in USERS],
    *[(user, EDGES, {"first": 5}) for user in USERS],
    *[(user, CHILDREN_ROOTS, {}) for user in USERS],
    *[(user, ONE, {"id": "Q3VzdG9tZXI6Mg"}) for user in USERS],
    ("bob", ONE, {"id": "Q3VzdG9tZXI6OTk5OTk"}),
    *[
        ("alice", EDGES, {"first": 4, "order": {"field": field, "direction": direction}})
        for field in ("NAME", "UPDATED_AT", "TOTAL_SPEND", "CREATED_AT", "ID")
        for direction in ("ASC", "DESC")
    ],
    ("bob", EDGES, {"first": 0}),
    *DIRECT_QUERIES,
]


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The audit records each request appended, in order."""
    written: list[list[Any]] = []
    append = api.graphql.append_events

    async def capture(session: Any, records: list[Any], **options: Any) -> Any:
        written.append(records)
        return await append(session, records, **options)

    monkeypatch.setattr(api.graphql, "append_events", capture)
    return written


def _trail(records: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.action, r.resource_type, r.resource_ids, r.fields) for r in records]


async def _after_cursor(gql: GraphQLClient, user: str, variables: dict[str, Any]) -> Any:
    body = (await gql.post(user, EDGES, variables)).json()
    return body["data"]["customers"]["pageInfo"]["endCursor"]


@pytest.mark.parametrize(("username", "query", "variables"), QUERIES)
async def test_sql_and_direct_answers_are_the_same(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    audited: list[list[Any]],
    username: str,
    query: str,
    variables: dict[str, Any],
) -> None:
    built = await gql.post(username, query, variables)
    built_trail = [_trail(records) for records in audited]
    audited.clear()
    body = built.json()
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    if body.get("data") is not None and codes <= {"FORBIDDEN"}:
        assert built.headers["x-executor"] == "sql"
    switch_off_sql(monkeypatch)
    reference = await gql.post(username, query, variables)
    assert reference.headers["x-executor"] != "sql"
    assert built.status_code == reference.status_code
    assert body == reference.json()
    assert built_trail == [_trail(records) for records in audited]


@pytest.mark.parametrize("order", ["NAME", "UPDATED_AT", "CREATED_AT", "ID"])
async def test_paging_on_with_sql_cursors_matches(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """Cursors written by SQL are read back by `decode_cursor`: page two is the same page."""
    variables: dict[str, Any] = {"first": 3, "order": {"field": order, "direction": "DESC"}}
    after = await _after_cursor(gql, "alice", variables)
    second = (await gql.post("alice", EDGES, {**variables, "after": after})).json()
    switch_off_sql(monkeypatch)
    assert after == await _after_cursor(gql, "alice", variables)
    assert second == (await gql.post("alice", EDGES, {**variables, "after": after})).json()
    assert second["data"]["customers"]["edges"]


async def test_the_nested_view_is_one_statement_besides_auth_and_audit(
    gql: GraphQLClient,
) -> None:
    small = await gql.post("bob", NESTED, {"first": 2})
    large = await gql.post("bob", NESTED, {"first": 500})
    assert small.headers["x-executor"] == large.headers["x-executor"] == "sql"
    assert small.headers["x-sql-statements"] == large.headers["x-sql-statements"]


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 23, 16, 37, 51, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 16, 37, 51, tzinfo=dt.UTC),  # no microseconds: none written
        dt.datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2, 3, 4, 5, 100000, tzinfo=dt.UTC),  # trailing zeros are kept
        dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        dt.datetime(999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        None,
    ],
)
async def test_timestamps_are_written_as_python_writes_them(
    engine: AsyncEngine, value: dt.datetime | None
) -> None:
    column = sa.bindparam("value", type_=sa.DateTime(timezone=True))
    async with engine.connect() as connection:
        written = await connection.scalar(sa.select(iso_timestamp(column)), {"value": value})
    assert written == (None if value is None else value.astimezone(dt.UTC).isoformat())


async def test_encrypted_values_are_replaced_in_what_postgresql_writes(
    demo_engine: AsyncEngine, demo_settings: Any
) -> None:
    """The splice that decrypts the SQL-built answer finds every `$enc` object PostgreSQL
    writes, whatever the value holds: ciphertext, or a clear value with quotes, backslashes,
    control characters and non-ASCII text, and leaves look-alike text inside strings alone."""
    from sqljson.executor import _decrypted

    cipher = demo_settings.field_cipher
    data_key = cipher.new_data_key()
    plain = [
        "13800138000",
        'He said "hi" \\ then left',
        "北京市朝阳区 1 号\tA 座\n",
        '{"$enc" : "customer.phone", "v" : "x"}',
        "",
    ]
    stored = [cipher.encrypt("customer.address", text, data_key) for text in plain[:3]]
    values = [*(f"{s}|{data_key}" for s in stored), *(f"={text}" for text in plain)]
    async with demo_engine.connect() as connection:
        written = await connection.scalar(
            sa.text(
                "SELECT json_build_object('items', json_agg(json_build_object("
                "'$enc', 'customer.address', 'v', v) ORDER BY n), "
                "'note', CAST(:note AS text))::text "
                "FROM unnest(CAST(:values AS text[])) WITH ORDINALITY AS t(v, n)"
            ),
            {"values": values, "note": plain[3]},
        )
    answer = orjson.loads(_decrypted(written.encode(), cipher))
    assert answer == {"items": plain[:3] + plain, "note": plain[3]}
