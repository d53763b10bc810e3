"""explainRecordAccess and roleAssignments: the explainer applied to one record, for admins only."""

from __future__ import annotations

from tests.graphql.conftest import GraphQLClient, error_codes

EXPLAIN = """query Explain($username: String!, $id: ID!, $field: String) {
  explainRecordAccess(username: $username, recordId: $id, field: $field, action: READ) {
    inScope fieldAllowed } }"""


async def _alices_customer(gql: GraphQLClient) -> str:
    body = await gql.query("alice", "{ customers(first: 1) { nodes { id } } }")
    return str(body["data"]["customers"]["nodes"][0]["id"])


async def test_a_record_is_in_its_owners_scope_and_not_a_peers(gql: GraphQLClient) -> None:
    customer = await _alices_customer(gql)
    own = await gql.query("admin", EXPLAIN, {"username": "alice", "id": customer, "field": "phone"})
    assert own["data"]["explainRecordAccess"] == {"inScope": True, "fieldAllowed": True}
    peer = await gql.query(
        "admin", EXPLAIN, {"username": "frank", "id": customer, "field": "phone"}
    )
    assert peer["data"]["explainRecordAccess"] == {"inScope": False, "fieldAllowed": False}


async def test_the_managers_phone_mask_is_decided_per_record(gql: GraphQLClient) -> None:
    customer = await _alices_customer(gql)  # 华东销售, below bob's 销售部: rows yes, phone no
    body = await gql.query("admin", EXPLAIN, {"username": "bob", "id": customer, "field": "phone"})
    assert body["data"]["explainRecordAccess"] == {"inScope": True, "fieldAllowed": False}


async def test_only_policy_readers_may_explain_a_record(gql: GraphQLClient) -> None:
    customer = await _alices_customer(gql)
    body = await gql.query("alice", EXPLAIN, {"username": "alice", "id": customer})
    assert "FORBIDDEN" in error_codes(body)
    roles = await gql.query("alice", "{ roleAssignments { username role } }")
    assert "FORBIDDEN" in error_codes(roles)


async def test_role_assignments_list_the_demo_roles(gql: GraphQLClient) -> None:
    body = await gql.query("admin", "{ roleAssignments { username role departmentName } }")
    held = {(a["username"], a["role"]) for a in body["data"]["roleAssignments"]}
    assert {
        ("alice", "sales_rep"),
        ("bob", "sales_manager"),
        ("erin", "compliance_officer"),
    } <= held
