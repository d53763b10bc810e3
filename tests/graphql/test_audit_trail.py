"""Reads, denials and changes leave audit events; the trail is readable only by compliance."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, error_codes

TRAIL = """query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) {
  totalCount
  nodes { actor actorKind action resourceType resourceIds fields operation hash prevHash } } }"""


async def test_a_read_is_recorded_with_ids_and_fields(gql: GraphQLClient) -> None:
    body = await gql.query(
        "alice", "query Mine { customers(first: 3) { nodes { id name phone } } }"
    )
    ids = {n["id"] for n in body["data"]["customers"]["nodes"]}
    trail = await gql.query("erin", TRAIL, {"f": {"actor": "alice", "action": "READ"}})
    latest = trail["data"]["auditEvents"]["nodes"][0]
    assert latest["resourceType"] == "customer"
    assert set(latest["resourceIds"]) == ids
    assert latest["fields"] == ["name", "phone"]
    assert latest["operation"] == "Mine"
    assert latest["hash"] and latest["prevHash"]


async def test_denied_fields_are_recorded(gql: GraphQLClient) -> None:
    await gql.query("alice", "{ customers(first: 1) { nodes { idNumber } } }")
    trail = await gql.query("erin", TRAIL, {"f": {"actor": "alice", "action": "DENIED"}})
    assert "Customer.idNumber" in trail["data"]["auditEvents"]["nodes"][0]["fields"]


async def test_filter_by_resource_id_finds_who_read_a_customer(gql: GraphQLClient) -> None:
    body = await gql.query("alice", "{ customers(first: 1) { nodes { id } } }")
    customer = body["data"]["customers"]["nodes"][0]["id"]
    trail = await gql.query("erin", TRAIL, {"f": {"resourceId": customer}})
    nodes = trail["data"]["auditEvents"]["nodes"]
    assert nodes and all(customer in n["resourceIds"] for n in nodes)
    assert "alice" in {n["actor"] for n in nodes}


async def test_only_compliance_reads_the_trail_and_reading_it_is_audited(
    gql: GraphQLClient,
) -> None:
    for username in ("alice", "bob", "admin", "dave"):
        body = await gql.query(username, TRAIL)
        assert error_codes(body) == ["FORBIDDEN"]
    await gql.query("erin", TRAIL)
    trail = await gql.query("erin", TRAIL, {"f": {"actor": "erin", "resourceType": "audit"}})
    assert trail["data"]["auditEvents"]["totalCount"] >= 1


async def test_first_over_the_cap_is_bad_input(gql: GraphQLClient) -> None:
    body = await gql.query("erin", "{ auditEvents(first: 501) { totalCount } }")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_a_read_that_cannot_be_audited_is_not_served(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("audit storage unavailable")

    monkeypatch.setattr("api.graphql.append_events", broken)
    response = await gql.post("alice", "{ customers(first: 3) { nodes { name phone } } }")
    assert response.status_code == 503
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "+86" not in response.text


async def test_policy_changes_carry_the_admin_and_the_rule(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    east = await oracle.department_id(demo_engine, "华东销售")
    body = await gql.query(
        "admin",
        "mutation($d: ID!) {"
        ' createDepartment(input: {name: "华南销售", parentId: $d}) { id name } }',
        {"d": to_global_id("Department", east)},
    )
    created = body["data"]["createDepartment"]
    assert created["name"] == "华南销售"
    trail = await gql.query("erin", TRAIL, {"f": {"action": "DEPARTMENT_CHANGE"}})
    event = trail["data"]["auditEvents"]["nodes"][0]
    assert event["actor"] == "admin" and event["resourceIds"] == [created["id"]]


async def test_a_write_outside_the_scope_is_not_found_and_audited_as_denied(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    frank = await oracle.user_id(demo_engine, "frank")
    target = sorted(await oracle.customer_ids(demo_engine, "owner_id = :u", u=frank))[0]
    body = await gql.query(
        "alice",
        "mutation Grab($id: ID!) { updateCustomer(id: $id, input: {level: A}) { id } }",
        {"id": target},
    )
    assert error_codes(body) == ["NOT_FOUND"]
    trail = await gql.query("erin", TRAIL, {"f": {"actor": "alice", "action": "DENIED"}})
    assert "Mutation.updateCustomer" in trail["data"]["auditEvents"]["nodes"][0]["fields"]


async def test_administrative_listings_are_recorded_as_reads(gql: GraphQLClient) -> None:
    await gql.query("admin", "query Lists { users { id } departments { id } partnerTokens { id } }")
    trail = await gql.query("erin", TRAIL, {"f": {"actor": "admin", "action": "READ"}})
    kinds = {n["resourceType"] for n in trail["data"]["auditEvents"]["nodes"]}
    assert {"user", "department"} <= kinds
