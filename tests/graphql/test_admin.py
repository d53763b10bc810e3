"""Administration through GraphQL: guarded by policy, audited, effective on the next request."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient, error_codes

ADD = """mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { role resource scope } }"""
REMOVE = """mutation($rule: PolicyRuleInput!) { removePolicy(rule: $rule) }"""


def rule(**overrides: Any) -> dict[str, Any]:
    base = {"role": "finance", "department": "*", "resource": "customer.email",
            "action": "READ", "scope": "ALL", "effect": "ALLOW"}  # fmt: skip
    return {**base, **overrides}


async def test_non_admins_cannot_change_policies_or_people(gql: GraphQLClient) -> None:
    for username in ("alice", "bob", "erin"):
        body = await gql.query(username, ADD, {"rule": rule()})
        assert error_codes(body) == ["FORBIDDEN"]
        body = await gql.query(username, "{ policies { role } }")
        assert error_codes(body) == ["FORBIDDEN"]


async def test_added_rule_takes_effect_on_the_next_request_and_is_audited(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    before = await gql.query("dave", "{ customers(first: 3) { nodes { email } } }")
    assert all(n["email"] is None for n in before["data"]["customers"]["nodes"])
    added = await gql.query("admin", ADD, {"rule": rule()})
    assert added["data"]["addPolicy"]["resource"] == "customer.email", added
    after = await gql.query("dave", "{ customers(first: 3) { nodes { email } } }")
    assert all(n["email"] for n in after["data"]["customers"]["nodes"])
    events = await oracle.rows(
        demo_engine,
        "SELECT actor, changes FROM audit_events WHERE action = 'POLICY_CHANGE' ORDER BY seq",
    )
    assert events[-1].actor == "admin"
    assert "customer.email" in events[-1].changes["added"]
    removed = await gql.query("admin", REMOVE, {"rule": rule()})
    assert removed["data"]["removePolicy"] is True
    again = await gql.query("dave", "{ customers(first: 3) { nodes { email } } }")
    assert all(n["email"] is None for n in again["data"]["customers"]["nodes"])


async def test_a_deny_rule_beats_every_allow(gql: GraphQLClient) -> None:
    deny = rule(role="sales_rep", resource="customer.phone", effect="DENY", scope="ALL")
    await gql.query("admin", ADD, {"rule": deny})
    try:
        body = await gql.query("alice", "{ customers(first: 3) { nodes { phone } } }")
        assert all(n["phone"] is None for n in body["data"]["customers"]["nodes"])
    finally:
        await gql.query("admin", REMOVE, {"rule": deny})
    body = await gql.query("alice", "{ customers(first: 3) { nodes { phone } } }")
    assert all(n["phone"] for n in body["data"]["customers"]["nodes"])


async def test_malformed_rules_are_bad_input_and_change_nothing(gql: GraphQLClient) -> None:
    for bad in (
        rule(resource="customer.nosuchfield"),
        rule(resource="spaceship"),
        rule(role="Robert'); DROP TABLE--"),
        rule(department="424242"),
    ):
        body = await gql.query("admin", ADD, {"rule": bad})
        assert error_codes(body) == ["BAD_USER_INPUT"], body
    policies = await gql.query("admin", '{ policies(role: "finance") { resource } }')
    resources = {p["resource"] for p in policies["data"]["policies"]}
    assert "customer.nosuchfield" not in resources


async def test_the_last_way_to_edit_policies_cannot_be_removed(gql: GraphQLClient) -> None:
    body = await gql.query(
        "admin",
        REMOVE,
        {"rule": rule(role="admin", resource="policy", action="DELETE", scope="ALL")},
    )
    assert error_codes(body) == ["CONFLICT"]
    still = await gql.query("admin", "{ roles }")
    assert "admin" in still["data"]["roles"]


async def test_user_lifecycle_and_role_assignment(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    east = to_global_id("Department", await oracle.department_id(demo_engine, "华东销售"))
    created = await gql.query(
        "admin",
        """mutation($d: ID!) { createUser(input: {username: "grace", password: "correct horse 42",
            displayName: "Grace", departmentId: $d}) { id username active } }""",
        {"d": east},
    )
    user = created["data"]["createUser"]
    assert user["username"] == "grace" and user["active"] is True
    assigned = await gql.query(
        "admin",
        "mutation($u: ID!, $d: ID!) {"
        ' assignRole(userId: $u, role: "sales_rep", departmentId: $d) }',
        {"u": user["id"], "d": east},
    )
    assert assigned["data"]["assignRole"] is True
    login = await gql.http.post(
        "/auth/token", data={"username": "grace", "password": "correct horse 42"}
    )
    token = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = await gql.http.post(
        "/graphql", json={"query": "{ me { roles { role } } }"}, headers=headers
    )
    assert me.json()["data"]["me"]["roles"] == [{"role": "sales_rep"}]
    deactivated = await gql.query(
        "admin", "mutation($u: ID!) { deactivateUser(id: $u) { active } }", {"u": user["id"]}
    )
    assert deactivated["data"]["deactivateUser"]["active"] is False
    refused = await gql.http.post("/graphql", json={"query": "{ me { roles { role } } }"},
                                  headers=headers)  # fmt: skip
    assert refused.status_code == 401


async def test_explain_access_names_the_rules_and_their_department(gql: GraphQLClient) -> None:
    body = await gql.query(
        "admin",
        """{ explainAccess(username: "bob", resource: "customer", field: "phone", action: READ) {
             allowed reach
             matched { viaRole heldInDepartment departmentPath rule { resource scope } }
        } }""",
    )
    explanation = body["data"]["explainAccess"]
    assert explanation["allowed"] is True and explanation["reach"] == "SOME"
    field_rules = [m for m in explanation["matched"] if m["rule"]["resource"] != "customer"]
    assert field_rules[0]["viaRole"] == "sales_manager"
    assert field_rules[0]["heldInDepartment"] == "销售部"
    assert field_rules[0]["departmentPath"] == ["总部", "销售部"]
    assert field_rules[0]["rule"]["scope"] == "DEPARTMENT"


async def test_partner_tokens_are_issued_once_and_revocable(gql: GraphQLClient) -> None:
    issued = await gql.query(
        "admin",
        """mutation { issuePartnerToken(input: {partnerName: "acme-partner",
             scopes: ["customers:read"], expiresInDays: 1}) { id token expiresAt } }""",
    )
    token = issued["data"]["issuePartnerToken"]
    headers = {"Authorization": f"Bearer {token['token']}"}
    ok = await gql.http.post("/graphql", json={"query": "{ customers { totalCount } }"},
                             headers=headers)  # fmt: skip
    assert ok.status_code == 200
    listed = await gql.query("admin", "{ partnerTokens { id partnerName } }")
    assert token["id"] in {t["id"] for t in listed["data"]["partnerTokens"]}
    assert "token" not in str(listed["data"]["partnerTokens"][0].keys())
    revoked = await gql.query(
        "admin", "mutation($id: ID!) { revokeToken(id: $id) }", {"id": token["id"]}
    )
    assert revoked["data"]["revokeToken"] is True
    refused = await gql.http.post("/graphql", json={"query": "{ customers { totalCount } }"},
                                  headers=headers)  # fmt: skip
    assert refused.status_code == 401
