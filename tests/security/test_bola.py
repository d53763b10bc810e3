"""BOLA: ids of records outside the caller's scope yield nothing, through every entry point."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.security.conftest import GraphQLClient, assert_clean


async def franks_records(engine: AsyncEngine) -> dict[str, list[str]]:
    """Global ids of the records hanging off customers alice may not see (frank's)."""
    frank = await oracle.user_id(engine, "frank")
    found: dict[str, list[str]] = {}
    for type_name, sql in [
        ("Customer", "SELECT id FROM customers WHERE owner_id = :u"),
        ("Contact", "SELECT c.id FROM contacts c JOIN customers k ON k.id = c.customer_id "
                    "WHERE k.owner_id = :u"),
        ("Opportunity", "SELECT o.id FROM opportunities o JOIN customers k "
                        "ON k.id = o.customer_id WHERE k.owner_id = :u"),
        ("Ticket", "SELECT t.id FROM tickets t JOIN customers k ON k.id = t.customer_id "
                   "WHERE k.owner_id = :u"),
    ]:  # fmt: skip
        rows = await oracle.rows(engine, sql + " ORDER BY 1 LIMIT 3", u=frank)
        found[type_name] = [to_global_id(type_name, r.id) for r in rows]
    assert all(found.values()), found
    return found


async def ask(sec: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await sec.post("alice", query, variables)
    assert_clean(response)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_customer_and_node_return_null_for_another_reps_records(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    records = await franks_records(demo_engine)
    for type_name, ids in records.items():
        for record_id in ids:
            body = await ask(
                sec, "query($id: ID!) { node(id: $id) { id __typename } }", {"id": record_id}
            )
            assert body["data"] == {"node": None}, (type_name, body)
    for record_id in records["Customer"]:
        body = await ask(
            sec,
            """query($id: ID!) { customer(id: $id) { id name phone contacts { totalCount } }
                 node(id: $id) { ... on Customer { name contacts { nodes { name } } } } }""",
            {"id": record_id},
        )
        assert body["data"] == {"customer": None, "node": None}


async def test_filters_by_another_reps_customer_return_empty_pages(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    records = await franks_records(demo_engine)
    for connection in ("contacts", "opportunities", "tickets"):
        for customer_id in records["Customer"]:
            body = await ask(
                sec,
                f"""query($c: ID!) {{ {connection}(first: 500, filter: {{customerId: $c}}) {{
                      totalCount nodes {{ id }} }} }}""",
                {"c": customer_id},
            )
            assert body["data"][connection] == {"totalCount": 0, "nodes": []}, connection


async def test_filters_by_another_owner_or_department_find_nothing(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    frank = to_global_id("User", await oracle.user_id(demo_engine, "frank"))
    north = to_global_id("Department", await oracle.department_id(demo_engine, "华北销售"))
    body = await ask(
        sec,
        """query($u: ID!, $d: ID!) {
             a: customers(first: 500, filter: {ownerId: $u}) { totalCount nodes { id } }
             b: customers(first: 500, filter: {departmentId: $d}) { totalCount nodes { id } }
             c: opportunities(first: 500, filter: {ownerId: $u}) { totalCount }
           }""",
        {"u": frank, "d": north},
    )
    assert body["data"]["a"] == {"totalCount": 0, "nodes": []}
    assert body["data"]["b"] == {"totalCount": 0, "nodes": []}
    assert body["data"]["c"] == {"totalCount": 0}


async def test_nested_paths_never_lead_out_of_scope(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    own = await oracle.customer_ids(demo_engine, "owner_id = :u", u=alice)
    body = await ask(
        sec,
        """{ contacts(first: 500) { nodes { customer {
               id contacts { nodes { customer { id } } } } } }
             opportunities(first: 500) { nodes { customer { id } } }
             tickets(first: 500) { nodes { customer {
               id tickets { nodes { customer { id } } } } } } }""",
        {},
    )
    reached = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "customer" in value and value["customer"]:
                reached.add(value["customer"]["id"])
            for child in value.values():
                collect(child)
        elif isinstance(value, list):
            for child in value:
                collect(child)

    collect(body["data"])
    assert reached and reached <= own


async def test_a_forged_id_of_the_right_shape_finds_nothing(sec: GraphQLClient) -> None:
    for forged in ("Customer:999999999", "Customer:-1", "Customer:0"):
        global_id = to_global_id(*forged.split(":"))
        body = await ask(sec, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id})
        assert body["data"] == {"node": None}


async def test_an_id_of_another_type_is_not_a_customer(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    records = await franks_records(demo_engine)
    contact_id = records["Contact"][0]
    body = await ask(sec, "query($id: ID!) { customer(id: $id) { id } }", {"id": contact_id})
    assert body["data"] == {"customer": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_sales_rep_cannot_read_the_audit_trail(sec: GraphQLClient) -> None:
    body = await ask(sec, "{ auditEvents(first: 5) { nodes { id actor } } }", {})
    assert not ((body["data"] or {}).get("auditEvents") or {}).get("nodes")
    assert "FORBIDDEN" in [e["extensions"]["code"] for e in body.get("errors", [])]
