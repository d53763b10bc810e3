"""Contacts, opportunities, tickets and follow-ups: parent scope, lifecycles, lastInteractionAt."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id
from tests.graphql import oracle
from tests.writes.conftest import GraphQLClient, create_customer, error_codes, first_error
from validation.lifecycle import OPPORTUNITY_TRANSITIONS, TICKET_TRANSITIONS

CONTACT = """mutation($c: ID!, $p: String) { createContact(input: {customerId: $c, name: "李娜",
  title: "采购经理", phone: $p}) { id name phone customer { id } } }"""
OPPORTUNITY = """mutation($c: ID!, $s: OpportunityStage) { createOpportunity(input: {customerId: $c,
  name: "年度框架", stage: $s, amount: "120000.50"}) { id stage amount owner { username } } }"""
MOVE = """mutation($id: ID!, $s: OpportunityStage, $v: Int) {
  updateOpportunity(id: $id, input: {stage: $s}, expectedVersion: $v) { id stage } }"""
TICKET = """mutation($c: ID!) { createTicket(input: {customerId: $c, title: "无法登录",
  priority: HIGH}) { id status resolvedAt satisfaction } }"""
SET_TICKET = """mutation($id: ID!, $s: TicketStatus, $sat: Int) {
  updateTicket(id: $id, input: {status: $s, satisfaction: $sat}) {
    status resolvedAt satisfaction } }"""
FOLLOW_UP = """mutation($c: ID!, $at: DateTime, $next: Date) { createInteraction(input: {
  customerId: $c, channel: VISIT, summary: "上门演示", occurredAt: $at, nextFollowUpOn: $next }) {
  id channel summary occurredAt author { username } customer { id lastInteractionAt } } }"""


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def ok(gql: GraphQLClient, user: str, query: str, **variables: Any) -> dict[str, Any]:
    body = await gql.query(user, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = next(iter(body["data"].values()))
    return data


async def test_contact_of_an_own_customer_is_created_with_encrypted_phone(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await create_customer(gql, "alice")
    contact = await ok(gql, "alice", CONTACT, c=customer["id"], p="139 1234 5678")
    assert contact["phone"] == "+8613912345678"
    assert contact["customer"]["id"] == customer["id"]
    rows = await oracle.rows(
        demo_engine, "SELECT phone_enc FROM contacts WHERE id = :id", id=pk(contact["id"])
    )
    assert "13912345678" not in rows[0].phone_enc


async def test_children_of_a_foreign_customer_cannot_be_created(gql: GraphQLClient) -> None:
    franks = await create_customer(gql, "frank")
    for query in (CONTACT, OPPORTUNITY, TICKET, FOLLOW_UP):
        body = await gql.query("alice", query, {"c": franks["id"]})
        assert error_codes(body) == ["NOT_FOUND"], (query, body)
    # carol may read every customer but only write tickets
    for query in (CONTACT, OPPORTUNITY, FOLLOW_UP):
        body = await gql.query("carol", query, {"c": franks["id"]})
        assert error_codes(body) == ["FORBIDDEN"], body
    ticket = await ok(gql, "carol", TICKET, c=franks["id"])
    assert ticket["status"] == "OPEN"


async def test_a_foreign_contact_cannot_be_updated(gql: GraphQLClient) -> None:
    franks = await create_customer(gql, "frank")
    contact = await ok(gql, "frank", CONTACT, c=franks["id"])
    body = await gql.query(
        "alice",
        'mutation($id: ID!) { updateContact(id: $id, input: {title: "x"}) { id } }',
        {"id": contact["id"]},
    )
    assert error_codes(body) == ["NOT_FOUND"]


async def test_opportunity_stages_move_forward_with_history_and_conflicts(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    customer = await create_customer(gql, "alice")
    opportunity = await ok(gql, "alice", OPPORTUNITY, c=customer["id"])
    assert opportunity["stage"] == "LEAD" and opportunity["owner"]["username"] == "alice"
    await ok(gql, "alice", MOVE, id=opportunity["id"], s="PROPOSAL", v=1)
    stale = await gql.query("alice", MOVE, {"id": opportunity["id"], "s": "WON", "v": 1})
    assert error_codes(stale) == ["CONFLICT"]
    back = await gql.query("alice", MOVE, {"id": opportunity["id"], "s": "QUALIFIED"})
    assert error_codes(back) == ["BAD_USER_INPUT"]
    (error,) = first_error(back)["extensions"]["errors"]
    assert error["rule"] == "transition"
    assert error["suggestions"] == ["NEGOTIATION", "WON", "LOST"]
    await ok(gql, "alice", MOVE, id=opportunity["id"], s="WON", v=2)
    history = await oracle.rows(
        demo_engine,
        "SELECT from_stage, to_stage, actor FROM opportunity_stage_changes "
        "WHERE opportunity_id = :id ORDER BY id",
        id=pk(opportunity["id"]),
    )
    assert [(h.from_stage, h.to_stage) for h in history] == [
        (None, "LEAD"), ("LEAD", "PROPOSAL"), ("PROPOSAL", "WON")
    ]  # fmt: skip
    assert {h.actor for h in history} == {"alice"}
    touched = await oracle.rows(
        demo_engine, "SELECT last_interaction_at FROM customers WHERE id = :id",
        id=pk(customer["id"]),
    )  # fmt: skip
    assert touched[0].last_interaction_at is not None


async def test_ticket_lifecycle_sets_resolved_at_and_satisfaction_only_when_resolved(
    gql: GraphQLClient,
) -> None:
    customer = await create_customer(gql, "alice")
    ticket = await ok(gql, "carol", TICKET, c=customer["id"])
    early = await gql.query("carol", SET_TICKET, {"id": ticket["id"], "sat": 5})
    assert first_error(early)["extensions"]["errors"][0]["field"] == "satisfaction"
    resolved = await ok(gql, "carol", SET_TICKET, id=ticket["id"], s="RESOLVED", sat=4)
    assert resolved["resolvedAt"] is not None and resolved["satisfaction"] == 4
    reopened = await ok(gql, "carol", SET_TICKET, id=ticket["id"], s="IN_PROGRESS")
    assert reopened["resolvedAt"] is None and reopened["satisfaction"] is None
    await ok(gql, "carol", SET_TICKET, id=ticket["id"], s="RESOLVED")
    closed = await ok(gql, "carol", SET_TICKET, id=ticket["id"], s="CLOSED", sat=5)
    assert closed["status"] == "CLOSED" and closed["resolvedAt"] is not None


ILLEGAL_TICKET_MOVES = [
    (a, b)
    for a, b in itertools.product(TICKET_TRANSITIONS, repeat=2)
    if a != b and b not in TICKET_TRANSITIONS[a]
]
PATHS = {"OPEN": [], "IN_PROGRESS": ["IN_PROGRESS"], "RESOLVED": ["RESOLVED"],
         "CLOSED": ["RESOLVED", "CLOSED"]}  # fmt: skip


@pytest.mark.parametrize(("start", "target"), ILLEGAL_TICKET_MOVES)
async def test_every_illegal_ticket_move_is_refused_naming_the_allowed_ones(
    gql: GraphQLClient, start: str, target: str
) -> None:
    customer = await create_customer(gql, "alice")
    ticket = await ok(gql, "alice", TICKET, c=customer["id"])
    for step in PATHS[start]:
        await ok(gql, "alice", SET_TICKET, id=ticket["id"], s=step)
    body = await gql.query("alice", SET_TICKET, {"id": ticket["id"], "s": target})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    (error,) = first_error(body)["extensions"]["errors"]
    assert error["rule"] == "transition"
    assert error["suggestions"] == list(TICKET_TRANSITIONS[start])


ILLEGAL_STAGE_MOVES = [
    (a, b)
    for a, b in itertools.product(OPPORTUNITY_TRANSITIONS, repeat=2)
    if a != b and b not in OPPORTUNITY_TRANSITIONS[a]
]


@pytest.mark.parametrize(("start", "target"), ILLEGAL_STAGE_MOVES)
async def test_every_illegal_stage_move_is_refused(
    gql: GraphQLClient, start: str, target: str
) -> None:
    customer = await create_customer(gql, "alice")
    opportunity = await ok(gql, "alice", OPPORTUNITY, c=customer["id"], s=start)
    body = await gql.query("alice", MOVE, {"id": opportunity["id"], "s": target})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert first_error(body)["extensions"]["errors"][0]["rule"] == "transition"


async def test_follow_ups_move_last_interaction_at_forward_only(gql: GraphQLClient) -> None:
    customer = await create_customer(gql, "alice")
    recent = await ok(gql, "alice", FOLLOW_UP, c=customer["id"], at="2026-11-01T10:00:00+08:00")
    assert recent["author"]["username"] == "alice" and recent["channel"] == "VISIT"
    assert recent["customer"]["lastInteractionAt"].startswith("2026-11-01T02:00:00")
    older = await ok(gql, "alice", FOLLOW_UP, c=customer["id"], at="2026-10-01T10:00:00+08:00")
    assert older["customer"]["lastInteractionAt"].startswith("2026-11-01T02:00:00")
    listed = await gql.query(
        "alice",
        "query($id: ID!) { customer(id: $id) { interactions { totalCount nodes { summary } } } }",
        {"id": customer["id"]},
    )
    assert listed["data"]["customer"]["interactions"]["totalCount"] == 2
    future = await gql.query(
        "alice", FOLLOW_UP, {"c": customer["id"], "at": "2999-01-01T00:00:00Z"}
    )
    assert first_error(future)["extensions"]["errors"][0]["field"] == "occurredAt"
    # the service agent reads the customer but no follow-ups
    hidden = await gql.query(
        "carol",
        "query($id: ID!) { customer(id: $id) { name interactions { totalCount } } }",
        {"id": customer["id"]},
    )
    assert hidden["data"]["customer"]["interactions"]["totalCount"] == 0


async def test_quality_scores_and_lists_only_readable_missing_fields(gql: GraphQLClient) -> None:
    sparse = await create_customer(gql, "alice")
    full = await create_customer(
        gql, "alice", phone="13800138123", email="q@example.com", address="上海市黄浦区",
        source="官网",
    )  # fmt: skip
    query = "query($id: ID!) { customer(id: $id) { quality { score missing stale } } }"
    low = (await gql.query("alice", query, {"id": sparse["id"]}))["data"]["customer"]["quality"]
    high = (await gql.query("alice", query, {"id": full["id"]}))["data"]["customer"]["quality"]
    assert low["score"] < high["score"] and low["stale"] is False
    assert {"phone", "email", "address", "source"} <= set(low["missing"])
    assert high["missing"] == []  # creditCode: alice may not read it, so it is not named
    assert "creditCode" not in low["missing"]
