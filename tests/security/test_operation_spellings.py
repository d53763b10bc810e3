"""However a document is spelled, a mutation persists and is audited, and a refused one is DENIED.

The endpoint once decided "is this a mutation?" with a regular expression over the text: a
leading comma, a byte-order mark or `query A {…} mutation B {…}` on one line made it roll back a
mutation that had answered success. Hypothesis writes the same two mutations (one allowed, one
aimed outside the caller's scope) in many legal spellings; each must commit and leave its event.

It runs on the security suite's app (`sec`), whose per-user rate budget is raised: 500 writes as
one user in a few seconds are the test, not a flood to refuse.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql import oracle
from tests.graphql.conftest import GraphQLClient

# GraphQL ignores these anywhere between tokens: the byte-order mark, whitespace, commas and
# comments (spec §2.1.1–2.1.7)
IGNORED = st.sampled_from(["", " ", ",", "\n", "\t", "\r\n", ",,", " , ", "#c\n", "# mutation\n"])
PREFIX = st.sampled_from(["", ",", "\ufeff", "\ufeff,", "#x\n", "  \n\t", ",\n,", "\r\n# q\n"])
OTHER = "query Other { me { user { id } } }"
FRAGMENT = "fragment Picked on Customer { id name }"
_names = itertools.count()


@dataclass(frozen=True)
class Spelling:
    prefix: str
    gaps: tuple[str, ...]
    named: bool
    other: str | None  # "before" / "after": another operation in the same document
    fragment: str | None  # "before" / "after": a fragment definition
    send_name: bool

    def document(self) -> tuple[str, str | None]:
        g = self.gaps
        name = "Rename" if self.named or self.other or self.send_name else ""
        selection = "...Picked" if self.fragment else "id name"
        mutation = (
            f"mutation{g[0] or ' '}{name}{g[1]}($id:{g[2]}ID!{g[3]}$name:String!){g[4]}"
            f"{{{g[5]}updateCustomer(id:$id{g[6] or ' '}input:{{name:$name}}){{{selection}}}}}"
        )
        parts = [mutation]
        if self.other == "before":
            parts.insert(0, OTHER)
        elif self.other == "after":
            parts.append(OTHER)
        if self.fragment == "before":
            parts.insert(0, FRAGMENT)
        elif self.fragment == "after":
            parts.append(FRAGMENT)
        text = self.prefix + g[7].join(parts) if g[7] else self.prefix + " ".join(parts)
        return text, ("Rename" if self.other or self.send_name else None)


spellings = st.builds(
    Spelling,
    prefix=PREFIX,
    gaps=st.tuples(*[IGNORED] * 8),
    named=st.booleans(),
    other=st.sampled_from([None, "before", "after"]),
    fragment=st.sampled_from([None, "before", "after"]),
    send_name=st.booleans(),
)


_OWNED: dict[str, list[str]] = {}


async def _customers_of(engine: AsyncEngine, owner: str) -> list[str]:
    if owner not in _OWNED:
        owner_id = await oracle.user_id(engine, owner)
        _OWNED[owner] = sorted(await oracle.customer_ids(engine, "owner_id = :u", u=owner_id))
    return _OWNED[owner]


async def _events(engine: AsyncEngine, request_id: str) -> list[Any]:
    return await oracle.rows(
        engine,
        "SELECT action, resource_ids, fields FROM audit_events WHERE request_id = :r ORDER BY seq",
        r=request_id,
    )


async def _post(gql: GraphQLClient, spelling: Spelling, target: str, name: str) -> Any:
    query, operation_name = spelling.document()
    request_id = uuid.uuid4().hex
    payload: dict[str, Any] = {"query": query, "variables": {"id": target, "name": name}}
    if operation_name:
        payload["operationName"] = operation_name
    token = await gql.token("alice")
    response = await gql.http.post(
        "/graphql",
        json=payload,
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    assert response.status_code == 200, (query, response.text)
    return response.json(), request_id


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spelling=spellings, refused=st.booleans())
async def test_every_spelling_of_a_mutation_commits_and_is_audited(
    sec: GraphQLClient, demo_engine: AsyncEngine, spelling: Spelling, refused: bool
) -> None:
    customers = await _customers_of(demo_engine, "frank" if refused else "alice")
    target = customers[next(_names) % len(customers)]
    name = f"Spelling {uuid.uuid4().hex[:12]}"

    body, request_id = await _post(sec, spelling, target, name)
    events = await _events(demo_engine, request_id)
    stored = await oracle.rows(
        demo_engine, "SELECT count(*) AS n FROM customers WHERE name = :n", n=name
    )

    if refused:
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
        assert stored[0].n == 0
        assert [e.action for e in events] == ["DENIED"], (spelling.document(), events)
        assert "Mutation.updateCustomer" in events[0].fields
    else:
        assert "errors" not in body, body
        assert body["data"]["updateCustomer"]["name"] == name
        assert stored[0].n == 1, spelling.document()  # committed, not rolled back
        assert "UPDATE" in [e.action for e in events], (spelling.document(), events)
