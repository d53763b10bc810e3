"""The outbox: no event without its change, no change without its event."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from audit.events import AuditAction, AuditRecord
from events.outbox import events_of
from schema.node import from_global_id
from tests.events.helpers import (
    create_customer,
    create_webhook,
    deactivate_webhooks,
    outbox_for,
    rows,
    unique,
    update_customer,
)
from tests.graphql.conftest import GraphQLClient, error_codes


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def test_a_committed_write_has_its_event_and_its_deliveries(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    await deactivate_webhooks(events_engine)
    hook = await create_webhook(gql, "http://127.0.0.1:9/hook", ["customer.*"], role="finance")
    customer = await create_customer(gql, "alice")
    body = await update_customer(gql, "alice", customer["id"], industry="制造业")
    assert "errors" not in body, body
    events = await outbox_for(events_engine, pk(customer["id"]))
    assert [(e.event, e.resource_type) for e in events] == [
        ("customer.created", "customer"),
        ("customer.updated", "customer"),
    ]
    assert list(events[1].changed_fields) == ["industry"]
    deliveries = await rows(
        events_engine,
        "SELECT outbox_id, event, status FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id",
        w=pk(hook["id"]),
    )
    assert [(d.outbox_id, d.event, d.status) for d in deliveries] == [
        (events[0].id, "customer.created", "PENDING"),
        (events[1].id, "customer.updated", "PENDING"),
    ]


async def test_a_failed_write_leaves_no_event(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    await deactivate_webhooks(events_engine)
    await create_webhook(gql, "http://127.0.0.1:9/hook", ["*"], role="finance")
    customer = await create_customer(gql, "alice")
    before = await outbox_for(events_engine, pk(customer["id"]))
    # a stale version: CONFLICT, after the write path has begun
    stale = await update_customer(gql, "alice", customer["id"], version=99, industry="制造业")
    assert error_codes(stale) == ["CONFLICT"]
    # two mutations in one request: the second fails, the first (and only its event) stays
    both = await gql.query(
        "alice",
        """mutation($id: ID!) {
          ok: updateCustomer(id: $id, input: {industry: "金融"}, force: true) { id }
          bad: updateCustomer(id: $id, input: {industry: "零售"}, expectedVersion: 1) { id }
        }""",
        {"id": customer["id"]},
    )
    assert error_codes(both) == ["CONFLICT"]
    after = await outbox_for(events_engine, pk(customer["id"]))
    assert len(before) == 1 and [e.event for e in after[1:]] == ["customer.updated"]
    # out of scope: frank may not touch alice's customer; nothing is written, no event
    refused = await update_customer(gql, "frank", customer["id"], industry="零售")
    assert error_codes(refused) == ["NOT_FOUND"]
    assert len(await outbox_for(events_engine, pk(customer["id"]))) == len(after)
    # and a delivery exists for exactly the committed events
    orphans = await rows(
        events_engine,
        "SELECT count(*) AS n FROM webhook_deliveries d WHERE NOT EXISTS "
        "(SELECT 1 FROM outbox_events o WHERE o.id = d.outbox_id)",
    )
    assert orphans[0].n == 0


async def test_every_change_to_a_record_has_exactly_one_event(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    """Each audited change of the customer (the trail) matches one outbox row, in order."""
    customer = await create_customer(gql, "alice")
    for industry in ("制造业", "金融", "零售"):
        assert "errors" not in await update_customer(
            gql, "alice", customer["id"], industry=industry
        )
    archived = await gql.query(
        "alice", "mutation($id: ID!) { archiveCustomer(id: $id) { id } }", {"id": customer["id"]}
    )
    assert "errors" not in archived, archived
    trail = await rows(
        events_engine,
        "SELECT action FROM audit_events WHERE resource_type = 'customer' "
        "AND :id = ANY(resource_ids) AND action IN ('CREATE', 'UPDATE', 'ARCHIVE') ORDER BY seq",
        id=str(pk(customer["id"])),
    )
    events = await outbox_for(events_engine, pk(customer["id"]))
    verbs = {"CREATE": "created", "UPDATE": "updated", "ARCHIVE": "archived"}
    assert [f"customer.{verbs[t.action]}" for t in trail] == [e.event for e in events]
    assert len(events) == 5


async def test_opportunity_stage_moves_and_merges_are_named() -> None:
    def record(action: str, kind: str, ids: list[str], fields: list[str]) -> AuditRecord:
        return AuditRecord(actor="a", actor_kind="USER", action=action, resource_type=kind,
                           resource_ids=ids, fields=fields)  # fmt: skip

    events = events_of(
        [
            record(AuditAction.UPDATE, "opportunity", ["7"], ["amount", "stage"]),
            record(AuditAction.MERGE, "customer", ["1", "2"], ["phone"]),
            record(AuditAction.USER_CHANGE, "user", ["3"], []),
            record(AuditAction.READ, "customer", ["1"], ["name"]),
            record(AuditAction.IMPORT, "customer", ["8", "9"], ["name"]),
        ]
    )
    assert [(e.event, e.resource_id) for e in events] == [
        ("opportunity.updated", "7"),
        ("opportunity.stage_changed", "7"),
        ("customer.merged", "1"),
        ("customer.archived", "2"),
        ("customer.created", "8"),
        ("customer.created", "9"),
    ]


async def test_a_merge_writes_its_events(gql: GraphQLClient, events_engine: AsyncEngine) -> None:
    keep = await create_customer(gql, "alice", name=unique() + "公司")
    gone = await create_customer(gql, "alice", name=unique() + "公司")
    body = await gql.query(
        "alice",
        "mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) { id } }",
        {"k": keep["id"], "m": gone["id"]},
    )
    assert "errors" not in body, body
    assert [e.event for e in await outbox_for(events_engine, pk(keep["id"]))][-1] == (
        "customer.merged"
    )
    assert [e.event for e in await outbox_for(events_engine, pk(gone["id"]))][-1] == (
        "customer.archived"
    )


async def test_an_import_writes_an_event_per_created_customer(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    from tests.bulk.conftest import csv_bytes, upload
    from tests.bulk.test_imports import HEADER

    prefix = unique()
    content = csv_bytes(
        [
            HEADER,
            [f"{prefix}甲科技有限公司", "公司", "互联网", "上海", "", "", "", ""],
            [f"{prefix}乙科技有限公司", "公司", "互联网", "北京", "", "", "", ""],
        ]
    )
    response = await upload(gql, "alice", content, "leads.csv", dry_run=False)
    job = response.json()["data"]["importCustomers"]
    assert (job["status"], job["writtenRows"]) == ("DONE", 2), job
    created = await rows(
        events_engine, "SELECT id FROM customers WHERE name LIKE :p ORDER BY id", p=f"{prefix}%"
    )
    for customer in created:
        assert [e.event for e in await outbox_for(events_engine, customer.id)] == [
            "customer.created"
        ]
