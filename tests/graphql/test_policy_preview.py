"""previewPolicyChange and auditIntegrity: dry runs and checks through the public schema."""

from __future__ import annotations

from tests.graphql.conftest import GraphQLClient, error_codes

PREVIEW = """query Preview($add: [PolicyRuleInput!], $remove: [PolicyRuleInput!]) {
  previewPolicyChange(add: $add, remove: $remove) {
    affectedUsers lockedOut: locksOut
    changes { username resource field action before after gained lost }
  }
}"""

ID_NUMBER_FOR_REPS = {
    "role": "sales_rep",
    "department": "*",
    "resource": "customer.idNumber",
    "action": "READ",
    "scope": "OWN",
    "effect": "ALLOW",
}


async def test_preview_counts_the_records_each_rep_would_gain(gql: GraphQLClient) -> None:
    before = await gql.query("admin", '{ policies(role: "sales_rep") { resource } }')
    body = await gql.query("admin", PREVIEW, {"add": [ID_NUMBER_FOR_REPS]})
    assert "errors" not in body, body
    preview = body["data"]["previewPolicyChange"]
    assert preview["affectedUsers"] == ["alice", "frank"]
    alice = [c for c in preview["changes"] if c["username"] == "alice"]
    assert [(c["field"], c["before"], c["after"]) for c in alice] == [("idNumber", "NONE", "SOME")]
    owned = await gql.query("alice", "{ customers { totalCount } }")
    assert alice[0]["gained"] == owned["data"]["customers"]["totalCount"] > 0
    assert alice[0]["lost"] == 0
    after = await gql.query("admin", '{ policies(role: "sales_rep") { resource } }')
    assert after == before  # a dry run writes nothing


async def test_preview_of_a_removal_shows_the_manager_losing_phone_rows(
    gql: GraphQLClient,
) -> None:
    rules = await gql.query(
        "admin",
        '{ policies(role: "sales_manager") { role department resource action scope effect } }',
    )
    phone = next(r for r in rules["data"]["policies"] if "phone" in r["resource"])
    body = await gql.query("admin", PREVIEW, {"remove": [phone]})
    changes = body["data"]["previewPolicyChange"]["changes"]
    bob_phone = next(c for c in changes if c["username"] == "bob" and c["field"] == "phone")
    assert bob_phone["before"] == "SOME" and bob_phone["lost"] > 0 and bob_phone["gained"] == 0


async def test_a_sales_rep_cannot_preview_policy_changes(gql: GraphQLClient) -> None:
    body = await gql.query("alice", PREVIEW, {"add": [ID_NUMBER_FOR_REPS]})
    assert body["data"] is None or body["data"]["previewPolicyChange"] is None
    assert "FORBIDDEN" in error_codes(body)


async def test_a_preview_is_audited_as_a_read_of_policy(gql: GraphQLClient) -> None:
    await gql.query("admin", PREVIEW, {"add": [ID_NUMBER_FOR_REPS]})
    trail = await gql.query(
        "erin",
        """{ auditEvents(first: 5, filter: {actor: "admin", resourceType: "policy"}) {
             nodes { action operation fields } } }""",
    )
    events = trail["data"]["auditEvents"]["nodes"]
    assert {"action": "READ", "operation": "Preview", "fields": ["previewPolicyChange"]} in events


async def test_a_bad_rule_in_a_preview_is_bad_input(gql: GraphQLClient) -> None:
    bad = {**ID_NUMBER_FOR_REPS, "resource": "customer.shoeSize"}
    body = await gql.query("admin", PREVIEW, {"add": [bad]})
    assert "BAD_USER_INPUT" in error_codes(body)


INTEGRITY = """query Integrity($verify: Boolean!) { auditIntegrity(verify: $verify) {
  headSeq digestCount verificationKeys chain { ok checked summary } digests { ok } } }"""


async def test_the_compliance_officer_verifies_the_chain_now(gql: GraphQLClient) -> None:
    body = await gql.query("erin", INTEGRITY, {"verify": True})
    integrity = body["data"]["auditIntegrity"]
    assert integrity["chain"]["ok"] is True
    assert integrity["chain"]["checked"] >= 1 and integrity["headSeq"] >= 1
    quick = await gql.query("erin", INTEGRITY, {"verify": False})
    assert quick["data"]["auditIntegrity"]["chain"] is None


async def test_a_sales_rep_cannot_see_the_chain_status(gql: GraphQLClient) -> None:
    body = await gql.query("alice", INTEGRITY, {"verify": True})
    assert body["data"] is None or body["data"]["auditIntegrity"] is None
    assert "FORBIDDEN" in error_codes(body)
