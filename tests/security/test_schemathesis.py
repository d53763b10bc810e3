"""Schemathesis against a live server: generated GraphQL operations find no 5xx, no schema breach.

Schemathesis (4.x, GraphQL mode) reads the schema by introspection over HTTP as bob, then
generates queries and mutations for every root field and sends them as three callers: bob
(reads the Sales subtree, writes nothing), alice (writes her own customers, so mutations get
past the permission gate) and a partner token (two shared customers, two scopes). Ids are drawn
from real records of every type as well as from junk, so generated requests reach resolvers
instead of stopping at "not a valid id".

Every answer must be: an HTTP status below 500; a JSON object; errors only with the codes the
contract names (never INTERNAL, TIMEOUT, RATE_LIMITED); no trace of the server's insides; and
`data` conforming to the schema for the query sent (non-null fields not null, scalars and enums
of their type, objects with every selected key). The last check is ours: schemathesis's own
GraphQL checks treat every error with a path as a server error, which FORBIDDEN and NOT_FOUND
legitimately are here.

The server is uvicorn on a loopback port, in a thread with its own event loop, over a demo
database of its own (generated mutations may write anything), with rate limits out of reach and
introspection on for users (partners never introspect). The whole run is bounded by
`BUDGET_SECONDS`; each pass is `EXAMPLES` cases per root field and caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.app import create_app
from api.hardening.settings import RateBudget
from api.seed.demo import seed_demo
from api.settings import Settings
from identity.partner_tokens import issue_partner_token
from schema.node import to_global_id
from tests.conftest import fresh_database, migrated_engine, settings_for
from tests.graphql import oracle
from tests.security.conftest import settings_with

BUDGET_SECONDS = 120.0  # generation and requests; the fixture's seed and start come on top
EXAMPLES = 3  # per root field and caller in one pass (about 75 root fields in release 2)
UNLIMITED = RateBudget(burst=10_000_000, per_second=10_000_000.0)
ALLOWED_CODES = frozenset(
    {"BAD_USER_INPUT", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "DUPLICATE", "QUERY_TOO_COMPLEX",
     "PAYLOAD_TOO_LARGE"}
)  # fmt: skip
TRACES = re.compile(
    r"Traceback|File \"|site-packages|/work/|\.py\b|sqlalchemy|asyncpg|SQLSTATE|psycopg"
    r"|syntax error at|relation \"",
    re.IGNORECASE,
)
RECORD_TABLES = {
    "Customer": "customers", "Contact": "contacts", "Opportunity": "opportunities",
    "Ticket": "tickets", "User": "users", "Department": "departments",
    "Interaction": "interactions", "AuditEvent": "audit_events",
}  # fmt: skip


@dataclasses.dataclass
class Server:
    base_url: str
    tokens: dict[str, str]  # caller → bearer token
    ids: list[str]  # global ids of real records


async def _prepare(settings: Settings, found: dict[str, Any]) -> None:
    """Migrate and seed the fuzz database; note real ids and a partner token."""
    async with migrated_engine(settings) as engine:
        await seed_demo(engine, settings.field_cipher, customers=30)
        ids: list[str] = []
        for type_name, table in RECORD_TABLES.items():
            key = "seq" if table == "audit_events" else "id"
            rows = await oracle.rows(engine, f"SELECT {key} FROM {table} ORDER BY 1 LIMIT 5")  # noqa: S608  # fixed names
            ids += [to_global_id(type_name, r[0]) for r in rows]
        shared = [int(r.id) for r in await oracle.rows(
            engine, "SELECT id FROM customers ORDER BY id LIMIT 2")]  # fmt: skip
        async with async_sessionmaker(engine)() as session:
            issued = await issue_partner_token(
                session, partner_name="acme-partner", scopes=["customers:read", "contacts:read"],
                customer_ids=shared, expires_in_days=1, issued_by="schemathesis",
            )  # fmt: skip
            await session.commit()
        found["ids"], found["partner"] = ids, issued.token


def _serve(settings: Settings, sock: socket.socket, found: dict[str, Any]) -> None:
    async def main() -> None:
        await _prepare(settings, found)
        config = uvicorn.Config(
            create_app(settings), lifespan="on", log_level="warning", ws="none",
            access_log=False,
        )  # fmt: skip
        server = uvicorn.Server(config)
        found["server"] = server
        await server.serve(sockets=[sock])

    try:
        asyncio.run(main())
    except BaseException as error:  # reported to the test thread
        found["error"] = error


@pytest.fixture(scope="module")
def fuzz_server(data_dir: Path) -> Iterator[Server]:
    with fresh_database("dossier_fuzz") as url:
        settings = settings_with(
            settings_for(url, data_dir / "fuzz"),
            user_rate=UNLIMITED,
            partner_rate=UNLIMITED,
            introspection=True,  # for users only: partners never introspect
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        found: dict[str, Any] = {}
        thread = threading.Thread(target=_serve, args=(settings, sock, found), daemon=True)
        thread.start()
        started = time.monotonic() + 120
        while not (found.get("server") and found["server"].started):
            assert "error" not in found, found.get("error")
            assert thread.is_alive() and time.monotonic() < started, "server did not start"
            time.sleep(0.05)
        base_url = f"http://127.0.0.1:{port}"
        try:
            tokens = {"partner": found["partner"]}
            for user in ("bob", "alice"):
                response = requests.post(
                    f"{base_url}/auth/token",
                    data={"username": user, "password": "dossier-demo"},
                    timeout=10,
                )
                assert response.status_code == 200, response.text
                tokens[user] = response.json()["access_token"]
            yield Server(base_url, tokens, found["ids"])
        finally:
            found["server"].should_exit = True
            thread.join(30)
            sock.close()
        assert "error" not in found, found["error"]


# --- what a conforming answer is ------------------------------------------------------------


def _scalar_ok(name: str, value: Any) -> bool:
    if name == "Int":
        return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
    if name == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name in ("String", "ID", "DateTime", "Date"):
        return isinstance(value, str)
    if name == "Boolean":
        return isinstance(value, bool)
    if name == "Decimal":
        return isinstance(value, str) and _is_decimal(value)
    return True  # JSON, Upload: any value


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


@dataclasses.dataclass
class Conformance:
    """Walks `data` along the operation's selections, collecting what breaks the schema."""

    schema: graphql.GraphQLSchema
    fragments: dict[str, graphql.FragmentDefinitionNode]
    problems: list[str] = dataclasses.field(default_factory=list)

    def value(
        self,
        type_: Any,
        selections: graphql.SelectionSetNode | None,
        value: Any,
        path: str,
        strict: bool = True,
    ) -> None:
        """`strict`: every selected key must be there (not so inside a fragment that may not
        apply: its keys may belong to a sibling fragment on another type)."""
        if isinstance(type_, graphql.GraphQLNonNull):
            if value is None:
                self.problems.append(f"{path}: null for non-null {type_}")
                return
            type_ = type_.of_type
        if value is None:
            return
        if isinstance(type_, graphql.GraphQLList):
            if not isinstance(value, list):
                self.problems.append(f"{path}: {value!r} is not a list")
                return
            for index, item in enumerate(value):
                self.value(type_.of_type, selections, item, f"{path}[{index}]", strict)
        elif isinstance(type_, graphql.GraphQLScalarType):
            if not _scalar_ok(type_.name, value):
                self.problems.append(f"{path}: {value!r} is no {type_.name}")
        elif isinstance(type_, graphql.GraphQLEnumType):
            if value not in type_.values:
                self.problems.append(f"{path}: {value!r} is no {type_.name}")
        elif not isinstance(value, dict):
            self.problems.append(f"{path}: {value!r} is not an object")
        elif selections is not None:
            self.selections(type_, selections, value, path, required=strict)

    def selections(
        self,
        parent: Any,
        selection_set: graphql.SelectionSetNode,
        value: dict[str, Any],
        path: str,
        *,
        required: bool,
    ) -> None:
        typename = value.get("__typename")
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                name = selection.name.value
                if key not in value:
                    if required:
                        self.problems.append(f"{path}.{key}: missing")
                    continue
                if name == "__typename":
                    self.value(graphql.GraphQLNonNull(graphql.GraphQLString), None,
                               value[key], f"{path}.{key}")  # fmt: skip
                    continue
                field = parent.fields.get(name) if hasattr(parent, "fields") else None
                if field is None:
                    self.problems.append(f"{path}.{key}: no field {name} on {parent}")
                    continue
                self.value(
                    field.type, selection.selection_set, value[key], f"{path}.{key}", required
                )
            else:
                if isinstance(selection, graphql.InlineFragmentNode):
                    condition, inner = selection.type_condition, selection.selection_set
                else:
                    fragment = self.fragments[selection.name.value]
                    condition, inner = fragment.type_condition, fragment.selection_set
                target = self.schema.get_type(condition.name.value) if condition else parent
                applies = typename is not None and target is not None and (
                    typename == target.name
                    or (
                        isinstance(target, graphql.GraphQLInterfaceType | graphql.GraphQLUnionType)
                        and any(t.name == typename
                                for t in self.schema.get_possible_types(target))
                    )
                )  # fmt: skip
                # without __typename a fragment on another type may rightly be absent
                self.selections(target, inner, value, path, required=required and applies)


def conformance_problems(
    schema: graphql.GraphQLSchema, document: graphql.DocumentNode, data: Any
) -> list[str]:
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    fragments = {
        d.name.value: d
        for d in document.definitions
        if isinstance(d, graphql.FragmentDefinitionNode)
    }
    (operation,) = operations
    root = (
        schema.mutation_type
        if operation.operation == graphql.OperationType.MUTATION
        else schema.query_type
    )
    checker = Conformance(schema, fragments)
    if not isinstance(data, dict):
        return [f"data is {data!r}"]
    checker.selections(root, operation.selection_set, data, "data", required=True)
    return checker.problems


def judge(schema: graphql.GraphQLSchema, body: str, response: Any) -> str:
    """The outcome label of one answer; AssertionError naming the request when it breaks."""
    where = f"\nrequest: {body}\nstatus {response.status_code}: {response.text[:2000]}"
    assert response.status_code < 500, "5xx" + where
    assert response.status_code != 429, "rate limited" + where
    assert not TRACES.search(response.text), "server insides in the answer" + where
    payload = response.json()
    assert isinstance(payload, dict), "not a JSON object" + where
    codes = [
        (e.get("extensions") or {}).get("code")
        for e in payload.get("errors") or ()
        if isinstance(e, dict)
    ]
    assert set(codes) <= ALLOWED_CODES, f"error codes {codes}" + where
    assert not any("non-nullable" in str(e.get("message")) for e in payload.get("errors") or ()), (
        "schema violation" + where
    )
    if payload.get("data") is not None:
        problems = conformance_problems(schema, graphql.parse(body), payload["data"])
        assert not problems, f"data does not conform: {problems[:5]}" + where
    return f"{response.status_code} {','.join(sorted(set(codes))) or 'ok'}"


# --- the run --------------------------------------------------------------------------------


def register_scalars(ids: list[str]) -> None:
    """Strategies for the custom scalars, and ids that mostly name real records."""
    junk = st.text(max_size=12)
    schemathesis.graphql.scalar(
        "ID", st.one_of(st.sampled_from(ids), st.sampled_from(ids), junk).map(nodes.String)
    )
    amounts = st.decimals(min_value=-(10**6), max_value=10**9, places=2, allow_nan=False)
    schemathesis.graphql.scalar(
        "Decimal", st.one_of(amounts.map(str), st.text(max_size=8)).map(nodes.String)
    )
    schemathesis.graphql.scalar("JSON", st.just(nodes.String("{}")))
    schemathesis.graphql.scalar("Upload", st.just(nodes.Null))


def fuzz(operation: Any, token: str, outcomes: Counter[str], deadline: float) -> None:
    """`EXAMPLES` generated cases of one root field, sent with one caller's token."""
    schema = operation.schema
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
    )  # fmt: skip
    @given(case=operation.as_strategy())
    def send(case: Any) -> None:
        if time.monotonic() >= deadline:
            return
        # a fresh connection per case: on a reused one each answer waited ~40 ms more (measured
        # 57 ms against 17 ms for `me`), a delayed-ACK stall, not the server's work
        response = case.call(headers=headers, timeout=30)
        schema.validate_response(operation, response, case=case)  # schemathesis's own checks
        query = case.body if isinstance(case.body, str) else case.body["query"]
        outcomes[judge(schema.client_schema, query, response)] += 1

    send()


def test_generated_operations_find_no_server_error_and_no_schema_violation(
    fuzz_server: Server,
) -> None:
    started = time.monotonic()
    register_scalars(fuzz_server.ids)
    endpoint = f"{fuzz_server.base_url}/graphql"
    schema = schemathesis.graphql.from_url(
        endpoint, headers={"Authorization": f"Bearer {fuzz_server.tokens['bob']}"}, timeout=30
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(o.definition.is_mutation for o in operations), "mutations are part of the run"
    outcomes: Counter[str] = Counter()
    covered: set[tuple[str, str]] = set()
    deadline = started + BUDGET_SECONDS
    passes = 0
    while time.monotonic() < deadline and passes < 2:
        passes += 1
        for operation in operations:
            for caller, token in fuzz_server.tokens.items():
                if time.monotonic() >= deadline:
                    break
                fuzz(operation, token, outcomes, deadline)
                covered.add((operation.label, caller))
    elapsed = time.monotonic() - started
    total = sum(outcomes.values())
    print(
        f"\nschemathesis: {total} requests, {len(operations)} root fields x "
        f"{len(fuzz_server.tokens)} callers, {passes} pass(es), {elapsed:.1f} s; "
        f"outcomes {dict(outcomes.most_common())}"
    )
    assert elapsed < BUDGET_SECONDS + 30  # the last case started before the deadline
    # every root field met every caller at least once within the budget
    labels = {o.label for o in operations}
    assert {(label, caller) for label in labels for caller in fuzz_server.tokens} <= covered
    assert any(label.endswith("ok") for label in outcomes), outcomes  # some got through
