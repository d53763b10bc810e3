"""Consents: recorded and withdrawn under the customer's UPDATE rule, audited, read with the
customer, and a marketing export leaves out the customers without an active marketing consent."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bulk.conftest import csv_rows, download
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields
from tests.graphql.test_partner import as_partner, partner_token
from tests.privacy.conftest import create_person

RECORD = """
mutation($c: ID!, $p: String!, $e: String) {
  recordConsent(customerId: $c, purpose: $p, evidence: $e) {
    purpose grantedAt withdrawnAt evidence
  }
}"""
WITHDRAW = """
mutation($c: ID!, $p: String!) {
  withdrawConsent(customerId: $c, purpose: $p) { purpose withdrawnAt }
}"""
CONSENTS = """
query($id: ID!) { node(id: $id) { ... on Customer { id consents { purpose withdrawnAt } } } }"""
EXPORT = """
mutation($purpose: String) {
  exportCustomers(fields: ["name"], purpose: $purpose) { rowCount url }
}"""


async def test_consent_is_recorded_read_withdrawn_and_audited(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer, _ = await create_person(gql)
    body = await gql.query("alice", RECORD, {"c": customer, "p": "marketing", "e": "表单 F-1"})
    assert "errors" not in body, body
    assert body["data"]["recordConsent"]["purpose"] == "marketing"
    again = await gql.query("alice", RECORD, {"c": customer, "p": "Marketing"})
    assert again["data"]["recordConsent"]["grantedAt"] == body["data"]["recordConsent"]["grantedAt"]

    read = await gql.query("alice", CONSENTS, {"id": customer})
    assert read["data"]["node"]["consents"] == [{"purpose": "marketing", "withdrawnAt": None}]

    withdrawn = await gql.query("alice", WITHDRAW, {"c": customer, "p": "marketing"})
    assert withdrawn["data"]["withdrawConsent"]["withdrawnAt"] is not None
    none_left = await gql.query("alice", WITHDRAW, {"c": customer, "p": "marketing"})
    assert none_left["data"]["withdrawConsent"] is None

    pk = customer_pk(customer)
    async with demo_engine.connect() as connection:
        events = (
            await connection.execute(
                text(
                    "SELECT action, changes FROM audit_events WHERE resource_type = 'consent'"
                    " AND resource_ids @> ARRAY[:id] ORDER BY seq"
                ),
                {"id": str(pk)},
            )
        ).all()
    assert [e.action for e in events] == ["CREATE", "UPDATE"]
    assert events[0].changes["evidence"] != "表单 F-1"  # masked in the trail


async def test_consent_writes_need_update_on_that_customer(gql: GraphQLClient) -> None:
    customer, _ = await create_person(gql, "alice")
    # frank is a rep of another team: alice's customer is not his to change
    body = await gql.query("frank", RECORD, {"c": customer, "p": "marketing"})
    assert error_codes(body) == ["NOT_FOUND"], body
    # bob (manager) may read but not update; erin has no customer rule at all
    for username in ("bob", "erin"):
        body = await gql.query(username, RECORD, {"c": customer, "p": "marketing"})
        assert error_codes(body) == ["FORBIDDEN"], (username, body)
    body = await gql.query("alice", RECORD, {"c": customer, "p": "no spaces allowed"})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_marketing_export_omits_customers_without_active_consent(gql: GraphQLClient) -> None:
    consenting, consenting_values = await create_person(gql)
    silent, silent_values = await create_person(gql)
    withdrawn, withdrawn_values = await create_person(gql)
    for customer in (consenting, withdrawn):
        body = await gql.query("alice", RECORD, {"c": customer, "p": "marketing"})
        assert "errors" not in body, body
    await gql.query("alice", WITHDRAW, {"c": withdrawn, "p": "marketing"})

    everyone = await gql.query("bob", EXPORT, {})
    marketing = await gql.query("bob", EXPORT, {"purpose": "marketing"})
    assert "errors" not in marketing, marketing
    assert marketing["data"]["exportCustomers"]["rowCount"] >= 1
    assert (
        marketing["data"]["exportCustomers"]["rowCount"]
        < everyone["data"]["exportCustomers"]["rowCount"]
    )
    response = await download(gql, "bob", marketing["data"]["exportCustomers"]["url"])
    names = {row["name"] for row in csv_rows(response.content)}
    assert consenting_values["name"] in names
    assert silent_values["name"] not in names
    assert withdrawn_values["name"] not in names


def customer_pk(global_id: str) -> int:
    from schema.node import from_global_id

    return int(from_global_id(global_id)[1])


PARTNER_READ = """
query { customers(first: 100) { nodes { id name consents { purpose evidence } } } }"""


async def test_a_partner_reads_no_consents_no_rule_names(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer, _ = await create_person(gql)
    await gql.query("alice", RECORD, {"c": customer, "p": "marketing", "e": "签字 F-8"})
    token = await partner_token(demo_engine, [customer_pk(customer)], ["customers:read"])
    body = await as_partner(gql, token, PARTNER_READ)
    nodes = body["data"]["customers"]["nodes"]  # type: ignore[index]
    assert [n["consents"] for n in nodes] == [None] and nodes[0]["name"]
    assert forbidden_fields(body) == {"Customer.consents"}


async def test_consents_are_not_read_around_the_rules(gql: GraphQLClient) -> None:
    customer, _ = await create_person(gql)
    await gql.query("alice", RECORD, {"c": customer, "p": "marketing", "e": "签字 F-9"})
    # frank cannot reach alice's customer at all, under node(), an alias or a fragment
    sneaky = """query($id: ID!) { a: node(id: $id) { ...F } }
    fragment F on Customer { consents { purpose evidence } }"""
    body = await gql.query("frank", sneaky, {"id": customer})
    assert body["data"]["a"] is None
    # bob (manager, subtree) reads the customer and so its consents
    body = await gql.query("bob", CONSENTS, {"id": customer})
    assert body["data"]["node"]["consents"] == [{"purpose": "marketing", "withdrawnAt": None}]
