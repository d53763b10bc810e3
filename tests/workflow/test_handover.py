"""Handover (离职交接): a thousand customers in one transaction, audited, all or nothing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

TRANSFER = """mutation($from: ID!, $to: ID!, $filter: CustomerFilter) {
  transferCustomers(fromUserId: $from, toUserId: $to, filter: $filter) {
    movedCustomers movedOpportunities movedTickets movedTasks } }"""
ADD = """mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { role } }"""
DEACTIVATE = """mutation($id: ID!, $successor: ID) {
  deactivateUser(id: $id, successorId: $successor) {
    active stillOwned { customers opportunities tickets tasks contracts } } }"""
_serial = itertools.count(1)


async def _leaver(engine: AsyncEngine, customers: int) -> int:
    """A 华北销售 rep owning `customers` customers, each with one open and one won opportunity,
    an open ticket and an open task assigned to the rep."""
    name = f"leaver{next(_serial)}"
    async with engine.begin() as c:
        user = (await c.execute(text(
            "INSERT INTO users (username, password_hash, department_id) SELECT :n, 'x', "
            "department_id FROM users WHERE username = 'frank' RETURNING id"), {"n": name},
        )).scalar_one()  # fmt: skip
        await c.execute(text(
            "INSERT INTO customers (name, owner_id, department_id) SELECT :n || '客户' || g, :u, "
            "(SELECT department_id FROM users WHERE id = :u) FROM generate_series(1, :k) g"),
            {"n": name, "u": user, "k": customers})  # fmt: skip
        for stage in ("PROPOSAL", "WON"):
            await c.execute(text(
                "INSERT INTO opportunities (customer_id, name, stage, owner_id) "
                "SELECT id, 'opp', :s, :u FROM customers WHERE owner_id = :u"),
                {"s": stage, "u": user})  # fmt: skip
        await c.execute(text(
            "INSERT INTO tickets (customer_id, title, assignee_id) "
            "SELECT id, 't', :u FROM customers WHERE owner_id = :u"), {"u": user})  # fmt: skip
        await c.execute(
            text(
                "INSERT INTO tasks (title, due_at, assignee_id, customer_id) "
                "SELECT 'call', now(), :u, id FROM customers WHERE owner_id = :u"
            ),
            {"u": user},
        )
    return int(user)


async def _owned(engine: AsyncEngine, user: int) -> tuple[int, int, int, int]:
    async with engine.connect() as c:
        row = (await c.execute(text(
            "SELECT (SELECT count(*) FROM customers WHERE owner_id = :u), "
            "(SELECT count(*) FROM opportunities WHERE owner_id = :u), "
            "(SELECT count(*) FROM tickets WHERE assignee_id = :u), "
            "(SELECT count(*) FROM tasks WHERE assignee_id = :u)"), {"u": user})).one()  # fmt: skip
    return tuple(row)  # type: ignore[return-value]


async def _user_id(engine: AsyncEngine, username: str) -> int:
    async with engine.connect() as c:
        return int(
            (
                await c.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
            ).scalar_one()
        )


@pytest.fixture
async def managers_hand_over(gql: GraphQLClient) -> None:
    """The demo manager reads its subtree; for handovers it needs the owner field to write."""
    for resource in ("customer", "customer.owner"):
        body = await gql.query("admin", ADD, {"rule": {
            "role": "sales_manager", "department": "*", "resource": resource,
            "action": "UPDATE", "scope": "SUBTREE", "effect": "ALLOW"}})  # fmt: skip
        assert "errors" not in body, body


def _ids(source: int, target: int) -> dict[str, Any]:
    return {"from": to_global_id("User", source), "to": to_global_id("User", target)}


async def test_a_thousand_customers_move_in_one_transaction_with_their_open_work(
    gql: GraphQLClient, demo_engine: AsyncEngine, managers_hand_over: None
) -> None:
    leaver = await _leaver(demo_engine, 1000)
    frank = await _user_id(demo_engine, "frank")
    before = await _owned(demo_engine, frank)
    # a rep may not write owners at all
    body = await gql.query("alice", TRANSFER, _ids(leaver, frank))
    assert "Customer.owner" in forbidden_fields(body)
    assert await _owned(demo_engine, leaver) == (1000, 2000, 1000, 1000)

    response = await gql.post("bob", TRANSFER, _ids(leaver, frank))
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["transferCustomers"] == {
        "movedCustomers": 1000, "movedOpportunities": 1000, "movedTickets": 1000,
        "movedTasks": 1000}  # fmt: skip
    assert int(response.headers["x-sql-statements"]) < 25  # set-based, not a round trip each
    # the won opportunities stay with whoever won them
    assert await _owned(demo_engine, leaver) == (0, 1000, 0, 0)
    after = await _owned(demo_engine, frank)
    assert after == (before[0] + 1000, before[1] + 1000, before[2] + 1000, before[3] + 1000)
    async with demo_engine.connect() as c:
        events = (await c.execute(text(
            "SELECT resource_type, cardinality(resource_ids), changes FROM audit_events "
            "WHERE actor = 'bob' AND action = 'UPDATE' AND changes::text LIKE :m "
            "ORDER BY seq DESC LIMIT 4"), {"m": f'%"old": {leaver}%'})).all()  # fmt: skip
    assert sorted((e[0], e[1]) for e in events) == [
        ("customer", 1000),
        ("opportunity", 1000),
        ("task", 1000),
        ("ticket", 1000),
    ]


async def test_a_handover_that_fails_midway_moves_nothing(
    gql: GraphQLClient, demo_engine: AsyncEngine, managers_hand_over: None
) -> None:
    leaver = await _leaver(demo_engine, 1000)
    frank = await _user_id(demo_engine, "frank")
    # an invalid target: refused before anything moves
    async with demo_engine.begin() as c:
        gone = (await c.execute(text(
            "INSERT INTO users (username, password_hash, department_id, is_active) "
            "SELECT 'gone' || :n, 'x', department_id, false FROM users WHERE username = 'frank' "
            "RETURNING id"), {"n": str(next(_serial))})).scalar_one()  # fmt: skip
    body = await gql.query("bob", TRANSFER, _ids(leaver, gone))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    # a failure after the customers, opportunities and tickets moved: the tasks refuse
    async with demo_engine.begin() as c:
        await c.execute(
            text(
                "CREATE FUNCTION refuse_task_move() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
            )
        )
        await c.execute(text(
            "CREATE TRIGGER refuse_task_move BEFORE UPDATE OF assignee_id ON tasks "
            "FOR EACH ROW EXECUTE FUNCTION refuse_task_move()"))  # fmt: skip
    try:
        body = await gql.query("bob", TRANSFER, _ids(leaver, frank))
    finally:
        async with demo_engine.begin() as c:
            await c.execute(text("DROP TRIGGER refuse_task_move ON tasks"))
            await c.execute(text("DROP FUNCTION refuse_task_move()"))
    assert error_codes(body) == ["INTERNAL"], body
    assert await _owned(demo_engine, leaver) == (1000, 2000, 1000, 1000)
    async with demo_engine.connect() as c:
        named = (await c.execute(text(
            "SELECT count(*) FROM audit_events WHERE action = 'UPDATE' AND changes::text LIKE :m"),
            {"m": f'%"old": {leaver}%'})).scalar_one()  # fmt: skip
    assert named == 0  # no event without its change


async def test_a_filtered_handover_moves_only_the_matching_customers(
    gql: GraphQLClient, demo_engine: AsyncEngine, managers_hand_over: None
) -> None:
    leaver = await _leaver(demo_engine, 20)
    frank = await _user_id(demo_engine, "frank")
    async with demo_engine.begin() as c:
        await c.execute(text("UPDATE customers SET level = 'A' WHERE owner_id = :u AND id % 2 = 0"),
                        {"u": leaver})  # fmt: skip
    body = await gql.query("bob", TRANSFER, {**_ids(leaver, frank), "filter": {"level": "A"}})
    assert body["data"]["transferCustomers"]["movedCustomers"] == 10, body
    assert (await _owned(demo_engine, leaver))[0] == 10


async def test_deactivating_with_a_successor_moves_everything_atomically(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    leaver = await _leaver(demo_engine, 5)
    frank = await _user_id(demo_engine, "frank")
    body = await gql.query("admin", DEACTIVATE, {"id": to_global_id("User", leaver)})
    assert body["data"]["deactivateUser"] == {
        "active": False,
        "stillOwned": {
            "customers": 5,
            "opportunities": 5,
            "tickets": 5,
            "tasks": 5,
            "contracts": 0,
        },
    }, body
    # the successor must be active; nothing moves when it is not
    body = await gql.query(
        "admin",
        DEACTIVATE,
        {"id": to_global_id("User", leaver), "successor": to_global_id("User", leaver)},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await gql.query(
        "admin",
        DEACTIVATE,
        {"id": to_global_id("User", leaver), "successor": to_global_id("User", frank)},
    )
    assert body["data"]["deactivateUser"]["stillOwned"] == {
        "customers": 0,
        "opportunities": 0,
        "tickets": 0,
        "tasks": 0,
        "contracts": 0,
    }, body
    assert await _owned(demo_engine, leaver) == (0, 5, 0, 0)  # won deals stay
    # a rep cannot deactivate anyone
    body = await gql.query("alice", DEACTIVATE, {"id": to_global_id("User", leaver)})
    assert error_codes(body) == ["FORBIDDEN"]
