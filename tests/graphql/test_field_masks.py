"""Field policy: denied fields are null with one FORBIDDEN per field, through every path."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields


async def test_sales_rep_reads_phone_and_email_of_her_customers_but_never_id_number(
    gql: GraphQLClient,
) -> None:
    body = await gql.query(
        "alice", "{ customers(first: 500) { nodes { phone email idNumber totalSpend } } }"
    )
    nodes = body["data"]["customers"]["nodes"]
    assert nodes and all(n["phone"] and n["phone"].startswith("+") for n in nodes)
    assert all(n["idNumber"] is None and n["totalSpend"] is None for n in nodes)
    assert forbidden_fields(body) == {"Customer.idNumber", "Customer.totalSpend"}
    # one error per field, not one per row
    assert error_codes(body).count("FORBIDDEN") == 2


async def test_decrypted_phone_matches_the_stored_ciphertext(
    gql: GraphQLClient, demo_engine: AsyncEngine, demo_settings: object
) -> None:
    alice = await oracle.user_id(demo_engine, "alice")
    stored = await oracle.rows(
        demo_engine, "SELECT id, phone_enc, data_key FROM customers WHERE owner_id = :u", u=alice
    )
    cipher = demo_settings.field_cipher  # type: ignore[attr-defined]
    expected = {
        to_global_id("Customer", r.id): cipher.decrypt("customer.phone", r.phone_enc, r.data_key)
        for r in stored
    }
    body = await gql.query("alice", "{ customers(first: 500) { nodes { id phone } } }")
    got = {n["id"]: n["phone"] for n in body["data"]["customers"]["nodes"]}
    assert got == expected
    assert all("+86" not in r.phone_enc for r in stored)


async def test_manager_sees_phone_only_on_customers_of_his_own_department(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    sales = await oracle.department_id(demo_engine, "销售部")
    own = await oracle.customer_ids(demo_engine, "department_id = :d", d=sales)
    body = await gql.query(
        "bob", "{ customers(first: 500) { nodes { id phone email phoneAgain: phone } } }"
    )
    nodes = body["data"]["customers"]["nodes"]
    assert own and len(nodes) > len(own)
    for node in nodes:
        if node["id"] in own:
            assert node["phone"] and node["phone"] == node["phoneAgain"]
        else:
            assert node["phone"] is None and node["email"] is None and node["phoneAgain"] is None
    assert forbidden_fields(body) == {"Customer.phone", "Customer.email"}
    assert error_codes(body).count("FORBIDDEN") == 2


async def test_manager_cannot_read_contact_phones_through_nesting_or_fragments(
    gql: GraphQLClient,
) -> None:
    query = """
    fragment ContactBits on Contact { phone viaFragment: email }
    { customers(first: 20) { nodes { contacts { nodes { name ...ContactBits
        ... on Contact { inline: phone } } } } } }"""
    body = await gql.query("bob", query)
    contacts = [c for n in body["data"]["customers"]["nodes"] for c in n["contacts"]["nodes"]]
    assert contacts and all(c["name"] for c in contacts)
    assert all(c["phone"] is None and c["inline"] is None and c["viaFragment"] is None
               for c in contacts)  # fmt: skip
    assert forbidden_fields(body) == {"Contact.phone", "Contact.email"}


async def test_service_agent_reads_phone_but_not_money_or_opportunities(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    body = await gql.query(
        "carol",
        "{ customers(first: 50) { nodes { name phone totalSpend opportunities { totalCount } } } }",
    )
    nodes = body["data"]["customers"]["nodes"]
    assert all(n["phone"] for n in nodes)
    assert all(n["totalSpend"] is None and n["opportunities"] is None for n in nodes)
    assert forbidden_fields(body) == {"Customer.totalSpend", "Customer.opportunities"}
    opportunity = (await oracle.rows(demo_engine, "SELECT id FROM opportunities LIMIT 1"))[0]
    via_node = await gql.query(
        "carol",
        "query($id: ID!) { node(id: $id) { ... on Opportunity { amount } } }",
        {"id": to_global_id("Opportunity", opportunity.id)},
    )
    assert via_node["data"]["node"] is None
    root = await gql.query("carol", "{ opportunities { totalCount nodes { amount } } }")
    assert root["data"]["opportunities"] == {"totalCount": 0, "nodes": []}


async def test_finance_reads_money_but_no_contact_details(gql: GraphQLClient) -> None:
    body = await gql.query(
        "dave",
        """{ customers(first: 50) { nodes { totalSpend creditCode phone email
             contacts { nodes { name } } opportunities { nodes { amount } } } } }""",
    )
    nodes = body["data"]["customers"]["nodes"]
    assert all(n["totalSpend"] is not None for n in nodes)
    assert any(n["opportunities"]["nodes"] for n in nodes)
    assert all(n["phone"] is None and n["email"] is None and n["contacts"] is None for n in nodes)
    assert forbidden_fields(body) == {"Customer.phone", "Customer.email", "Customer.contacts"}
    contacts = await gql.query("dave", "{ contacts { totalCount } }")
    assert contacts["data"]["contacts"]["totalCount"] == 0


async def test_filtering_or_ordering_on_a_field_not_readable_everywhere_is_refused(
    gql: GraphQLClient,
) -> None:
    for query in (
        '{ customers(filter: {email: "x@example.com"}) { totalCount } }',
        "{ customers(orderBy: {field: TOTAL_SPEND}) { totalCount } }",
        '{ customers(filter: {creditCode: "91350100M000100Y43"}) { totalCount } }',
    ):
        body = await gql.query("bob", query)
        assert body["data"] is None
        assert error_codes(body) == ["FORBIDDEN"]
    # a rep reads e-mail on every row she sees, so she may filter by it
    allowed = await gql.query(
        "alice", '{ customers(filter: {email: "x@example.com"}) { totalCount } }'
    )
    assert "errors" not in allowed


async def test_finance_may_order_by_total_spend(gql: GraphQLClient) -> None:
    body = await gql.query(
        "dave",
        "{ customers(first: 10, orderBy: {field: TOTAL_SPEND, direction: DESC})"
        " { nodes { totalSpend } } }",
    )
    values = [float(n["totalSpend"]) for n in body["data"]["customers"]["nodes"]]
    assert values == sorted(values, reverse=True)


async def test_me_lists_permissions_from_the_same_decisions(gql: GraphQLClient) -> None:
    body = await gql.query(
        "bob",
        "{ me { user { username } roles { role department { name } }"
        " permissions { type field read write readScope } } }",
    )
    me = body["data"]["me"]
    assert me["user"]["username"] == "bob"
    assert me["roles"] == [{"role": "sales_manager", "department": {"name": "销售部"}}]
    perms = {(p["type"], p["field"]): p for p in me["permissions"]}
    assert perms[("Customer", "phone")]["read"] is True
    assert perms[("Customer", "phone")]["readScope"] == "SOME"
    assert perms[("Customer", "name")]["readScope"] == "ALL"
    assert perms[("Customer", "idNumber")]["read"] is False
    assert perms[("Customer", "name")]["write"] is False
