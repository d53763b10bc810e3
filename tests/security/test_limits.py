"""Every query limit holds at its bound and refuses just over it, before execution.

Defaults under test (api/hardening/settings.py): depth 10, aliases 30, tokens 2000, fields 500,
cost 500 000, page size 500.
"""

from __future__ import annotations

from typing import Any

from graphql import Lexer, Source, TokenKind

from api.hardening.settings import HardeningSettings
from schema.node import to_global_id
from tests.security.conftest import GraphQLClient, assert_clean, complexity_codes, refusal

DEFAULTS = HardeningSettings()


def tokens_of(query: str) -> int:
    lexer = Lexer(Source(query))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def ask(sec: GraphQLClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = await sec.post("alice", query, variables)
    assert_clean(response)
    assert response.status_code == 200, response.text
    return response.json()


def department_chain(depth: int) -> str:
    """`me { user { department { parent { … { name } } } } }`: exactly `depth` levels."""
    parents = depth - 4  # me, user, department and name are the other four
    inner = "name"
    for _ in range(parents):
        inner = f"parent {{ {inner} }}"
    return f"{{ me {{ user {{ department {{ {inner} }} }} }} }}"


async def test_depth_at_the_limit_runs_and_one_more_is_refused(sec: GraphQLClient) -> None:
    body = await ask(sec, department_chain(DEFAULTS.max_depth))
    assert complexity_codes(body) == []
    assert body["data"]["me"]["user"]["department"] is not None
    over = refusal(await ask(sec, department_chain(DEFAULTS.max_depth + 1)))
    assert over["limit"] == "depth" and over["value"] == DEFAULTS.max_depth + 1
    assert over["maximum"] == DEFAULTS.max_depth and "cost" in over


async def test_depth_counts_through_fragments_and_the_customer_contact_cycle(
    sec: GraphQLClient,
) -> None:
    query = """
      fragment C on Customer { contacts { nodes { customer { ...D } } } }
      fragment D on Customer { contacts { nodes { customer { contacts { nodes { name } } } } } }
      { customers(first: 1) { nodes { ...C } } }"""
    over = refusal(await ask(sec, query))
    assert over["limit"] == "depth" and over["value"] == 11


async def test_aliases_at_the_limit_run_and_one_more_is_refused(sec: GraphQLClient) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    body = await ask(sec, aliased(DEFAULTS.max_aliases))
    assert complexity_codes(body) == [] and len(body["data"]) == DEFAULTS.max_aliases
    over = refusal(await ask(sec, aliased(DEFAULTS.max_aliases + 1)))
    assert over["limit"] == "aliases" and over["value"] == DEFAULTS.max_aliases + 1


async def test_alias_overloading_of_a_heavy_field_is_refused(sec: GraphQLClient) -> None:
    heavy = "customers(first: 500) { nodes { contacts(first: 500) { nodes { name phone } } } }"
    query = "{ " + " ".join(f"c{i}: {heavy}" for i in range(10)) + " }"
    over = refusal(await ask(sec, query))
    assert over["limit"] == "cost" and over["cost"] > DEFAULTS.max_cost


def padded_to(tokens: int) -> str:
    """A valid, cheap query of exactly `tokens` lexical tokens (commas are not tokens)."""
    unit = 'customers(first: 1, after: null, filter: {namePrefix: "a", region: "b"}) { totalCount }'
    body = []
    while tokens_of("{ " + " ".join([*body, unit]) + " }") <= tokens:
        body.append(unit)
    query = "{ " + " ".join(body) + " }"
    missing = tokens - tokens_of(query)
    query = "{ " + " ".join(body + ["__typename"] * missing) + " }"
    assert tokens_of(query) == tokens
    return query


async def test_tokens_at_the_limit_run_and_one_more_is_refused(sec: GraphQLClient) -> None:
    body = await ask(sec, padded_to(DEFAULTS.max_tokens))
    assert complexity_codes(body) == []
    assert body["data"]["customers"]["totalCount"] == 0
    over = refusal(await ask(sec, padded_to(DEFAULTS.max_tokens + 1)))
    assert over["limit"] == "tokens" and over["value"] == DEFAULTS.max_tokens + 1


async def test_a_flood_of_comments_is_refused_like_tokens(sec: GraphQLClient) -> None:
    query = "{ __typename }" + "\n#" * (DEFAULTS.max_tokens + 1)
    over = refusal(await ask(sec, query))
    assert over["limit"] == "comments"


def duplicated(n: int) -> str:
    """`me { user { username × (n-2) } }`: n field selections that merge into one."""
    return "{ me { user { " + " ".join(["username"] * (n - 2)) + " } } }"


async def test_field_duplication_at_the_limit_runs_and_one_more_is_refused(
    sec: GraphQLClient,
) -> None:
    body = await ask(sec, duplicated(DEFAULTS.max_fields))
    assert complexity_codes(body) == []
    assert body["data"]["me"]["user"] == {"username": "alice"}
    over = refusal(await ask(sec, duplicated(DEFAULTS.max_fields + 1)))
    assert over["limit"] == "fields" and over["value"] == DEFAULTS.max_fields + 1


async def test_fragment_bomb_is_refused_without_expanding_it(sec: GraphQLClient) -> None:
    # F0 spreads F1 twice, F1 spreads F2 twice, …: 2^25 selections once expanded
    fragments = [f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(25)] + [
        "fragment F25 on User { username }"
    ]
    query = "{ me { user { ...F0 } } } " + " ".join(fragments)
    over = refusal(await ask(sec, query))
    assert over["limit"] == "fields"


async def test_circular_fragments_are_a_validation_error_not_a_crash(sec: GraphQLClient) -> None:
    query = """
      fragment A on Customer { name ...B }
      fragment B on Customer { id ...A }
      { customers(first: 1) { nodes { ...A } } }"""
    body = await ask(sec, query)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "within itself" in body["errors"][0]["message"]


COST_QUERY = """query($a: Int!, $b: Int!, $k: Int!) {
  customers(first: $a) { nodes { contacts(first: 500) { nodes { id } } } }
  m: customers(first: 500) { nodes { contacts(first: $b) { nodes { id } } } }
  n: customers(first: $k) { nodes { id } }
}"""


def cost_of(a: int, b: int, k: int) -> int:
    """Each field costs the number of times it may resolve: pages multiply down the tree."""
    return (2 + 2 * a + a * 500) + (2 + 2 * 500 + 500 * b) + (2 + k)


async def test_cost_at_the_limit_runs_and_one_more_is_refused(sec: GraphQLClient) -> None:
    at = {"a": 500, "b": 495, "k": 494}
    assert cost_of(**at) == DEFAULTS.max_cost
    body = await ask(sec, COST_QUERY, at)
    assert complexity_codes(body) == [] and body["data"]["n"]["nodes"]
    over = refusal(await ask(sec, COST_QUERY, {**at, "k": 495}))
    assert over["limit"] == "cost" and over["cost"] == DEFAULTS.max_cost + 1


async def test_cost_uses_the_schema_default_page_size_when_first_is_absent(
    sec: GraphQLClient,
) -> None:
    # customers, nodes: 1 each; contacts, nodes: ×500; customer, contacts, nodes: ×500×50
    # (contacts' default page); customer, name: ×500×50×50
    query = """{ customers(first: 500) { nodes { contacts { nodes { customer {
                 contacts { nodes { customer { name } } } } } } } } }"""
    over = refusal(await ask(sec, query))
    assert over["limit"] == "cost"
    assert over["cost"] == 1 + 1 + 500 * 2 + 500 * 50 * 3 + 500 * 50 * 50 * 2


async def test_first_at_500_runs_and_501_is_bad_user_input(sec: GraphQLClient) -> None:
    body = await ask(sec, "{ customers(first: 500) { totalCount } }")
    assert "errors" not in body and body["data"]["customers"]["totalCount"] > 0
    for query, variables in [
        ("{ customers(first: 501) { totalCount } }", None),
        ("query($n: Int) { contacts(first: $n) { totalCount } }", {"n": 501}),
        ("{ customers(first: 1) { nodes { contacts(first: 100000) { totalCount } } } }", None),
        ("query($n: Int = 2000000000) { tickets(first: $n) { totalCount } }", None),
    ]:
        body = await ask(sec, query, variables)
        assert body["data"] is None, query
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "first"}


async def test_first_beyond_int_range_is_refused_by_coercion(sec: GraphQLClient) -> None:
    body = await ask(sec, "{ customers(first: 99999999999999999999999) { totalCount } }")
    assert body["data"] is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}


async def test_a_maximal_refusal_reports_the_cost_it_computed(sec: GraphQLClient) -> None:
    own = await sec.query("alice", "{ customers(first: 1) { nodes { id } } }")
    customer_id = own["data"]["customers"]["nodes"][0]["id"]
    assert customer_id != to_global_id("Customer", 0)
    query = f"""{{ customer(id: "{customer_id}") {{
        contacts(first: 500) {{ nodes {{ customer {{ tickets(first: 500) {{ nodes {{
          customer {{ opportunities(first: 500) {{ nodes {{ name }} }} }} }} }} }} }} }} }} }}"""
    over = refusal(await ask(sec, query))
    assert over["limit"] == "cost"
    assert over["cost"] == 3 + 500 * 3 + 500 * 500 * 3 + 500 * 500 * 500
