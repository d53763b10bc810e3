"""SQL injection strings in every string argument: no 5xx, no leak, same answer as harmless text.

Each argument is sent once with a harmless string and once with each payload; the two answers
must be the same (data and error codes), so a payload changes nothing a plain string would not.
"""

from __future__ import annotations

from typing import Any

import pytest

from resolvers.pagination import encode_cursor
from schema.node import to_global_id
from tests.security.conftest import GraphQLClient, assert_clean

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE customers; --",
    '" OR ""="',
    "%",
    "_",
    "%' OR name LIKE '%",
    "\\",
    "') OR ('1'='1",
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT password_hash, NULL FROM users --",
    "$1",
    "北京' OR '1'='1",
    "a" * 5000,
]
HARMLESS = "zz-harmless"

# (who asks, query with $v, what $v is: a plain string, or wrapped into an id or a cursor)
ARGUMENTS: list[tuple[str, str, str]] = [
    ("carol", "query($v: String) { customers(first: 500, filter: {namePrefix: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("carol", "query($v: String) { customers(first: 500, filter: {region: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("carol", "query($v: String) { customers(first: 500, filter: {industry: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("carol", "query($v: String) { customers(first: 500, filter: {tag: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("alice", "query($v: String) { customers(first: 500, filter: {email: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("dave", "query($v: String) { customers(first: 500, filter: {creditCode: $v}) "
             "{ totalCount nodes { id } } }", "text"),
    ("carol", "query($v: String) { contacts(first: 500, filter: {namePrefix: $v}) "
              "{ totalCount nodes { id } } }", "text"),
    ("erin", "query($v: String) { auditEvents(first: 50, filter: {actor: $v}) "
             "{ nodes { id } } }", "text"),
    ("erin", "query($v: String) { auditEvents(first: 50, filter: {resourceType: $v}) "
             "{ nodes { id } } }", "text"),
    ("carol", "query($v: ID!) { customer(id: $v) { id name } }", "raw"),
    ("carol", "query($v: ID!) { node(id: $v) { id } }", "raw"),
    ("carol", "query($v: ID!) { customer(id: $v) { id name } }", "id"),
    ("carol", "query($v: ID!) { node(id: $v) { id } }", "id"),
    ("carol", "query($v: ID) { contacts(first: 5, filter: {customerId: $v}) { totalCount } }",
     "id"),
    ("carol", "query($v: ID) { tickets(first: 5, filter: {customerId: $v}) { totalCount } }",
     "id"),
    ("dave", "query($v: ID) { opportunities(first: 5, filter: {ownerId: $v}) { totalCount } }",
     "raw"),
    ("carol", "query($v: ID) { customers(first: 5, filter: {departmentId: $v}) { totalCount } }",
     "raw"),
    ("carol", "query($v: String) { customers(first: 5, after: $v) { nodes { id } } }", "raw"),
    ("carol", "query($v: String) { customers(first: 5, after: $v) { nodes { id } } }", "cursor"),
    ("carol", "query($v: String) { contacts(first: 5, after: $v) { nodes { id } } }", "cursor"),
    ("carol", "query($v: String) { tickets(first: 5, after: $v) { nodes { id } } }", "raw"),
    ("erin", "query($v: String) { auditEvents(first: 5, after: $v) { nodes { id } } }", "raw"),
]  # fmt: skip


def wrapped(value: str, shape: str) -> str:
    if shape == "id":
        return to_global_id("Customer", value)
    if shape == "cursor":
        return encode_cursor(value, 1)
    return value


def outcome(body: dict[str, Any]) -> tuple[Any, list[Any]]:
    codes = sorted(str(e.get("extensions", {}).get("code")) for e in body.get("errors", []))
    return body.get("data"), codes


@pytest.mark.parametrize(("user", "query", "shape"), ARGUMENTS)
async def test_injection_strings_answer_like_a_harmless_string(
    sec: GraphQLClient, user: str, query: str, shape: str
) -> None:
    baseline = await sec.post(user, query, {"v": wrapped(HARMLESS, shape)})
    assert_clean(baseline)
    expected = outcome(baseline.json())
    for payload in PAYLOADS:
        response = await sec.post(user, query, {"v": wrapped(payload, shape)})
        assert_clean(response)
        assert response.status_code == 200, (payload, response.text)
        assert outcome(response.json()) == expected, (payload, response.text)


@pytest.mark.parametrize(("user", "query", "shape"), ARGUMENTS)
async def test_a_nul_character_is_bad_input_never_an_internal_error(
    sec: GraphQLClient, user: str, query: str, shape: str
) -> None:
    response = await sec.post(user, query, {"v": wrapped("a\u0000b", shape)})
    assert_clean(response)
    body = response.json()
    assert body["data"] is None or all(v is None for v in body["data"].values())
    assert {e["extensions"]["code"] for e in body.get("errors", [])} <= {"BAD_USER_INPUT"}


@pytest.mark.parametrize("escape", ["\\u0000", "\\u{0}", "\\u{000000}"])
async def test_a_nul_character_in_a_literal_is_bad_input(sec: GraphQLClient, escape: str) -> None:
    # every spelling of the escape: the guard skips its walk only when no `\u` is written
    query = '{ customers(filter: {namePrefix: "a' + escape + '"}) { totalCount } }'
    response = await sec.post("carol", query)
    assert_clean(response)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_injection_in_an_inline_literal_is_just_text(sec: GraphQLClient) -> None:
    query = '{ customers(first: 500, filter: {namePrefix: "\\" OR 1=1 --"}) { totalCount } }'
    response = await sec.post("carol", query)
    assert_clean(response)
    assert response.json()["data"]["customers"]["totalCount"] == 0


async def test_like_wildcards_match_literally(sec: GraphQLClient) -> None:
    body = await sec.query(
        "carol",
        '{ a: customers(filter: {namePrefix: "%"}) { totalCount } '
        'b: customers(filter: {namePrefix: "_"}) { totalCount } }',
    )
    assert body["data"] == {"a": {"totalCount": 0}, "b": {"totalCount": 0}}
