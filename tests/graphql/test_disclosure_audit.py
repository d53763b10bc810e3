"""READ events name, per record, the fields actually disclosed; DENIED events name the records.

bob may read `phone` and `email` only on customers of his own department: on the rest of the
Sales subtree he gets `null`. The trail must say exactly whose numbers he received.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, switch_off_sql

VIEW = """query Numbers { customers(first: 500) { nodes { id name phone email
  contacts(first: 3) { nodes { id name } } } } }"""


async def _events(engine: AsyncEngine, request_id: str) -> list[Any]:
    return await oracle.rows(
        engine,
        "SELECT action, resource_type, resource_ids, fields FROM audit_events"
        " WHERE request_id = :r ORDER BY seq",
        r=request_id,
    )


async def _read_as_bob(gql: GraphQLClient) -> tuple[dict[str, Any], str]:
    request_id = uuid.uuid4().hex
    token = await gql.token("bob")
    response = await gql.http.post(
        "/graphql",
        json={"query": VIEW},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    return response.json(), request_id


async def _expected(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """(customers of bob's own department, customers of its sub-departments)."""
    sales = await oracle.department_id(engine, "销售部")
    rows = await oracle.rows(
        engine,
        "SELECT c.id, c.department_id = :d AS own FROM customers c"
        " JOIN departments d ON d.id = c.department_id"
        " WHERE (c.department_id = :d OR d.parent_id = :d) AND c.archived_at IS NULL",
        d=sales,
    )
    own = {str(r.id) for r in rows if r.own}
    return own, {str(r.id) for r in rows if not r.own}


@pytest.mark.parametrize("path", ["compiled", "compiled again", "general"])
async def test_bob_s_trail_names_whose_numbers_he_received(
    gql: GraphQLClient, demo_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path == "general":
        switch_off_sql(monkeypatch)
    elif path == "compiled again":
        await _read_as_bob(gql)  # the next one runs the statement compiled by this one
    body, request_id = await _read_as_bob(gql)
    own, others = await _expected(demo_engine)
    assert own and others  # the demo data has both kinds, or the test proves nothing
    shown = {n["id"]: n for n in body["data"]["customers"]["nodes"]}
    assert set(shown) == {to_global_id("Customer", i) for i in own | others}

    events = await _events(demo_engine, request_id)
    customer_reads = {
        tuple(e.fields): set(e.resource_ids)
        for e in events
        if e.action == "READ" and e.resource_type == "customer"
    }
    assert customer_reads == {
        ("contacts", "email", "name", "phone"): own,
        ("contacts", "name"): others,
    }, events
    denied = [e for e in events if e.action == "DENIED"]
    assert [(e.resource_type, set(e.resource_ids), list(e.fields)) for e in denied] == [
        ("customer", others, ["Customer.email", "Customer.phone"])
    ]
    contact_reads = [e for e in events if e.action == "READ" and e.resource_type == "contact"]
    assert contact_reads and all(list(e.fields) == ["name"] for e in contact_reads)


async def test_a_record_reached_twice_received_the_union_of_both(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    """A customer listed with `name` and reached again under its contact with `phone` only:
    one READ naming both for it, and no DENIED where one reader did disclose the field."""
    alice = await oracle.user_id(demo_engine, "alice")
    own = sorted(await oracle.customer_ids(demo_engine, "owner_id = :u", u=alice))[0]
    request_id = uuid.uuid4().hex
    token = await gql.token("alice")
    query = """query Twice($id: ID!) { customer(id: $id) { id name }
      again: customer(id: $id) { phone } }"""
    response = await gql.http.post(
        "/graphql",
        json={"query": query, "variables": {"id": own}},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    assert "errors" not in response.json()
    events = await _events(demo_engine, request_id)
    assert [(e.action, list(e.fields)) for e in events] == [("READ", ["name", "phone"])]
