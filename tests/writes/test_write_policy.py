"""Every write rule, tried from the side: foreign rows, denied fields, smuggled ownership."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id, to_global_id
from tests.graphql import oracle
from tests.writes.conftest import (
    CREATE_CUSTOMER,
    GraphQLClient,
    company,
    create_customer,
    credit_code,
    error_codes,
    first_error,
)

UPDATE = """mutation($id: ID!, $input: CustomerPatch!) {
  updateCustomer(id: $id, input: $input) { id name level } }"""
ARCHIVE = "mutation($id: ID!) { archiveCustomer(id: $id) { id name } }"
ADD = "mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { role } }"
REMOVE = "mutation($rule: PolicyRuleInput!) { removePolicy(rule: $rule) }"


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def snapshot(engine: AsyncEngine, customer_id: str) -> Any:
    rows = await oracle.rows(
        engine,
        "SELECT name, level, owner_id, department_id, total_spend, version, archived_at "
        "FROM customers WHERE id = :id",
        id=pk(customer_id),
    )
    return tuple(rows[0])


async def test_a_foreign_customer_is_not_found_exactly_like_a_missing_one(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    franks = await create_customer(gql, "frank")
    before = await snapshot(demo_engine, franks["id"])
    missing = to_global_id("Customer", 987654321)
    for target in (franks["id"], missing):
        for query, variables in (
            (UPDATE, {"id": target, "input": {"level": "A"}}),
            (ARCHIVE, {"id": target}),
        ):
            body = await gql.query("alice", query, variables)
            assert error_codes(body) == ["NOT_FOUND"], body
            assert first_error(body)["message"] == "No such customer"
    assert await snapshot(demo_engine, franks["id"]) == before


async def test_a_manager_who_reads_the_subtree_still_cannot_write_it(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alices = await create_customer(gql, "alice")
    body = await gql.query("bob", UPDATE, {"id": alices["id"], "input": {"level": "A"}})
    assert error_codes(body) == ["FORBIDDEN"]  # no UPDATE rule at all: the operation is refused
    assert (await snapshot(demo_engine, alices["id"]))[1] == "C"


async def test_a_field_without_write_permission_fails_the_whole_write(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(gql, "alice")
    before = await snapshot(demo_engine, created["id"])
    for patch, field in (
        ({"level": "A", "totalSpend": "99999.00"}, "Customer.totalSpend"),
        ({"name": "改名测试有限公司", "creditCode": credit_code()}, "Customer.creditCode"),
        ({"idNumber": "11010519491231002X", "level": "B"}, "Customer.idNumber"),
    ):
        body = await gql.query("alice", UPDATE, {"id": created["id"], "input": patch})
        assert error_codes(body) == ["FORBIDDEN"], body
        assert first_error(body)["extensions"]["field"] == field
    assert await snapshot(demo_engine, created["id"]) == before


async def test_create_with_a_denied_field_writes_nothing(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    name = "越权字段测试有限公司"
    body = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": company(name=name, totalSpend="1.00")}
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert first_error(body)["extensions"]["field"] == "Customer.totalSpend"
    assert not await oracle.rows(demo_engine, "SELECT id FROM customers WHERE name = :n", n=name)


async def test_ownership_cannot_be_smuggled_out_of_the_callers_scope(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    frank = to_global_id("User", await oracle.user_id(demo_engine, "frank"))
    north = to_global_id("Department", await oracle.department_id(demo_engine, "华北销售"))
    name = "转移归属测试有限公司"
    body = await gql.query("alice", CREATE_CUSTOMER, {"input": company(name=name, ownerId=frank)})
    assert error_codes(body) == ["FORBIDDEN"]
    assert first_error(body)["extensions"]["field"] == "Customer.owner"
    assert not await oracle.rows(demo_engine, "SELECT id FROM customers WHERE name = :n", n=name)
    created = await create_customer(gql, "alice")
    before = await snapshot(demo_engine, created["id"])
    body = await gql.query("alice", UPDATE, {"id": created["id"], "input": {"ownerId": frank}})
    assert error_codes(body) == ["FORBIDDEN"]
    # moving an account to another team is the manager's call, not the rep's (policy/demo.py)
    moved = await gql.query(
        "alice", UPDATE, {"id": created["id"], "input": {"departmentId": north}}
    )
    assert error_codes(moved) == ["FORBIDDEN"]
    assert first_error(moved)["extensions"]["field"] == "Customer.department"
    after = await snapshot(demo_engine, created["id"])
    assert after == before


async def test_archived_at_version_and_created_at_are_not_inputs(gql: GraphQLClient) -> None:
    created = await create_customer(gql, "alice")
    for smuggled in ("archivedAt: null", "version: 1", 'createdAt: "2020-01-01T00:00:00Z"'):
        query = f"""mutation($id: ID!) {{
          updateCustomer(id: $id, input: {{ {smuggled} }}) {{ id }} }}"""
        body = await gql.query("alice", query, {"id": created["id"]})
        assert error_codes(body) == ["BAD_USER_INPUT"], body  # rejected by the schema itself


async def test_new_customers_belong_to_the_caller_and_their_department(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(gql, "frank")
    rows = await oracle.rows(
        demo_engine,
        "SELECT u.username, d.name FROM customers c JOIN users u ON u.id = c.owner_id "
        "JOIN departments d ON d.id = c.department_id WHERE c.id = :id",
        id=pk(created["id"]),
    )
    assert tuple(rows[0]) == ("frank", "华北销售")


async def test_archived_customers_are_gone_for_readers_and_writers(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    created = await create_customer(gql, "alice")
    body = await gql.query("alice", ARCHIVE, {"id": created["id"]})
    assert body["data"]["archiveCustomer"]["id"] == created["id"], body
    gone = await gql.query("alice", "query($id: ID!) { customer(id: $id) { id } }",
                           {"id": created["id"]})  # fmt: skip
    assert gone["data"]["customer"] is None
    again = await gql.query("alice", UPDATE, {"id": created["id"], "input": {"level": "A"}})
    assert error_codes(again) == ["NOT_FOUND"]
    events = await oracle.rows(
        demo_engine,
        "SELECT action FROM audit_events WHERE resource_type = 'customer' "
        "AND :id = ANY(resource_ids) ORDER BY seq",
        id=str(pk(created["id"])),
    )
    assert [e.action for e in events if e.action != "READ"] == ["CREATE", "ARCHIVE"]


async def test_a_granted_field_rule_opens_exactly_that_field(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    rule = {"role": "sales_rep", "department": "*", "resource": "customer.creditCode",
            "action": "UPDATE", "scope": "OWN", "effect": "ALLOW"}  # fmt: skip
    created = await create_customer(gql, "alice")
    code = credit_code()
    await gql.query("admin", ADD, {"rule": rule})
    try:
        body = await gql.query(
            "alice", UPDATE, {"id": created["id"], "input": {"creditCode": code}}
        )
        assert "errors" not in body, body
        body = await gql.query(
            "alice", UPDATE, {"id": created["id"], "input": {"totalSpend": "5.00"}}
        )
        assert error_codes(body) == ["FORBIDDEN"]
    finally:
        await gql.query("admin", REMOVE, {"rule": rule})
    rows = await oracle.rows(
        demo_engine, "SELECT credit_code FROM customers WHERE id = :id", id=pk(created["id"])
    )
    assert rows[0].credit_code == code
