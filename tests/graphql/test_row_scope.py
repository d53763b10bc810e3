"""Row scope: records outside the caller's scope do not exist for it, through every entry point."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient

ALL_IDS = "{ customers(first: 500) { totalCount nodes { id } } }"


async def visible_ids(gql: GraphQLClient, username: str) -> tuple[set[str], int]:
    body = await gql.query(username, ALL_IDS)
    page = body["data"]["customers"]
    return {n["id"] for n in page["nodes"]}, page["totalCount"]


async def test_sales_rep_sees_exactly_her_own_customers(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    expected = await oracle.customer_ids(demo_engine, "owner_id = :u", u=alice)
    ids, total = await visible_ids(gql, "alice")
    assert expected and ids == expected
    assert total == len(expected)


async def test_sales_manager_sees_the_sales_subtree(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    sales = [await oracle.department_id(demo_engine, n) for n in ("销售部", "华东销售", "华北销售")]
    expected = await oracle.customer_ids(demo_engine, "department_id = ANY(:d)", d=sales)
    ids, total = await visible_ids(gql, "bob")
    assert ids == expected and total == len(expected)


async def test_service_agent_and_finance_see_every_customer(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    expected = await oracle.customer_ids(demo_engine)
    for username in ("carol", "dave"):
        ids, total = await visible_ids(gql, username)
        assert ids == expected and total == len(expected)


async def test_compliance_and_admin_see_no_customer_and_count_zero(gql: GraphQLClient) -> None:
    for username in ("erin", "admin"):
        ids, total = await visible_ids(gql, username)
        assert ids == set() and total == 0


async def test_customer_by_id_outside_scope_is_null_like_a_missing_id(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    frank = await oracle.user_id(demo_engine, "frank")
    franks = sorted(await oracle.customer_ids(demo_engine, "owner_id = :u", u=frank))
    missing = to_global_id("Customer", 999_999_999)
    query = "query($id: ID!) { customer(id: $id) { id name } node(id: $id) { id } }"
    for target in (franks[0], missing):
        body = await gql.query("alice", query, {"id": target})
        assert body["data"] == {"customer": None, "node": None}
        assert "errors" not in body


async def test_node_resolves_only_in_scope_records_of_every_type(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    frank = await oracle.user_id(demo_engine, "frank")
    contact = await oracle.rows(
        demo_engine,
        "SELECT c.id FROM contacts c JOIN customers cu ON cu.id = c.customer_id "
        "WHERE cu.owner_id = :u LIMIT 1",
        u=frank,
    )
    contact_id = to_global_id("Contact", contact[0].id)
    query = "query($id: ID!) { node(id: $id) { id ... on Contact { name phone } } }"
    assert (await gql.query("alice", query, {"id": contact_id}))["data"]["node"] is None
    found = await gql.query("frank", query, {"id": contact_id})
    assert found["data"]["node"]["id"] == contact_id
    assert found["data"]["node"]["phone"].startswith("+")


async def test_nested_and_root_children_stay_inside_scope(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    expected = await oracle.rows(
        demo_engine,
        "SELECT count(*) AS n FROM tickets t JOIN customers c ON c.id = t.customer_id "
        "WHERE c.owner_id = :u AND c.archived_at IS NULL",
        u=alice,
    )
    body = await gql.query("alice", "{ tickets(first: 500) { totalCount nodes { id } } }")
    assert body["data"]["tickets"]["totalCount"] == expected[0].n
    nested = await gql.query(
        "alice", "{ customers(first: 500) { nodes { tickets { totalCount } } } }"
    )
    assert sum(n["tickets"]["totalCount"] for n in nested["data"]["customers"]["nodes"]) == (
        expected[0].n
    )


async def test_filters_cannot_widen_the_scope(gql: GraphQLClient, demo_engine: AsyncEngine) -> None:
    frank = await oracle.user_id(demo_engine, "frank")
    north = await oracle.department_id(demo_engine, "华北销售")
    query = """query($o: ID, $d: ID) {
      customers(first: 500, filter: {ownerId: $o, departmentId: $d}) { totalCount nodes { id } }
    }"""
    body = await gql.query(
        "alice",
        query,
        {"o": to_global_id("User", frank), "d": to_global_id("Department", north)},
    )
    assert body["data"]["customers"]["totalCount"] == 0
    assert body["data"]["customers"]["nodes"] == []


async def test_contact_of_a_foreign_customer_cannot_lead_back_to_it(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    """carol reads every contact, but a partner-scoped or rep-scoped caller cannot pivot."""
    frank = await oracle.user_id(demo_engine, "frank")
    franks = sorted(await oracle.customer_ids(demo_engine, "owner_id = :u", u=frank))
    query = """query($id: ID!) { contacts(first: 5, filter: {customerId: $id}) {
        totalCount nodes { customer { id name } } } }"""
    body = await gql.query("alice", query, {"id": franks[0]})
    assert body["data"]["contacts"] == {"totalCount": 0, "nodes": []}


async def test_bad_values_in_variables_are_bad_input_not_internal(gql: GraphQLClient) -> None:
    query = "query($f: CustomerFilter, $n: Int) { customers(first: $n, filter: $f) { totalCount } }"
    for variables in (
        {"f": {"level": "Z"}},
        {"f": {"nosuch": 1}},
        {"n": "fifty"},
        {"f": {"updatedSince": "not a date"}},
    ):
        body = await gql.query("alice", query, variables)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
