"""Contracts, payments, tasks and the timeline under the demo policies; reminders exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from resolvers.reminders import run_reminders
from schema.node import to_global_id
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

TODAY = datetime.now(UTC).date()

CREATE_CONTRACT = """
mutation($input: ContractInput!) {
  createContract(input: $input) { id title amount owner { username } }
}"""
RECORD_PAYMENT = """
mutation($input: PaymentInput!) { recordPayment(input: $input) { id amount status } }"""
CREATE_INTERACTION = """
mutation($input: InteractionInput!) { createInteraction(input: $input) { id } }"""


async def _customer_of(engine: AsyncEngine, username: str) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text(
            "SELECT c.id FROM customers c JOIN users u ON u.id = c.owner_id "
            "WHERE u.username = :u AND c.archived_at IS NULL ORDER BY c.id LIMIT 1"
        ), {"u": username})).scalar_one())  # fmt: skip


async def _reminders(engine: AsyncEngine, kind: str, source: int) -> list[Any]:
    async with engine.connect() as c:
        return list((await c.execute(text(
            "SELECT t.id, t.status, u.username FROM tasks t "
            "JOIN users u ON u.id = t.assignee_id WHERE t.kind = :k AND t.source_id = :s"),
            {"k": kind, "s": source})).all())  # fmt: skip


async def _contract(gql: GraphQLClient, customer: int, ends_on: date) -> dict[str, Any]:
    body = await gql.query("bob", CREATE_CONTRACT, {"input": {
        "customerId": to_global_id("Customer", customer), "title": "年度服务合同",
        "amount": "120000.00", "startsOn": str(ends_on - timedelta(days=365)),
        "endsOn": str(ends_on)}})  # fmt: skip
    assert "errors" not in body, body
    return body["data"]["createContract"]  # type: ignore[no-any-return]


async def test_contract_amount_is_a_finance_field_across_roles_and_paths(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    contract = await _contract(gql, customer, TODAY + timedelta(days=200))
    assert contract["amount"] == "120000.00" and contract["owner"]["username"] == "alice"
    cid = contract["id"]
    fragment = (
        """query($id: ID!) { node(id: $id) { ... on Contract { title a: amount endsOn } } }"""
    )
    for user, sees_row, sees_amount in (
        ("alice", True, False), ("frank", False, False), ("bob", True, True),
        ("dave", True, True), ("carol", False, False),
    ):  # fmt: skip
        body = await gql.query(user, fragment, {"id": cid})
        node = body["data"]["node"]
        assert (node is not None) is sees_row, (user, body)
        if sees_row:
            assert (node["a"] is not None) is sees_amount, (user, body)
            assert ("Contract.amount" in forbidden_fields(body)) is not sees_amount
        # nested under the customer, and through the root list with a filter
        nested = await gql.query(user, """query($c: ID!) { customer(id: $c) {
            contracts { nodes { id amount payments { totalCount } } } } }""",
            {"c": to_global_id("Customer", customer)})  # fmt: skip
        found = nested["data"]["customer"]
        ids = [] if found is None or found["contracts"] is None else [
            n["id"] for n in found["contracts"]["nodes"]]  # fmt: skip
        assert (cid in ids) is sees_row, (user, nested)
        listed = await gql.query(
            user,
            """query($c: ID!) { contracts(filter: {customerId: $c}) {
            totalCount nodes { id amount } } }""",
            {"c": to_global_id("Customer", customer)},
        )
        if listed["data"] is None:  # no contract rule at all: filtering by one is refused
            assert user == "carol" and error_codes(listed) == ["FORBIDDEN"], (user, listed)
            continue
        assert (cid in [n["id"] for n in listed["data"]["contracts"]["nodes"]]) is sees_row
        if sees_row and not sees_amount:
            assert all(n["amount"] is None for n in listed["data"]["contracts"]["nodes"])
    # a rep cannot write the amount, and another rep's customer does not exist for her
    body = await gql.query("alice", CREATE_CONTRACT, {"input": {
        "customerId": to_global_id("Customer", customer), "title": "x", "amount": "1",
        "startsOn": str(TODAY), "endsOn": str(TODAY)}})  # fmt: skip
    assert error_codes(body) == ["FORBIDDEN"] and "Contract.amount" in forbidden_fields(body)
    other = await _customer_of(demo_engine, "frank")
    body = await gql.query("alice", """mutation($c: ID!) { createTask(input: {title: "t",
        dueAt: "2030-01-01T00:00:00+00:00", customerId: $c}) { id } }""",
        {"c": to_global_id("Customer", other)})  # fmt: skip
    assert error_codes(body) == ["NOT_FOUND"]


async def test_each_reminder_kind_is_created_once_in_the_write_or_by_the_scheduler(
    gql: GraphQLClient, demo_engine: AsyncEngine, demo_settings: Any
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    # written inside its window: the renewal task exists at once, for the owner
    soon = await _contract(gql, customer, TODAY + timedelta(days=10))
    soon_pk = _from_gid(soon["id"])
    assert [r.username for r in await _reminders(demo_engine, "CONTRACT_RENEWAL", soon_pk)] == [
        "alice"
    ]
    # outside its window: nothing yet; the scheduler creates it once it enters the window
    later = await _contract(gql, customer, TODAY + timedelta(days=45))
    later_pk = _from_gid(later["id"])
    assert await _reminders(demo_engine, "CONTRACT_RENEWAL", later_pk) == []
    body = await gql.query(
        "dave",
        RECORD_PAYMENT,
        {
            "input": {
                "contractId": later["id"],
                "amount": "5000.00",
                "dueOn": str(TODAY - timedelta(days=3)),
            }
        },
    )
    assert "errors" not in body and body["data"]["recordPayment"]["status"] == "OVERDUE", body
    payment = _from_gid(body["data"]["recordPayment"]["id"])
    assert len(await _reminders(demo_engine, "PAYMENT_DUE", payment)) == 1
    body = await gql.query(
        "alice",
        CREATE_INTERACTION,
        {
            "input": {
                "customerId": to_global_id("Customer", customer),
                "channel": "CALL",
                "summary": "约下周再谈",
                "nextFollowUpOn": str(TODAY + timedelta(days=2)),
            }
        },
    )
    assert "errors" not in body, body
    follow_up = _from_gid(body["data"]["createInteraction"]["id"])
    assert await _reminders(demo_engine, "FOLLOW_UP", follow_up) == []

    # the scheduler, three days later: the follow-up is due; the renewal 45 days out is not
    at = datetime.now(UTC) + timedelta(days=3)
    first = await run_reminders(demo_engine, at)
    assert first.follow_ups >= 1
    assert len(await _reminders(demo_engine, "FOLLOW_UP", follow_up)) == 1
    assert await _reminders(demo_engine, "CONTRACT_RENEWAL", later_pk) == []
    # run again, twice at once from two engines (two processes' pools), and after a
    # "restart" (a fresh engine) 20 days on: each record still has exactly one task
    again = await run_reminders(demo_engine, at)
    assert again.total == 0
    later_at = datetime.now(UTC) + timedelta(days=20)
    engines = [create_engine(demo_settings.database_url, demo_settings.pool) for _ in range(2)]
    try:
        results = await asyncio.gather(*(run_reminders(e, later_at) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(r.renewals for r in results) >= 1
    for kind, source in (("CONTRACT_RENEWAL", soon_pk), ("CONTRACT_RENEWAL", later_pk),
                         ("PAYMENT_DUE", payment), ("FOLLOW_UP", follow_up)):  # fmt: skip
        found = await _reminders(demo_engine, kind, source)
        assert len(found) == 1 and found[0].status == "OPEN", (kind, found)
    assert (await run_reminders(demo_engine, later_at)).total == 0
    # the tasks were created by the SYSTEM actor, audited in the same transaction
    async with demo_engine.connect() as c:
        audited = (await c.execute(text(
            "SELECT count(*) FROM audit_events WHERE actor_kind = 'SYSTEM' "
            "AND resource_type = 'task' AND action = 'CREATE' AND :id = ANY(resource_ids)"),
            {"id": str((await _reminders(demo_engine, "FOLLOW_UP", follow_up))[0].id)},
        )).scalar_one()  # fmt: skip
    assert audited == 1
    # the renewal task is alice's: she sees it with `mine`, frank does not
    mine = await gql.query("alice", """{ tasks(filter: {mine: true, kind: CONTRACT_RENEWAL}) {
        nodes { kind status customer { id } } } }""")  # fmt: skip
    assert mine["data"]["tasks"]["nodes"], mine
    theirs = await gql.query(
        "frank",
        "query($c: ID!) { tasks(filter: {customerId: $c}) { totalCount } }",
        {"c": to_global_id("Customer", customer)},
    )
    assert theirs["data"]["tasks"]["totalCount"] == 0


def _from_gid(global_id: str) -> int:
    from schema.node import from_global_id

    return int(from_global_id(global_id)[1])


async def test_timeline_never_shows_an_item_its_reader_may_not_see(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    contract = await _contract(gql, customer, TODAY + timedelta(days=300))
    body = await gql.query("dave", RECORD_PAYMENT, {"input": {
        "contractId": contract["id"], "amount": "100.00", "dueOn": str(TODAY),
        "paidOn": str(TODAY)}})  # fmt: skip
    assert "errors" not in body, body
    query = """query($c: ID!) { customer(id: $c) { timeline(first: 200) { totalCount
        nodes { kind at stageChange { from to } node { id ... on Payment { amount }
        ... on Interaction { summary } ... on Ticket { title } } } } } }"""
    kinds_of: dict[str, set[str]] = {}
    for user in ("alice", "bob", "carol", "dave", "frank"):
        body = await gql.query(user, query, {"c": to_global_id("Customer", customer)})
        found = body["data"]["customer"]
        if found is None:
            kinds_of[user] = set()
            continue
        nodes = found["timeline"]["nodes"]
        assert all(n["node"] is not None for n in nodes), (user, nodes)  # never a hidden record
        ats = [n["at"] for n in nodes]
        assert ats == sorted(ats, reverse=True)
        kinds_of[user] = {n["kind"] for n in nodes}
    assert kinds_of["frank"] == set()
    assert {"CONTRACT", "PAYMENT"} <= kinds_of["alice"]
    # carol serves tickets: no follow-ups, contracts, payments or opportunities
    assert kinds_of["carol"] <= {"TICKET"}
    # finance: money and stages, no follow-ups or tickets
    assert "INTERACTION" not in kinds_of["dave"] and "TICKET" not in kinds_of["dave"]
    assert "PAYMENT" in kinds_of["dave"]
    # pages follow each other: two and the next two are the first four
    paged = """query($c: ID!, $n: Int, $a: String) { customer(id: $c) { timeline(first: $n,
        after: $a) { pageInfo { endCursor hasNextPage } nodes { kind node { id } } } } }"""
    gid = to_global_id("Customer", customer)

    async def page(n: int, after: str | None = None) -> dict[str, Any]:
        body = await gql.query("alice", paged, {"c": gid, "n": n, "a": after})
        return body["data"]["customer"]["timeline"]  # type: ignore[no-any-return]

    four, two = await page(4), await page(2)
    rest = await page(2, two["pageInfo"]["endCursor"])
    assert two["pageInfo"]["hasNextPage"] is True
    assert two["nodes"] + rest["nodes"] == four["nodes"]


async def test_stage_history_and_new_children_cost_no_statements_per_row(
    gql: GraphQLClient,
) -> None:
    query = """query($n: Int) { customers(first: $n) { nodes { id
        contracts { nodes { id payments { nodes { id } } } } tasks { totalCount }
        timeline(first: 5) { nodes { kind node { id } } }
        opportunities { nodes { stageHistory { from to at } } } } } }"""
    counts = []
    for n in (2, 40):
        response = await gql.post("bob", query, {"n": n})
        assert "errors" not in response.json(), response.json()
        counts.append(int(response.headers["x-sql-statements"]))
    assert counts[0] == counts[1], counts


async def test_attention_names_expiring_contracts_and_overdue_payments_in_scope(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    contract = await _contract(gql, customer, TODAY + timedelta(days=5))
    body = await gql.query(
        "dave",
        RECORD_PAYMENT,
        {
            "input": {
                "contractId": contract["id"],
                "amount": "10.00",
                "dueOn": str(TODAY - timedelta(days=1)),
            }
        },
    )
    assert "errors" not in body, body
    query = """{ attention(first: 500) { withheldReasons nodes { reasons contractEndsOn
        overduePayments customer { id } } } }"""
    gid = to_global_id("Customer", customer)
    for user, expected in (
        ("alice", {"CONTRACT_EXPIRING", "PAYMENT_OVERDUE"}),
        ("bob", {"CONTRACT_EXPIRING", "PAYMENT_OVERDUE"}),
        ("frank", None),
    ):
        body = await gql.query(user, query)
        assert "errors" not in body, (user, body)
        mine = [n for n in body["data"]["attention"]["nodes"] if n["customer"]["id"] == gid]
        if expected is None:
            assert mine == []
            continue
        (item,) = mine
        assert expected <= set(item["reasons"]), (user, item)
        assert item["contractEndsOn"] is not None and item["overduePayments"] >= 1


async def test_leaderboard_counts_contract_value_signed_and_amount_collected(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    contract = await _contract(gql, customer, TODAY + timedelta(days=365))  # starts today
    body = await gql.query("dave", RECORD_PAYMENT, {"input": {
        "contractId": contract["id"], "amount": "700.00", "dueOn": str(TODAY),
        "paidOn": str(TODAY)}})  # fmt: skip
    assert "errors" not in body, body
    query = """{ leaderboard(period: LAST_7_DAYS) { entries { owner { username }
        contractValueSigned amountCollected } } }"""
    body = await gql.query("bob", query)
    assert "errors" not in body, body
    (alice,) = [e for e in body["data"]["leaderboard"]["entries"]
                if e["owner"] and e["owner"]["username"] == "alice"]  # fmt: skip
    assert float(alice["contractValueSigned"]) >= 120000 and float(alice["amountCollected"]) >= 700
    # a rep does not read amounts: the sums are null and FORBIDDEN says why
    body = await gql.query("alice", query)
    assert "Contract.amount" in forbidden_fields(body)
    assert all(e["contractValueSigned"] is None for e in body["data"]["leaderboard"]["entries"])
    # without the money columns asked for, nothing changes for her
    plain = await gql.query("alice", "{ leaderboard { entries { wonCount } } }")
    assert "errors" not in plain


async def test_a_passed_date_turns_a_payment_overdue_and_a_contract_expired_once(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    """Recorded while still ahead, then the date passes: the pass flips each status once,
    audited as a SYSTEM change; a pass pretending a later day expires nothing early."""
    customer = await _customer_of(demo_engine, "alice")
    contract = _from_gid((await _contract(gql, customer, TODAY + timedelta(days=300)))["id"])
    ending = _from_gid((await _contract(gql, customer, TODAY + timedelta(days=5)))["id"])
    async with demo_engine.begin() as c:  # as if both were recorded weeks ago
        payment = (await c.execute(text(
            "INSERT INTO payments (contract_id, customer_id, amount, due_on, status) "
            "VALUES (:k, :c, 10.00, :due, 'PLANNED') RETURNING id"),
            {"k": contract, "c": customer, "due": TODAY - timedelta(days=1)},
        )).scalar_one()  # fmt: skip
        await c.execute(text("UPDATE contracts SET ends_on = :d WHERE id = :k"),
                        {"d": TODAY - timedelta(days=1), "k": ending})  # fmt: skip
    ahead = await _contract(gql, customer, TODAY + timedelta(days=3))
    ahead_pk = _from_gid(ahead["id"])

    first = await run_reminders(demo_engine, datetime.now(UTC) + timedelta(days=10))
    assert first.payments_marked_overdue >= 1 and first.contracts_expired >= 1
    again = await run_reminders(demo_engine)
    assert (again.payments_marked_overdue, again.contracts_expired) == (0, 0)

    async with demo_engine.connect() as c:
        statuses = dict((await c.execute(text(
            "SELECT 'payment', status FROM payments WHERE id = :p UNION ALL "
            "SELECT 'ending', status FROM contracts WHERE id = :e UNION ALL "
            "SELECT 'ahead', status FROM contracts WHERE id = :a"),
            {"p": payment, "e": ending, "a": ahead_pk})).all())  # fmt: skip
        audited = (await c.execute(text(
            "SELECT resource_type, changes FROM audit_events WHERE actor_kind = 'SYSTEM' "
            "AND action = 'UPDATE' AND (:p = ANY(resource_ids) AND resource_type = 'payment' "
            "OR :e = ANY(resource_ids) AND resource_type = 'contract')"),
            {"p": str(payment), "e": str(ending)})).all()  # fmt: skip
    assert statuses == {"payment": "OVERDUE", "ending": "EXPIRED", "ahead": "ACTIVE"}
    assert sorted(r.resource_type for r in audited) == ["contract", "payment"]
    assert all(r.changes["status"]["new"] in ("OVERDUE", "EXPIRED") for r in audited)
    node = "query($id: ID!) { node(id: $id) { ... on Payment { status } } }"
    body = await gql.query("dave", node, {"id": to_global_id("Payment", payment)})
    assert body["data"]["node"]["status"] == "OVERDUE", body
