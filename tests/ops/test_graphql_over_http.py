"""The GraphQL over HTTP conformance audit (the `graphql-http` package's server audits), run
against a live `dossier` server process: no MUST and no SHOULD may fail.

The audit is the reference suite of the GraphQL Foundation's GraphQL-over-HTTP spec; it is a
Node package, installed from the npm registry into a temporary folder for this run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.ops.conftest import PASSWORD, free_port, running_server, uvicorn_command

AUDIT_SCRIPT = Path(__file__).with_name("graphql_http_audit.mjs")
PACKAGES = ["graphql-http@1.23.1", "graphql@16.11.0"]
# audits whose advice the contract overrides, with the reason (docs/api.md says the same)
WAIVED: dict[str, str] = {}


@pytest.fixture(scope="module")
def audit_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    node = shutil.which("node")
    assert npm and node, "the GraphQL over HTTP audit needs Node.js and npm (.ci/run installs them)"
    folder = tmp_path_factory.mktemp("graphql-http")
    subprocess.run(  # noqa: S603  # npm, with fixed package names
        [npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
        cwd=folder,
        check=True,
        timeout=300,
    )
    script = folder / AUDIT_SCRIPT.name
    script.write_text(AUDIT_SCRIPT.read_text())
    return script


def test_the_graphql_over_http_audit_finds_no_must_or_should_failure(
    audit_runner: Path, ops_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    # dev mode: the audit's variables case asks `__type(name: $name)`, introspection that
    # production refuses (it would be a FORBIDDEN there, not a transport failure)
    env = {**ops_env, "DOSSIER_ENV": "dev"}
    with running_server(uvicorn_command(port), env, port, tmp_path / "server.log") as server:
        login = httpx.post(
            f"{server.base_url}/auth/token", data={"username": "alice", "password": PASSWORD}
        )
        token = login.json()["access_token"]
        node = shutil.which("node")
        assert node
        finished = subprocess.run(  # noqa: S603  # node running our own audit script
            [node, str(audit_runner)],
            env={
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "DOSSIER_AUDIT_URL": f"{server.base_url}/graphql",
                "DOSSIER_AUDIT_TOKEN": token,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert finished.returncode == 0, finished.stderr
    results = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    assert len(results) > 50, finished.stdout  # the whole suite ran
    failed = [
        f"{r['id']} {r['name']}: {r['reason']}"
        for r in results
        if r["status"] != "ok"
        and r["name"].split()[0] in ("MUST", "SHOULD")
        and r["id"] not in WAIVED
    ]
    assert not failed, "\n".join(failed)
