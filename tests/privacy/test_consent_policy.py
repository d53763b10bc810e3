"""Consent requirements: policy data that makes a field need the person's active consent to a
purpose before it is read or exported; administered like rules, enforced in reads and exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.bulk.conftest import csv_rows, download
from tests.graphql.conftest import GraphQLClient, error_codes, forbidden_fields
from tests.privacy.conftest import create_person
from tests.privacy.test_consents import RECORD, WITHDRAW

REQUIRE = """
mutation($r: ConsentRequirementInput!) {
  requireConsent(requirement: $r) { resource action purpose }
}"""
REMOVE = """
mutation($r: ConsentRequirementInput!) { removeConsentRequirement(requirement: $r) }"""
LIST = "{ consentRequirements { resource action purpose } }"
READ = """
query($id: ID!) { node(id: $id) { ... on Customer { id name phone email } } }"""
LIST_READ = """
query { customers(first: 500) { nodes { id email } } }"""
EXPORT = """
mutation { exportCustomers(fields: ["name"]) { rowCount url } }"""


class Requirements:
    """Adds requirements as admin and removes them again: the demo database is shared."""

    def __init__(self, gql: GraphQLClient) -> None:
        self.gql = gql
        self.added: list[dict[str, str]] = []

    async def add(self, resource: str, action: str, purpose: str) -> dict[str, Any]:
        requirement = {"resource": resource, "action": action, "purpose": purpose}
        body = await self.gql.query("admin", REQUIRE, {"r": requirement})
        if "errors" not in body:
            self.added.append(requirement)
        return body


@pytest.fixture
async def requirements(gql: GraphQLClient) -> AsyncIterator[Requirements]:
    made = Requirements(gql)
    try:
        yield made
    finally:
        for requirement in made.added:
            await gql.query("admin", REMOVE, {"r": requirement})


async def test_a_read_requirement_hides_the_field_until_consent_is_given(
    gql: GraphQLClient, requirements: Requirements
) -> None:
    customer, values = await create_person(gql)
    body = await gql.query("alice", READ, {"id": customer})
    assert body["data"]["node"]["email"] == values["email"]  # no requirement yet

    added = await requirements.add("customer.email", "READ", "marketing")
    assert added == {
        "data": {
            "requireConsent": {
                "resource": "customer.email", "action": "READ", "purpose": "marketing"
            }
        }
    }, added  # fmt: skip
    listed = await gql.query("admin", LIST, {})
    assert {"resource": "customer.email", "action": "READ", "purpose": "marketing"} in listed[
        "data"
    ]["consentRequirements"]

    body = await gql.query("alice", READ, {"id": customer})
    node = body["data"]["node"]
    assert node["email"] is None and node["phone"] == values["phone"], body
    assert forbidden_fields(body) == {"Customer.email"}

    await gql.query("alice", RECORD, {"c": customer, "p": "marketing"})
    body = await gql.query("alice", READ, {"id": customer})
    assert body["data"]["node"]["email"] == values["email"], body
    assert "errors" not in body
    # in a list, per row: the consenting customer shows it, others (no consent) do not
    listed_rows = await gql.query("alice", LIST_READ, {})
    emails = {n["id"]: n["email"] for n in listed_rows["data"]["customers"]["nodes"]}
    assert emails[customer] == values["email"]
    assert any(email is None for email in emails.values())

    await gql.query("alice", WITHDRAW, {"c": customer, "p": "marketing"})
    body = await gql.query("alice", READ, {"id": customer})
    assert body["data"]["node"]["email"] is None
    assert forbidden_fields(body) == {"Customer.email"}


async def test_an_export_requirement_blanks_the_field_of_non_consenting_rows_in_exports(
    gql: GraphQLClient, requirements: Requirements
) -> None:
    consenting, consenting_values = await create_person(gql)
    silent, silent_values = await create_person(gql)
    await gql.query("alice", RECORD, {"c": consenting, "p": "newsletter"})
    body = await requirements.add("customer.name", "EXPORT", "newsletter")
    assert "errors" not in body, body

    # reading is not bound by an EXPORT requirement
    read = await gql.query("alice", READ, {"id": silent})
    assert read["data"]["node"]["name"] == silent_values["name"]

    exported = await gql.query("bob", EXPORT, {})
    assert "errors" not in exported, exported
    response = await download(gql, "bob", exported["data"]["exportCustomers"]["url"])
    names = [row["name"] for row in csv_rows(response.content)]
    assert consenting_values["name"] in names
    assert silent_values["name"] not in names


async def test_requirements_are_policy_administration(
    gql: GraphQLClient, requirements: Requirements
) -> None:
    requirement = {"resource": "customer.phone", "action": "READ", "purpose": "marketing"}
    body = await gql.query("alice", REQUIRE, {"r": requirement})
    assert error_codes(body) == ["FORBIDDEN"], body
    body = await gql.query("alice", LIST, {})
    assert error_codes(body) == ["FORBIDDEN"], body
    for bad in (
        {"resource": "audit.actor", "action": "READ", "purpose": "marketing"},
        {"resource": "customer.phone", "action": "UPDATE", "purpose": "marketing"},
        {"resource": "customer.phone", "action": "READ", "purpose": "Not a purpose!"},
        {"resource": "customer", "action": "READ", "purpose": "marketing"},
    ):
        body = await requirements.add(bad["resource"], bad["action"], bad["purpose"])
        assert error_codes(body) == ["BAD_USER_INPUT"], (bad, body)
    body = await gql.query("admin", REMOVE, {"r": requirement})
    assert body == {"data": {"removeConsentRequirement": False}}
