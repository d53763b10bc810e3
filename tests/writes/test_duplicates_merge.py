"""Duplicates through encrypted fields and names, without leaks; merge with its one event."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id
from tests.graphql import oracle
from tests.writes.conftest import (
    CREATE_CUSTOMER,
    GraphQLClient,
    company,
    create_customer,
    error_codes,
    first_error,
    mobile,
    unique,
)

MERGE = """mutation($k: ID!, $m: ID!) { mergeCustomers(keepId: $k, mergeId: $m) {
  id phone email address contacts { totalCount } tickets { totalCount }
  interactions { totalCount } } }"""
PAIRS = """{ duplicateCandidates(first: 500) { totalCount
  nodes { reasons similarity left { id name } right { id name } } } }"""


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


async def test_same_phone_is_a_duplicate_found_through_the_blind_index(
    gql: GraphQLClient,
) -> None:
    phone = mobile()
    first = await create_customer(gql, "alice", phone=phone)
    national = phone.removeprefix("+86")
    body = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": company(phone=f"{national[:3]}-{national[3:]}")}
    )
    assert error_codes(body) == ["DUPLICATE"], body
    duplicates = first_error(body)["extensions"]["duplicates"]
    assert duplicates == [
        {"id": first["id"], "name": first["name"], "reasons": ["PHONE"], "similarity": None}
    ]
    forced = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": company(phone=phone), "force": True}
    )
    assert "errors" not in forced, forced


async def test_similar_company_name_in_the_same_region_is_a_duplicate(
    gql: GraphQLClient,
) -> None:
    core = unique()
    first = await create_customer(gql, "alice", name=f"上海{core}科技有限公司", region="上海")
    body = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": company(name=f"{core}科技（上海）有限公司")}
    )
    assert error_codes(body) == ["DUPLICATE"]
    (match,) = first_error(body)["extensions"]["duplicates"]
    assert match["id"] == first["id"] and match["reasons"] == ["NAME"]
    elsewhere = await gql.query(
        "alice", CREATE_CUSTOMER, {"input": company(name=f"{core}科技有限公司", region="北京")}
    )
    assert "errors" not in elsewhere, elsewhere


async def test_a_duplicate_outside_the_callers_scope_is_never_revealed(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    phone, email = mobile(), f"{unique('x').encode().hex()[:10]}@example.com"
    franks = await create_customer(gql, "frank", phone=phone, email=email)
    body = await gql.query("alice", CREATE_CUSTOMER, {"input": company(phone=phone, email=email)})
    assert "errors" not in body, body  # no DUPLICATE: that would confirm frank's customer
    assert franks["id"] not in str(body)


async def test_update_to_an_existing_email_is_a_duplicate_unless_forced(
    gql: GraphQLClient,
) -> None:
    email = f"dup-{unique().encode().hex()[:8]}@example.com"
    first = await create_customer(gql, "alice", email=email)
    second = await create_customer(gql, "alice")
    patch = """mutation($id: ID!, $e: String, $f: Boolean) {
      updateCustomer(id: $id, input: {email: $e}, force: $f) { email } }"""
    body = await gql.query("alice", patch, {"id": second["id"], "e": email.upper()})
    assert error_codes(body) == ["DUPLICATE"]
    assert first_error(body)["extensions"]["duplicates"][0]["id"] == first["id"]
    forced = await gql.query("alice", patch, {"id": second["id"], "e": email, "f": True})
    assert forced["data"]["updateCustomer"]["email"] == email


async def test_duplicate_candidates_list_pairs_only_within_read_scope(
    gql: GraphQLClient,
) -> None:
    phone = mobile()
    a = await create_customer(gql, "alice", phone=phone)
    b = await create_customer(gql, "alice", phone=phone)
    mine = await gql.query("alice", PAIRS)
    pairs = {(p["left"]["id"], p["right"]["id"]): p for p in
             mine["data"]["duplicateCandidates"]["nodes"]}  # fmt: skip
    assert pairs[(a["id"], b["id"])]["reasons"] == ["PHONE"]
    # frank sees neither record; bob sees both but not their phones (not his own department)
    franks = await gql.query("frank", PAIRS)
    assert a["id"] not in str(franks)
    bobs = await gql.query("bob", PAIRS)
    assert a["id"] not in str(bobs), bobs


async def test_merge_moves_children_fills_gaps_archives_and_audits_once(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    phone = mobile()
    keep = await create_customer(gql, "alice")
    merged = await create_customer(gql, "alice", phone=phone, address="上海市浦东新区世纪大道1号")
    for query in (
        """mutation($c: ID!) { createContact(input: {customerId: $c, name: "王经理",
             phone: "13912345678"}) { id } }""",
        """mutation($c: ID!) { createTicket(input: {customerId: $c, title: "发票问题"}) { id } }""",
        """mutation($c: ID!) { createInteraction(input: {customerId: $c, channel: WECHAT,
             summary: "初次沟通"}) { id } }""",
    ):
        created = await gql.query("alice", query, {"c": merged["id"]})
        assert "errors" not in created, created
    body = await gql.query("alice", MERGE, {"k": keep["id"], "m": merged["id"]})
    result = body["data"]["mergeCustomers"]
    assert result["phone"] == phone and result["address"].startswith("上海市")
    assert result["contacts"]["totalCount"] == 1
    assert result["tickets"]["totalCount"] == 1
    assert result["interactions"]["totalCount"] == 1
    gone = await gql.query("alice", "query($id: ID!) { customer(id: $id) { id } }",
                           {"id": merged["id"]})  # fmt: skip
    assert gone["data"]["customer"] is None
    rows = await oracle.rows(
        demo_engine, "SELECT merged_into_id, archived_at FROM customers WHERE id = :id",
        id=pk(merged["id"]),
    )  # fmt: skip
    assert rows[0].merged_into_id == pk(keep["id"]) and rows[0].archived_at is not None
    events = await oracle.rows(
        demo_engine,
        "SELECT resource_ids, changes FROM audit_events WHERE action = 'MERGE' "
        "AND :id = ANY(resource_ids)",
        id=str(pk(keep["id"])),
    )
    assert len(events) == 1
    changes = events[0].changes
    assert changes["before"]["merged"]["phone"] == changes["after"]["keep"]["phone"]
    assert phone[-4:] in changes["after"]["keep"]["phone"]
    assert phone not in str(changes)  # masked
    assert changes["before"]["keep"]["phone"] is None
    assert len(changes["moved"]["contacts"]) == 1 and len(changes["moved"]["tickets"]) == 1


async def test_merge_needs_update_rights_on_both_records(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    alices = await create_customer(gql, "alice")
    franks = await create_customer(gql, "frank")
    for keep, merge in ((alices, franks), (franks, alices)):
        body = await gql.query("alice", MERGE, {"k": keep["id"], "m": merge["id"]})
        assert error_codes(body) == ["NOT_FOUND"]
    rows = await oracle.rows(
        demo_engine, "SELECT count(*) AS n FROM customers WHERE id IN (:a, :b) "
        "AND archived_at IS NULL", a=pk(alices["id"]), b=pk(franks["id"]),
    )  # fmt: skip
    assert rows[0].n == 2
    same = await gql.query("alice", MERGE, {"k": alices["id"], "m": alices["id"]})
    assert error_codes(same) == ["BAD_USER_INPUT"]
