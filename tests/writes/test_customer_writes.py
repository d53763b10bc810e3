"""createCustomer / updateCustomer / archiveCustomer through HTTP as the demo users."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql import oracle
from tests.writes.conftest import (
    CREATE_CUSTOMER,
    GraphQLClient,
    company,
    create_customer,
    error_codes,
    first_error,
)

UPDATE = """
mutation($id: ID!, $input: CustomerPatch!, $v: Int, $at: DateTime, $force: Boolean) {
  updateCustomer(id: $id, input: $input, expectedVersion: $v, expectedUpdatedAt: $at,
                 force: $force) { id name region phone email level updatedAt }
}"""


async def test_sales_rep_creates_a_customer_she_owns_with_canonical_values(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(
        gql, "alice", region="Shanghai", phone="138 0013 8000", email="Buyer@Example.COM",
        tags=["重点客户"],
    )  # fmt: skip
    assert created["region"] == "上海"
    assert created["phone"] == "+8613800138000"
    assert created["email"] == "Buyer@example.com"
    assert created["owner"]["username"] == "alice"
    assert created["level"] == "C" and created["tags"] == ["重点客户"]
    pk = int(created["id"] and (await _pk(created["id"])))
    stored = await oracle.rows(
        demo_engine,
        "SELECT c.phone_enc, c.version, d.name AS department FROM customers c "
        "JOIN departments d ON d.id = c.department_id WHERE c.id = :id",
        id=pk,
    )
    assert "13800138000" not in stored[0].phone_enc  # encrypted at rest
    assert stored[0].version == 1 and stored[0].department == "华东销售"
    events = await oracle.rows(
        demo_engine,
        "SELECT actor, changes FROM audit_events WHERE action = 'CREATE' "
        "AND resource_type = 'customer' AND :id = ANY(resource_ids)",
        id=str(pk),
    )
    assert events[0].actor == "alice"
    assert events[0].changes["phone"] == {"old": None, "new": "138****8000"}
    assert events[0].changes["region"]["new"] == "上海"


async def _pk(global_id: str) -> int:
    from schema.node import from_global_id

    return int(from_global_id(global_id)[1])


async def test_every_bad_field_is_reported_at_once_and_nothing_is_written(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    name = "坏输入测试有限公司"
    body = await gql.query(
        "alice",
        CREATE_CUSTOMER,
        {"input": company(name=name, region="Atlantis", email="not-an-email", phone="12")},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    errors = first_error(body)["extensions"]["errors"]
    assert {e["field"] for e in errors} == {"region", "email", "phone"}
    region = next(e for e in errors if e["field"] == "region")
    assert region["rule"] == "vocabulary" and region["suggestions"]
    assert not await oracle.rows(demo_engine, "SELECT id FROM customers WHERE name = :n", n=name)


async def test_company_needs_industry_and_region(gql: GraphQLClient) -> None:
    body = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": {"name": "缺字段测试有限公司", "kind": "COMPANY"}}
    )
    fields = {e["field"] for e in first_error(body)["extensions"]["errors"]}
    assert fields == {"industry", "region"}


async def test_roles_without_create_rights_are_refused(gql: GraphQLClient) -> None:
    for username in ("bob", "carol", "dave", "erin", "admin"):
        body = await gql.query(username, CREATE_CUSTOMER, {"input": company()})
        assert error_codes(body) == ["FORBIDDEN"], (username, body)
        assert body["data"]["createCustomer"] is None


async def test_update_bumps_version_and_a_stale_write_is_a_conflict(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(gql, "alice")
    first = await gql.query("alice", UPDATE, {"id": created["id"], "input": {"level": "B"}, "v": 1})
    assert first["data"]["updateCustomer"]["level"] == "B", first
    stale = await gql.query("alice", UPDATE, {"id": created["id"], "input": {"level": "A"}, "v": 1})
    assert error_codes(stale) == ["CONFLICT"]
    assert first_error(stale)["extensions"]["currentVersion"] == 2
    by_time = await gql.query(
        "alice",
        UPDATE,
        {"id": created["id"], "input": {"level": "A"}, "at": created["updatedAt"]},
    )
    assert error_codes(by_time) == ["CONFLICT"]
    fresh = await gql.query(
        "alice",
        UPDATE,
        {"id": created["id"], "input": {"level": "A"},
         "at": first["data"]["updateCustomer"]["updatedAt"]},
    )  # fmt: skip
    assert fresh["data"]["updateCustomer"]["level"] == "A", fresh
    rows = await oracle.rows(
        demo_engine, "SELECT level, version FROM customers WHERE id = :id",
        id=await _pk(created["id"]),
    )  # fmt: skip
    assert (rows[0].level, rows[0].version) == ("A", 3)


async def test_two_simultaneous_writes_of_one_version_cannot_both_win(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(gql, "alice")
    results = await asyncio.gather(
        gql.query("alice", UPDATE, {"id": created["id"], "input": {"level": "A"}, "v": 1}),
        gql.query("alice", UPDATE, {"id": created["id"], "input": {"level": "B"}, "v": 1}),
    )
    codes = sorted(tuple(error_codes(body)) for body in results)
    assert codes == [(), ("CONFLICT",)], results
    winner = next(body for body in results if "errors" not in body)
    rows = await oracle.rows(
        demo_engine, "SELECT level, version FROM customers WHERE id = :id",
        id=await _pk(created["id"]),
    )  # fmt: skip
    assert rows[0].level == winner["data"]["updateCustomer"]["level"] and rows[0].version == 2
