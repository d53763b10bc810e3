"""Broken object property authorisation: every sensitive field, through every path.

Whatever path reaches a field the caller may not read, its value is null and the response
carries FORBIDDEN naming it; filtering or ordering by such a field is refused outright (a
filter is an oracle: binary search over `email` recovers the address).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import forbidden_fields
from tests.security.conftest import GraphQLClient, assert_clean

# (user, field of Customer) pairs the demo policies deny on every row the user can see
DENIED: list[tuple[str, str]] = [
    ("alice", "idNumber"), ("alice", "totalSpend"), ("alice", "creditCode"),
    ("carol", "email"), ("carol", "idNumber"), ("carol", "totalSpend"), ("carol", "creditCode"),
    ("dave", "phone"), ("dave", "email"), ("dave", "idNumber"),
]  # fmt: skip

PATHS = {
    "direct": "{ customers(first: 500) { nodes { id %(f)s } } }",
    "alias": "{ customers(first: 500) { nodes { id x: %(f)s y: %(f)s } } }",
    "fragment": "fragment F on Customer { %(f)s } { customers(first: 500) { nodes { id ...F } } }",
    "inline": "{ customers(first: 500) { nodes { id ... on Customer { %(f)s } } } }",
    "edges": "{ customers(first: 500) { edges { node { id %(f)s } } } }",
    "by_id": '{ customer(id: "%(id)s") { id %(f)s } }',
    "node": '{ node(id: "%(id)s") { id ... on Customer { %(f)s } } }',
    "via_tickets": "{ tickets(first: 500) { nodes { customer { id %(f)s } } } }",
    "via_opportunities": "{ opportunities(first: 500) { nodes { customer { id %(f)s } } } }",
    "via_contacts": "{ contacts(first: 500) { nodes { customer { id %(f)s } } } }",
    "nested_twice": "{ tickets(first: 50) { nodes { customer { tickets { nodes { customer "
    "{ %(f)s } } } } } } }",
}


def values_of(data: Any, names: set[str]) -> list[Any]:
    found: list[Any] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in names:
                found.append(value)
            else:
                found.extend(values_of(value, names))
    elif isinstance(data, list):
        for item in data:
            found.extend(values_of(item, names))
    return found


async def a_visible_customer(sec: GraphQLClient, user: str) -> str:
    body = await sec.query(user, "{ customers(first: 1) { nodes { id } } }")
    customer_id: str = body["data"]["customers"]["nodes"][0]["id"]
    return customer_id


@pytest.mark.parametrize(("user", "field"), DENIED)
async def test_a_denied_field_is_null_and_forbidden_through_every_path(
    sec: GraphQLClient, user: str, field: str
) -> None:
    customer_id = await a_visible_customer(sec, user)
    for name, template in PATHS.items():
        response = await sec.post(user, template % {"f": field, "id": customer_id})
        assert_clean(response)
        body = response.json()
        values = values_of(body.get("data"), {field, "x", "y"})
        assert all(v is None for v in values), (name, body)
        if values:  # the path reached at least one row: the denial is reported
            assert f"Customer.{field}" in forbidden_fields(body), (name, body)


@pytest.mark.parametrize(
    ("user", "filter_"),
    [("carol", '{email: "a@b.cn"}'), ("alice", '{creditCode: "91110000MA00000000"}'),
     ("dave", '{email: "a@b.cn"}'), ("carol", '{creditCode: "9111"}')],
)  # fmt: skip
async def test_filtering_by_a_denied_field_is_refused(
    sec: GraphQLClient, user: str, filter_: str
) -> None:
    query = "{ customers(first: 500, filter: FILTER) { totalCount nodes { id } } }"
    response = await sec.post(user, query.replace("FILTER", filter_))
    assert_clean(response)
    body = response.json()
    assert body["data"] is None or body["data"]["customers"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize(("user", "order"), [("alice", "TOTAL_SPEND"), ("carol", "TOTAL_SPEND")])
async def test_ordering_by_a_denied_field_is_refused(
    sec: GraphQLClient, user: str, order: str
) -> None:
    response = await sec.post(
        user,
        "query($o: CustomerOrderField!) { customers(first: 500, orderBy: {field: $o}) "
        "{ nodes { id } } }",
        {"o": order},
    )
    assert_clean(response)
    body = response.json()
    assert body["data"] is None or body["data"]["customers"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_contact_details_stay_hidden_from_finance_and_partial_roles(
    sec: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    body = await sec.query("carol", "{ contacts(first: 500) { nodes { name phone email } } }")
    nodes = body["data"]["contacts"]["nodes"]
    assert nodes and all(n["email"] is None for n in nodes)
    assert any(n["phone"] for n in nodes)
    assert forbidden_fields(body) == {"Contact.email"}
    body = await sec.query(
        "dave", "{ customers(first: 5) { nodes { contacts { nodes { phone email } } } } }"
    )
    assert all(n["contacts"] is None for n in body["data"]["customers"]["nodes"])
    assert "Customer.contacts" in forbidden_fields(body)
    customer = (await oracle.rows(demo_engine, "SELECT min(id) AS id FROM customers"))[0].id
    body = await sec.query(
        "dave",
        "query($c: ID!) { contacts(first: 500, filter: {customerId: $c}) "
        "{ nodes { phone email } } }",
        {"c": to_global_id("Customer", customer)},
    )
    assert not (body["data"] or {}).get("contacts", {}) or not body["data"]["contacts"]["nodes"]


async def test_id_number_is_readable_by_no_demo_role(sec: GraphQLClient) -> None:
    for user in ("alice", "bob", "carol", "dave", "erin", "frank", "admin"):
        body = await sec.query(user, "{ customers(first: 500) { nodes { idNumber } } }")
        assert all(n["idNumber"] is None for n in body["data"]["customers"]["nodes"])
