"""Introspection and suggestions: only in dev mode, introspection never for partner tokens."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import Settings
from tests.security.conftest import (
    GraphQLClient,
    assert_clean,
    partner_token,
    post_as_token,
    running,
    settings_with,
)

INTROSPECTION = [
    "{ __schema { types { name fields { name } } } }",
    '{ __type(name: "Customer") { fields { name } } }',
    "{ me { user { username } } __schema { queryType { name } } }",
    "fragment S on Query { __schema { types { name } } } { ...S }",
    '{ ... on Query { __type(name: "Contact") { name } } }',
]


def forbidden_introspection(body: dict[str, Any]) -> None:
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] in ("__schema", "__type")


@pytest.mark.parametrize("query", INTROSPECTION)
async def test_introspection_is_refused_outside_dev_mode(sec: GraphQLClient, query: str) -> None:
    response = await sec.post("admin", query)
    assert_clean(response)
    forbidden_introspection(response.json())


async def test_introspection_is_refused_in_prod_mode(seeded_settings: Settings) -> None:
    async with running(settings_with(seeded_settings, env="prod")) as prod:
        for query in INTROSPECTION:
            forbidden_introspection(await prod.query("alice", query))
        get = await prod.http.get("/graphql")
        assert get.status_code == 405  # no GraphiQL either
        assert get.headers["allow"] == "POST"


async def test_typename_stays_allowed(sec: GraphQLClient) -> None:
    body = await sec.query("alice", "{ __typename me { user { __typename } } }")
    assert body["data"] == {"__typename": "Query", "me": {"user": {"__typename": "User"}}}


async def test_dev_mode_introspects_for_users_but_never_for_partners(
    seeded_settings: Settings, demo_engine: AsyncEngine
) -> None:
    token = await partner_token(demo_engine, None, ["customers:read", "contacts:read"])
    async with running(settings_with(seeded_settings, env="dev")) as dev:
        body = await dev.query("alice", INTROSPECTION[1])
        names = {f["name"] for f in body["data"]["__type"]["fields"]}
        assert {"phone", "idNumber", "totalSpend"} <= names
        for query in INTROSPECTION:
            response = await post_as_token(dev, token, query)
            assert response.status_code == 200
            forbidden_introspection(response.json())
        assert (await dev.http.get("/graphql")).headers["content-type"].startswith("text/html")


MISSPELT = [
    ("{ customers { nodes { phon } } }", {}),
    ("{ customers(frist: 1) { totalCount } }", {}),
    ("{ customers(filter: {namePrefx: \"a\"}) { totalCount } }", {}),
    ("{ customers(orderBy: {field: NAMEE}) { totalCount } }", {}),
    ("query($o: CustomerOrder) { customers(orderBy: $o) { totalCount } }",
     {"o": {"field": "NAMEE"}}),
    ("query($f: CustomerFilter) { customers(filter: $f) { totalCount } }", {"f": {"emial": "x"}}),
    ("{ customer(id: 1) { nme } }", {}),
]  # fmt: skip


async def test_suggestions_are_hidden_outside_dev_mode(sec: GraphQLClient) -> None:
    for query, variables in MISSPELT:
        response = await sec.post("alice", query, variables)
        assert_clean(response)
        body = response.json()
        assert body["errors"], query
        assert all("Did you mean" not in e["message"] for e in body["errors"]), body


async def test_suggestions_are_shown_in_dev_mode(seeded_settings: Settings) -> None:
    async with running(settings_with(seeded_settings, env="dev")) as dev:
        shown = 0
        for query, variables in MISSPELT:
            body = (await dev.post("alice", query, variables)).json()
            shown += any("Did you mean" in e["message"] for e in body["errors"])
        assert shown == len(MISSPELT)


async def test_partners_get_no_suggestions_even_in_dev_mode(
    seeded_settings: Settings, demo_engine: AsyncEngine
) -> None:
    """Suggestions are introspection by trial and error, and partners may not introspect."""
    token = await partner_token(demo_engine, None, ["customers:read", "contacts:read"])
    async with running(settings_with(seeded_settings, env="dev")) as dev:
        for query, variables in MISSPELT:
            body = (await post_as_token(dev, token, query, variables)).json()
            assert body["errors"], query
            assert all("Did you mean" not in e["message"] for e in body["errors"]), body
