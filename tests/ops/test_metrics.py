"""GET /metrics: the series an operator alerts on, with bounded labels and no personal data."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from api.metrics import MAX_OPERATION_NAMES, OperationNames, exposition, sample_chain_length
from tests.ops.conftest import graphql, login

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]

DENIED_QUERY = "query Customers { customers(first: 3) { nodes { name phone } } }"
ID_LIKE_NAME = "Customer123456"
BOUNDED_LABELS = {"operation", "outcome", "type", "field", "cache", "action", "le"}


def parse(text: str) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(http: httpx.AsyncClient) -> Series:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def delta(before: Series, after: Series, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_hold_every_series_after_a_few_requests(
    ops_client: httpx.AsyncClient, ops_app: Starlette
) -> None:
    before = await scrape(ops_client)
    dave = await login(ops_client, "dave")
    alice = await login(ops_client, "alice")

    denied = await graphql(ops_client, dave, DENIED_QUERY, operation_name="Customers")
    assert denied["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "Customer.phone"}
    await graphql(ops_client, dave, "{ me { user { username } } }")
    await graphql(ops_client, dave, f"query {ID_LIKE_NAME} {{ me {{ user {{ username }} }} }}")
    too_many = await graphql(ops_client, alice, "{ customers(first: 501) { nodes { name } } }")
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    anonymous = await ops_client.post("/graphql", json={"query": "{ me { user { id } } }"})
    assert anonymous.status_code == 401
    # DOSSIER_LOGIN_USERNAME_BURST=2: two refusals, then the throttle answers
    statuses = [
        (
            await ops_client.post("/auth/token", data={"username": "frank", "password": "x"})
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]

    after = await scrape(ops_client)
    requests = "dossier_graphql_requests_total"
    assert delta(before, after, requests, operation="Customers", outcome="denied") == 1
    assert delta(before, after, requests, operation="anonymous", outcome="ok") == 2
    assert delta(before, after, requests, operation="anonymous", outcome="error") == 1
    assert delta(before, after, requests, operation="anonymous", outcome="unauthenticated") == 1
    latency = "dossier_graphql_request_duration_seconds_count"
    assert delta(before, after, latency, operation="Customers", outcome="denied") == 1
    assert delta(before, after, "dossier_graphql_sql_statements_count", operation="Customers") == 1
    assert delta(before, after, "dossier_graphql_sql_statements_sum", operation="Customers") >= 2
    forbidden = "dossier_graphql_forbidden_total"
    assert delta(before, after, forbidden, type="Customer", field="phone") == 1
    audit = "dossier_audit_events_written_total"
    assert delta(before, after, audit, action="READ") >= 1
    assert delta(before, after, audit, action="DENIED") >= 1
    assert delta(before, after, "dossier_auth_login_failures_total") == 2
    assert delta(before, after, "dossier_auth_login_throttled_total") == 1
    assert value(after, "dossier_policy_loads_total") >= 1
    assert delta(before, after, "dossier_policy_decision_sets_total", cache="hit") >= 2

    state = ops_app.state.dossier
    async with state.engine.connect() as connection:
        head = await connection.exec_driver_sql("SELECT seq FROM audit_chain_head WHERE id = 1")
        length = head.scalar()
    # the chain length is refreshed in the background, not by the scrape (see
    # tests/ops/test_observability.py); here it is sampled now, as the refresher does
    await sample_chain_length(state.engine)
    assert value(await scrape(ops_client), "dossier_audit_chain_length") >= length
    assert value(after, "dossier_db_pool_size") >= state.settings.pool.size
    assert value(after, "dossier_db_pool_max_overflow") >= state.settings.pool.max_overflow
    assert value(after, "dossier_db_pool_checked_out") == 0  # every request has finished
    assert value(after, "dossier_db_pool_overflow") == 0


async def test_labels_carry_no_query_text_ids_or_names_of_people(
    ops_client: httpx.AsyncClient,
) -> None:
    dave = await login(ops_client, "dave")
    await graphql(ops_client, dave, f"query {ID_LIKE_NAME} {{ me {{ user {{ username }} }} }}")
    text = (await ops_client.get("/metrics")).text
    assert ID_LIKE_NAME not in text
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("dossier_"):
            continue
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                assert label in BOUNDED_LABELS, label
                if label == "le":  # histogram bucket bounds are ours
                    continue
                assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", label_value), label_value
                assert not re.search(r"\d{4}", label_value)
                assert label_value not in ("dave", "alice", "frank")


async def test_pool_gauges_follow_connections_in_use(ops_app: Starlette) -> None:
    engine = ops_app.state.dossier.engine
    idle = parse(exposition().decode())
    async with engine.connect() as first, engine.connect() as second:
        await first.exec_driver_sql("SELECT 1")
        await second.exec_driver_sql("SELECT 1")
        busy = parse(exposition().decode())
    # the gauges are the process's: other apps of this test session (their indexers, workers
    # and listeners) check connections out for a moment too, so wait for them to settle
    assert delta(idle, busy, "dossier_db_pool_checked_out") >= 2
    deadline = time.monotonic() + 10
    while True:
        done = parse(exposition().decode())
        if delta(idle, done, "dossier_db_pool_checked_out") <= 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert delta(idle, done, "dossier_db_pool_checked_out") <= 0


def test_operation_names_are_bounded_and_never_look_like_ids() -> None:
    names = OperationNames(limit=3)
    assert names.label("Customers") == "Customers"
    assert names.label(None) == "anonymous"
    assert names.label("query { customers }") == "anonymous"
    assert names.label("customer_20240101") == "anonymous"
    assert [names.label(n) for n in ("A", "B", "C", "A")] == ["A", "B", "anonymous", "A"]
    assert MAX_OPERATION_NAMES >= 100
