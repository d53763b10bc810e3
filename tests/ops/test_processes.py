"""Several server processes on one database: policy changes reach all, metrics add up."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import (
    PASSWORD,
    ServerProcess,
    free_port,
    running_server,
    uvicorn_command,
)

ADD = "mutation($rule: PolicyRuleInput!) { addPolicy(rule: $rule) { resource } }"
REMOVE = "mutation($rule: PolicyRuleInput!) { removePolicy(rule: $rule) }"
EMAILS = "{ customers(first: 3) { nodes { email } } }"
RULE = {"role": "finance", "department": "*", "resource": "customer.email",
        "action": "READ", "scope": "ALL", "effect": "ALLOW"}  # fmt: skip
# NOTIFY is delivered by the server when the change commits; a listener hears it in
# milliseconds on loopback, so a second is a generous bound, not a polling interval
PROPAGATION_BOUND_SECONDS = 1.0


@pytest.fixture(scope="module")
def two_hosts(
    ops_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    logs = tmp_path_factory.mktemp("servers")
    first, second = free_port(), free_port()
    with (
        running_server(uvicorn_command(first), ops_env, first, logs / "a.log") as a,
        running_server(uvicorn_command(second), ops_env, second, logs / "b.log") as b,
    ):
        yield a, b


def token(server: ServerProcess, username: str) -> str:
    response = httpx.post(
        f"{server.base_url}/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


def post(server: ServerProcess, bearer: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def emails_seen(server: ServerProcess, bearer: str) -> list[str | None]:
    return [n["email"] for n in post(server, bearer, EMAILS)["data"]["customers"]["nodes"]]


def wait_for_emails(server: ServerProcess, bearer: str, *, visible: bool) -> float:
    """Seconds until `dave` sees (or stops seeing) e-mails through `server`."""
    started = time.monotonic()
    while True:
        seen = emails_seen(server, bearer)
        if all(seen) if visible else not any(seen):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < PROPAGATION_BOUND_SECONDS, f"not propagated after {elapsed:.3f}s"
        time.sleep(0.005)


def test_policy_change_through_one_process_takes_effect_in_the_other(
    two_hosts: tuple[ServerProcess, ServerProcess], record_property: Any
) -> None:
    a, b = two_hosts
    admin_on_a, dave_on_b = token(a, "admin"), token(b, "dave")
    admin_on_b, dave_on_a = token(b, "admin"), token(a, "dave")
    assert not any(emails_seen(b, dave_on_b))

    added = post(a, admin_on_a, ADD, rule=RULE)
    assert added["data"]["addPolicy"]["resource"] == "customer.email", added
    added_delay = wait_for_emails(b, dave_on_b, visible=True)
    assert all(emails_seen(a, dave_on_a))  # and the writing process itself, at once

    removed = post(b, admin_on_b, REMOVE, rule=RULE)
    assert removed["data"]["removePolicy"] is True, removed
    removed_delay = wait_for_emails(a, dave_on_a, visible=False)
    record_property("notify_delay_seconds", f"{added_delay:.4f},{removed_delay:.4f}")
    sys.stderr.write(
        f"\npolicy NOTIFY propagation: add {added_delay * 1000:.1f} ms, "
        f"remove {removed_delay * 1000:.1f} ms\n"
    )


def requests_total(text: str, operation: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dossier_graphql_requests_total"
        and sample.labels.get("operation") == operation
    )


def test_dossier_serve_workers_share_one_metrics_view(
    ops_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    command = [
        sys.executable, "-c", "from api.cli import main; main()",
        "serve", "--workers", "2", "--port", str(port), "--no-migrate",
    ]  # fmt: skip
    env = {**ops_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with running_server(command, env, port, tmp_path / "serve.log") as server:
        dave = token(server, "dave")
        sent = 24
        for _ in range(sent):
            # a new connection each time, so the kernel may hand it to either worker
            with httpx.Client(base_url=server.base_url) as fresh:
                response = fresh.post(
                    "/graphql",
                    json={"query": "query WorkersProbe { me { user { username } } }"},
                    headers={"Authorization": f"Bearer {dave}", "Connection": "close"},
                )
                assert response.status_code == 200
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=server.base_url) as fresh:
                scrapes.append(requests_total(fresh.get("/metrics").text, "WorkersProbe"))
        workers = {path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert scrapes == [sent] * len(scrapes)
    assert len(workers) >= 2, workers
