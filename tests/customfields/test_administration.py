"""Definitions, vocabularies and sensitive fields are admin data: audited, in force everywhere."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.settings import Settings
from tests.customfields.test_custom_fields import CREATE, customer, define
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields

PERMISSIONS = "{ me { permissions { type field read } } }"


async def _fields_of(client: GraphQLClient, username: str) -> set[str]:
    body = await client.query(username, PERMISSIONS)
    return {f"{p['type']}.{p['field']}" for p in body["data"]["me"]["permissions"]}


async def test_a_definition_is_in_force_in_another_process_without_a_restart(
    cf: GraphQLClient, cf_settings: Settings
) -> None:
    other = create_app(cf_settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("127.0.0.1", 50005))
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as http:
            remote = GraphQLClient(http, {})
            assert "Ticket.cf.slaHours" not in await _fields_of(remote, "carol")
            await define(cf, resource="ticket", key="slaHours", type="NUMBER")
            for _ in range(50):  # the NOTIFY reaches the other process within moments
                if "Ticket.cf.slaHours" in await _fields_of(remote, "carol"):
                    break
                await asyncio.sleep(0.1)
            assert "Ticket.cf.slaHours" in await _fields_of(remote, "carol")


async def test_a_retired_field_is_gone_from_reads_and_refused_on_writes(
    cf: GraphQLClient, cf_engine: AsyncEngine
) -> None:
    await define(cf, resource="customer", key="legacyCode", type="TEXT")
    body = await cf.query("alice", CREATE, {"input": customer("退役前", legacyCode="L-1")})
    assert "errors" not in body, body
    retire = 'mutation { retireCustomField(resource: "customer", key: "legacyCode") }'
    assert (await cf.query("alice", retire))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await cf.query("admin", retire))["data"]["retireCustomField"] is True
    page = await cf.query("alice", '{ customers(filter: {namePrefix: "退役前"}) '
                                   "{ nodes { customFields } } }")  # fmt: skip
    assert page["data"]["customers"]["nodes"] == [{"customFields": {}}]
    again = await cf.query("alice", CREATE, {"input": customer("退役后", legacyCode="L-2")})
    assert error_codes(again) == ["BAD_USER_INPUT"]
    assert again["errors"][0]["extensions"]["field"] == "customFields.legacyCode"
    async with cf_engine.connect() as connection:
        events = (
            await connection.execute(
                text("SELECT action, actor FROM audit_events WHERE resource_type = "
                     "'custom_field' AND 'customer.legacyCode' = ANY(resource_ids) ORDER BY seq")
            )
        ).all()  # fmt: skip
    assert [(e.action, e.actor) for e in events] == [("CREATE", "admin"), ("DELETE", "admin")]


async def test_changing_a_fields_type_is_refused_and_required_is_enforced(
    cf: GraphQLClient,
) -> None:
    await define(cf, resource="customer", key="region2", type="TEXT")
    redefine = "mutation($i: CustomFieldInput!) { defineCustomField(input: $i) { key } }"
    retyped = {"resource": "customer", "key": "region2", "type": "NUMBER"}
    body = await cf.query("admin", redefine, {"i": retyped})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    await define(cf, resource="opportunity", key="lossReason", type="CHOICE",
                 options=["price", "timing"], required=True)  # fmt: skip
    first = await cf.query("alice", "{ customers(first: 1) { nodes { id } } }")
    customer_id = first["data"]["customers"]["nodes"][0]["id"]
    create = """mutation($i: OpportunityInput!) { createOpportunity(input: $i) {
      id customFields } }"""
    missing = await cf.query("alice", create, {"i": {"customerId": customer_id, "name": "单",
                                                     "amount": "10"}})  # fmt: skip
    assert error_codes(missing) == ["BAD_USER_INPUT"]
    assert missing["errors"][0]["extensions"]["field"] == "customFields.lossReason"
    made = await cf.query("alice", create, {"i": {"customerId": customer_id, "name": "单",
                          "amount": "10", "customFields": {"lossReason": "price"}}})  # fmt: skip
    assert made["data"]["createOpportunity"]["customFields"] == {"lossReason": "price"}, made
    retire = 'mutation { retireCustomField(resource: "opportunity", key: "lossReason") }'
    assert (await cf.query("admin", retire))["data"]["retireCustomField"] is True


async def test_a_manager_may_not_write_a_field_no_rule_lets_him_write(
    cf: GraphQLClient,
) -> None:
    await define(cf, resource="ticket", key="rootCause", type="TEXT")
    tickets = await cf.query("carol", "{ tickets(first: 1) { nodes { id } } }")
    ticket = tickets["data"]["tickets"]["nodes"][0]["id"]
    update = """mutation($id: ID!, $p: TicketPatch!) { updateTicket(id: $id, input: $p) {
      customFields } }"""
    patch = {"customFields": {"rootCause": "disk"}}
    done = await cf.query("carol", update, {"id": ticket, "p": patch})
    assert done["data"]["updateTicket"]["customFields"]["rootCause"] == "disk", done
    refused = await cf.query("bob", update, {"id": ticket, "p": patch})
    assert error_codes(refused) in (["FORBIDDEN"], ["NOT_FOUND"])


async def test_admin_adds_a_vocabulary_term_whose_alias_normalises_input(
    cf: GraphQLClient,
) -> None:
    add = """mutation { addVocabularyTerm(vocabulary: "industry", term: "低空经济",
      aliases: ["eVTOL", "无人机"]) { name terms { term aliases } } }"""
    assert error_codes(await cf.query("alice", add)) == ["FORBIDDEN"]
    body = await cf.query("admin", add)
    terms = {t["term"]: t["aliases"] for t in body["data"]["addVocabularyTerm"]["terms"]}
    assert terms["低空经济"] == ["eVTOL", "无人机"]
    created = await cf.query("alice", CREATE, {"input": customer("飞行器公司") | {
        "industry": "evtol"}})  # fmt: skip
    assert "errors" not in created, created
    page = await cf.query("alice", '{ customers(filter: {namePrefix: "飞行器"}) '
                                   "{ nodes { industry } } }")  # fmt: skip
    assert page["data"]["customers"]["nodes"] == [{"industry": "低空经济"}]
    listed = await cf.query("admin", "{ vocabularies { name terms { term } } }")
    names = {v["name"]: {t["term"] for t in v["terms"]} for v in listed["data"]["vocabularies"]}
    assert set(names) == {"region", "industry", "source", "tag"} and "低空经济" in names["industry"]
    clash = await cf.query("admin", 'mutation { addVocabularyTerm(vocabulary: "industry", '
                                    'term: "别的", aliases: ["无人机"]) { name } }')  # fmt: skip
    assert error_codes(clash) == ["BAD_USER_INPUT"]


async def test_admin_marks_a_built_in_field_sensitive_and_it_is_hidden_and_masked(
    cf: GraphQLClient, cf_engine: AsyncEngine
) -> None:
    mark = """mutation($s: Boolean!) { setFieldSensitivity(resource: "customer",
      field: "address", sensitive: $s) }"""
    assert error_codes(await cf.query("alice", mark, {"s": True})) == ["FORBIDDEN"]
    before = await cf.query("alice", "{ customers(first: 3) { nodes { address } } }")
    assert "Customer.address" not in forbidden_fields(before)
    assert (await cf.query("admin", mark, {"s": True}))["data"]["setFieldSensitivity"] is True
    after = await cf.query("alice", "{ customers(first: 3) { nodes { address } } }")
    assert forbidden_fields(after) == {"Customer.address"}  # no rule names it for reps
    listed = await cf.query("admin", "{ sensitiveFields { resource field } }")
    assert {"resource": "customer", "field": "address"} in listed["data"]["sensitiveFields"]
    await define(cf, resource="opportunity", key="passport", type="TEXT", sensitive=True)
    listed = await cf.query("admin", "{ sensitiveFields { resource field } }")
    assert {"resource": "opportunity", "field": "cf.passport"} in listed["data"]["sensitiveFields"]
    assert (await cf.query("admin", mark, {"s": False}))["data"]["setFieldSensitivity"] is True
    restored = await cf.query("alice", "{ customers(first: 3) { nodes { address } } }")
    assert "Customer.address" not in forbidden_fields(restored)
    async with cf_engine.connect() as connection:
        events = (
            await connection.execute(
                text("SELECT changes FROM audit_events WHERE action = 'POLICY_CHANGE' "
                     "AND changes ? 'sensitive' ORDER BY seq")
            )
        ).scalars().all()  # fmt: skip
    assert [e["sensitive"]["new"] for e in events[-2:]] == [True, False]


async def test_child_lists_filter_by_custom_fields_under_the_same_read_rule(
    cf: GraphQLClient,
) -> None:
    await define(cf, resource="ticket", key="channelCode", type="CHOICE", options=["web", "tel"])
    tickets = await cf.query("carol", "{ tickets(first: 2) { nodes { id } } }")
    first, second = (n["id"] for n in tickets["data"]["tickets"]["nodes"])
    update = """mutation($id: ID!, $p: TicketPatch!) { updateTicket(id: $id, input: $p) { id } }"""
    for ticket, code in ((first, "web"), (second, "tel")):
        patch = {"customFields": {"channelCode": code}}
        done = await cf.query("carol", update, {"id": ticket, "p": patch})
        assert "errors" not in done, done
    query = """query($f: TicketFilter) { tickets(first: 500, filter: $f) { nodes { id } } }"""
    web = await cf.query("carol", query, {"f": {"customField": {"key": "channelCode",
                                                                "eq": "web"}}})  # fmt: skip
    assert [n["id"] for n in web["data"]["tickets"]["nodes"]] == [first]
    bad = await cf.query("carol", query, {"f": {"customField": {"key": "channelCode",
                                                                "eq": "fax"}}})  # fmt: skip
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    deny = {"role": "service_agent", "department": "*", "resource": "ticket.cf.channelCode",
            "action": "READ", "scope": "ALL", "effect": "DENY"}  # fmt: skip
    added = await cf.query("admin", "mutation($r: PolicyRuleInput!) { addPolicy(rule: $r) "
                                    "{ resource } }", {"r": deny})  # fmt: skip
    assert "errors" not in added, added
    refused = await cf.query("carol", query, {"f": {"customField": {"key": "channelCode",
                                                                    "eq": "web"}}})  # fmt: skip
    assert forbidden_fields(refused) == {"Ticket.cf.channelCode"}
