"""Row and field rules on tasks and payments, tried around: nesting, aliases, fragments,
filters and `node(id)`, for a rep, another rep, a manager, service and finance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

TODAY = datetime.now(UTC).date()
CREATE_TASK = """mutation($input: TaskInput!) { createTask(input: $input) {
  id title kind status assignee { username } customer { id } } }"""


async def _customer_of(engine: AsyncEngine, username: str) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text(
            "SELECT c.id FROM customers c JOIN users u ON u.id = c.owner_id "
            "WHERE u.username = :u AND c.archived_at IS NULL ORDER BY c.id LIMIT 1"
        ), {"u": username})).scalar_one())  # fmt: skip


async def _task(gql: GraphQLClient, user: str, **input: object) -> dict[str, object]:
    body = await gql.query(user, CREATE_TASK, {"input": {
        "title": "回访客户", "dueAt": "2030-01-01T09:00:00+08:00", **input}})  # fmt: skip
    assert "errors" not in body, body
    return body["data"]["createTask"]  # type: ignore[no-any-return]


async def test_a_task_is_seen_by_those_who_see_its_customer_and_by_its_assignee(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alices = to_global_id("Customer", await _customer_of(demo_engine, "alice"))
    on_customer = await _task(gql, "alice", customerId=alices)
    assert on_customer["assignee"]["username"] == "alice" and on_customer["kind"] == "CUSTOM"
    personal = await _task(gql, "frank", title="整理名片")  # no customer: only frank's
    # bob assigns a task on alice's customer to carol (service): carol sees it as her own
    carol_id = await _user(demo_engine, "carol")
    for_carol = await _task(
        gql, "bob", customerId=alices, assigneeId=to_global_id("User", carol_id)
    )
    query = """query($a: ID!, $b: ID!, $c: ID!) {
      one: node(id: $a) { ...T } two: node(id: $b) { ...T } three: node(id: $c) { ...T } }
      fragment T on Task { title assignee { username } }"""
    ids = {"a": on_customer["id"], "b": personal["id"], "c": for_carol["id"]}
    seen = {}
    for user in ("alice", "frank", "bob", "carol", "dave"):
        data = (await gql.query(user, query, ids))["data"]
        seen[user] = {key for key, node in data.items() if node is not None}
    assert seen["alice"] == {"one", "three"}  # her customer's tasks, whoever holds them
    assert seen["frank"] == {"two"}  # his own, nothing of alice's customers
    assert seen["bob"] == {"one", "three"}  # his subtree's customers; not frank's own note
    assert seen["carol"] >= {"three"}  # service holds tasks on the customers it serves
    assert seen["dave"] == set()  # finance holds no task rule
    # the same through the root list, a filter and nesting under the customer
    listed = await gql.query("frank", "query($c: ID!) { tasks(filter: {customerId: $c}) {"
                             " totalCount } }", {"c": alices})  # fmt: skip
    assert listed["data"]["tasks"]["totalCount"] == 0
    nested = await gql.query("alice", """query($c: ID!) { customer(id: $c) {
        t: tasks(first: 100) { nodes { id } } } }""", {"c": alices})  # fmt: skip
    assert {on_customer["id"], for_carol["id"]} <= {
        n["id"] for n in nested["data"]["customer"]["t"]["nodes"]}  # fmt: skip
    mine = await gql.query("carol", "{ tasks(filter: {mine: true}) { nodes { id } } }")
    assert for_carol["id"] in [n["id"] for n in mine["data"]["tasks"]["nodes"]]
    # frank cannot complete alice's task: it does not exist for him
    body = await gql.query("frank", "mutation($id: ID!) { completeTask(id: $id) { status } }",
                           {"id": on_customer["id"]})  # fmt: skip
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql.query("carol", """mutation($id: ID!) { completeTask(id: $id) {
        status completedAt } }""", {"id": for_carol["id"]})  # fmt: skip
    assert body["data"]["completeTask"]["status"] == "DONE", body
    assert body["data"]["completeTask"]["completedAt"] is not None
    async with demo_engine.connect() as c:
        changes = (await c.execute(text(
            "SELECT changes FROM audit_events WHERE actor = 'carol' AND resource_type = 'task' "
            "AND action = 'UPDATE' ORDER BY seq DESC LIMIT 1"))).scalar_one()  # fmt: skip
    assert changes["status"] == {"old": "OPEN", "new": "DONE"}


async def _user(engine: AsyncEngine, username: str) -> int:
    async with engine.connect() as c:
        return int(
            (
                await c.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
            ).scalar_one()
        )


async def test_payment_amounts_are_hidden_from_reps_through_every_path(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await _customer_of(demo_engine, "alice")
    body = await gql.query("bob", """mutation($c: ID!) { createContract(input: {customerId: $c,
        title: "维保合同", amount: "9000.00", startsOn: "2026-01-01", endsOn: "2027-06-30"})
        { id } }""", {"c": to_global_id("Customer", customer)})  # fmt: skip
    contract = body["data"]["createContract"]["id"]
    body = await gql.query("dave", """mutation($k: ID!) { recordPayment(input: {contractId: $k,
        amount: "3000.00", dueOn: "2026-02-01", paidOn: "2026-02-03"}) { id amount status } }""",
        {"k": contract})  # fmt: skip
    payment = body["data"]["recordPayment"]
    assert payment["status"] == "PAID" and payment["amount"] == "3000.00"
    query = """query($k: ID!, $p: ID!) {
      contract: node(id: $k) { ... on Contract { payments { nodes { money: amount paidOn } } } }
      payment: node(id: $p) { ... on Payment { amount contract { title } } } }"""
    for user, sees_rows, sees_amount in (
        ("alice", True, False), ("bob", True, True), ("dave", True, True),
        ("frank", False, False), ("carol", False, False),
    ):  # fmt: skip
        body = await gql.query(user, query, {"k": contract, "p": payment["id"]})
        data = body["data"]
        assert (data["payment"] is not None) is sees_rows, (user, body)
        if not sees_rows:
            continue
        (nested,) = data["contract"]["payments"]["nodes"]
        assert nested["paidOn"] == "2026-02-03"
        assert (nested["money"] is not None) is sees_amount, (user, body)
        assert (data["payment"]["amount"] is not None) is sees_amount
        assert ("Payment.amount" in forbidden_fields(body)) is not sees_amount
    # a rep records no payment with an amount she may not write
    body = await gql.query("alice", """mutation($k: ID!) { recordPayment(input: {contractId: $k,
        amount: "1.00", dueOn: "2026-03-01"}) { id } }""", {"k": contract})  # fmt: skip
    assert error_codes(body) == ["FORBIDDEN"] and "Payment.amount" in forbidden_fields(body)
    # and nobody records one on a contract they cannot see
    body = await gql.query("frank", """mutation($k: ID!) { recordPayment(input: {contractId: $k,
        amount: "1.00", dueOn: "2026-03-01"}) { id } }""", {"k": contract})  # fmt: skip
    assert error_codes(body) == ["NOT_FOUND"]


async def test_update_interaction_audits_old_and_new_values(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = to_global_id("Customer", await _customer_of(demo_engine, "alice"))
    body = await gql.query(
        "alice",
        """mutation($c: ID!, $at: DateTime) { createInteraction(input: {
        customerId: $c, channel: CALL, summary: "初次电话", occurredAt: $at}) { id } }""",
        {"c": customer, "at": (datetime.now(UTC) - timedelta(days=3)).isoformat()},
    )
    interaction = body["data"]["createInteraction"]["id"]
    due = str(TODAY - timedelta(days=1))
    body = await gql.query("alice", """mutation($id: ID!, $d: Date) { updateInteraction(id: $id,
        input: {summary: "二次电话，已报价", nextFollowUpOn: $d}) { summary nextFollowUpOn } }""",
        {"id": interaction, "d": due})  # fmt: skip
    assert body["data"]["updateInteraction"] == {"summary": "二次电话，已报价",
                                                 "nextFollowUpOn": due}, body  # fmt: skip
    async with demo_engine.connect() as c:
        changes = (await c.execute(text(
            "SELECT changes FROM audit_events WHERE actor = 'alice' "
            "AND resource_type = 'interaction' AND action = 'UPDATE' ORDER BY seq DESC LIMIT 1"
        ))).scalar_one()  # fmt: skip
        reminders = (await c.execute(text(
            "SELECT count(*) FROM tasks WHERE kind = 'FOLLOW_UP' AND source_id = :i"),
            {"i": int(interaction and _pk(interaction))})).scalar_one()  # fmt: skip
    # a follow-up's summary is free text about a person: masked in the append-only trail, so
    # that erasing the person (issue 23) leaves nothing behind; the change itself is recorded
    assert changes["summary"] == {"old": "****", "new": "****"}
    assert changes["nextFollowUpOn"]["old"] is None
    assert reminders == 1  # the date set is already due: its task came with the write
    # another rep's edit of it does not exist for him
    body = await gql.query("frank", """mutation($id: ID!) { updateInteraction(id: $id,
        input: {summary: "x"}) { id } }""", {"id": interaction})  # fmt: skip
    assert error_codes(body) == ["NOT_FOUND"]
    # interactions with filters: by author and channel; frank finds none of alice's
    query = """query($c: ID!) { interactions(filter: {customerId: $c, channel: CALL}) {
        totalCount nodes { summary author { username } } } }"""
    assert (await gql.query("frank", query, {"c": customer}))["data"]["interactions"][
        "totalCount"] == 0  # fmt: skip
    mine = (await gql.query("alice", query, {"c": customer}))["data"]["interactions"]["nodes"]
    assert "二次电话，已报价" in [n["summary"] for n in mine]


def _pk(global_id: str) -> int:
    from schema.node import from_global_id

    return int(from_global_id(global_id)[1])
