"""captureLead: match on the duplicate keys or create and assign in turn; partners with a scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed import DemoSummary
from schema.node import from_global_id, to_global_id
from tests.events.helpers import create_customer, mobile, partner_token, rows, unique
from tests.graphql.conftest import GraphQLClient, error_codes

CAPTURE = """mutation($input: LeadInput!) {
  captureLead(input: $input) { created matchedBy customer { id name phone } } }"""


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def as_token(gql: GraphQLClient, token: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await gql.http.post(
        "/graphql", json={"query": CAPTURE, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    body: dict[str, Any] = response.json()
    return body


async def test_a_lead_matching_a_phone_logs_an_interaction_on_the_match(
    gql: GraphQLClient, events_engine: AsyncEngine
) -> None:
    phone = mobile()
    existing = await create_customer(gql, "alice", phone=phone)
    body = await gql.query(
        "alice", CAPTURE,
        {"input": {"name": unique() + "公司", "phone": phone, "note": "website form",
                   "region": "上海"}},
    )  # fmt: skip
    assert "errors" not in body, body
    lead = body["data"]["captureLead"]
    assert (lead["created"], lead["matchedBy"]) == (False, "phone")
    assert lead["customer"]["id"] == existing["id"]
    found = await rows(
        events_engine,
        "SELECT summary FROM interactions WHERE customer_id = :c",
        c=pk(existing["id"]),
    )
    assert [r.summary for r in found] == ["website form"]
    events = await rows(
        events_engine,
        "SELECT event FROM outbox_events WHERE resource_type = 'interaction' ORDER BY id DESC "
        "LIMIT 1",
    )
    assert events[0].event == "interaction.created"


async def test_new_leads_are_created_and_assigned_round_robin(
    gql: GraphQLClient, events_engine: AsyncEngine, events_demo: DemoSummary
) -> None:
    department = events_demo.department_ids["华东销售"]
    for n in (1, 2):  # colleagues of alice's, so that there is a turn to take
        made = await gql.query(
            "admin",
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            {"i": {"username": f"lead-rep-{n}-{id(gql)}", "password": "a-long-password-1",
                   "departmentId": to_global_id("Department", department)}},
        )  # fmt: skip
        assert "errors" not in made, made
    owners = []
    for _ in range(3):
        body = await gql.query(
            "alice", CAPTURE,
            {"input": {"name": unique() + "公司", "phone": mobile(), "region": "上海",
                       "industry": "金融",
                       "departmentId": to_global_id("Department", department)}},
        )  # fmt: skip
        assert "errors" not in body, body
        assert body["data"]["captureLead"]["created"] is not False
        (row,) = await rows(
            events_engine,
            "SELECT owner_id, department_id FROM customers ORDER BY id DESC LIMIT 1",
        )
        assert row.department_id == department
        owners.append(row.owner_id)
    active = await rows(
        events_engine,
        "SELECT id FROM users WHERE department_id = :d AND is_active ORDER BY id",
        d=department,
    )
    ids = [r.id for r in active]
    assert len(ids) >= 2
    # each lead goes to the next user after the previous lead's owner
    for before, after in zip(owners, owners[1:], strict=False):
        assert after == ids[(ids.index(before) + 1) % len(ids)]
    # alice (a rep) cannot send a lead to another department
    other = events_demo.department_ids["华北销售"]
    elsewhere = await gql.query(
        "alice", CAPTURE,
        {"input": {"name": unique() + "公司", "region": "上海", "industry": "金融",
                   "departmentId": to_global_id("Department", other)}},
    )  # fmt: skip
    assert error_codes(elsewhere) == ["FORBIDDEN"]


async def test_a_partner_needs_the_lead_scope_and_learns_nothing_it_may_not_read(
    gql: GraphQLClient, events_engine: AsyncEngine, events_demo: DemoSummary
) -> None:
    department = to_global_id("Department", events_demo.department_ids["华东销售"])
    reader, _ = await partner_token(events_engine, None, ["customers:read"])
    refused = await as_token(gql, reader, {"input": {"name": "x公司", "departmentId": department}})
    assert error_codes(refused) == ["FORBIDDEN"]
    intake, _ = await partner_token(events_engine, [], ["lead:create"])
    phone = mobile()
    existing = await create_customer(gql, "alice", phone=phone)
    matched = await as_token(
        gql, intake, {"input": {"name": unique() + "公司", "phone": phone, "region": "上海"}}
    )
    assert "errors" not in matched, matched
    # no oracle: whether the phone is on file is not said to a caller who may not read it
    assert matched["data"]["captureLead"] == {"created": None, "matchedBy": None,
                                              "customer": None}  # fmt: skip
    logged = await rows(
        events_engine,
        "SELECT count(*) AS n FROM interactions WHERE customer_id = :c",
        c=pk(existing["id"]),
    )
    assert logged[0].n == 1
    new = await as_token(
        gql, intake, {"input": {"name": unique() + "公司", "region": "上海", "industry": "金融",
                                "email": f"x{pk(existing['id'])}@example.com",
                                "departmentId": department}},
    )  # fmt: skip
    assert "errors" not in new, new
    trail = await rows(
        events_engine,
        "SELECT actor_kind FROM audit_events WHERE action = 'CREATE' AND resource_type = "
        "'customer' ORDER BY seq DESC LIMIT 1",
    )
    assert trail[0].actor_kind == "PARTNER"
    # without a department a partner's new lead has nowhere to go
    lost = await as_token(
        gql, intake, {"input": {"name": unique() + "公司", "region": "上海", "industry": "金融"}}
    )
    assert error_codes(lost) == ["BAD_USER_INPUT"]
