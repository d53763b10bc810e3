"""The app behind PgBouncer in transaction mode, as many API hosts on one primary would run it.

PgBouncer hands a server connection to a client for one transaction only, so nothing may
outlive a transaction on it: no named prepared statement reused later, no session SET. The
test starts Debian's pgbouncer on a loopback port with few server connections (so concurrent
requests really share them) and runs nested reads, a mutation and concurrent requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from tests.ops.conftest import free_port, graphql, login

# the app sends these at connect; PgBouncer refuses unknown ones, and in transaction mode they
# could not hold anyway: set them on the role instead (ALTER ROLE … SET statement_timeout …)
IGNORED_STARTUP_PARAMETERS = (
    "extra_float_digits, statement_timeout, idle_in_transaction_session_timeout"
)
SERVER_POOL = 2  # server connections per (database, user): fewer than concurrent requests
NESTED = """query Nested { customers(first: 5) { totalCount nodes { name
  contacts(first: 3) { nodes { name title } }
  opportunities(first: 3) { nodes { name stage } }
  tickets(first: 3) { nodes { title status } } } } }"""
CREATE_DEPARTMENT = """mutation($p: ID!) {
  createDepartment(input: {name: "Ops via PgBouncer", parentId: $p}) { id name } }"""


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    return found


def pgbouncer_config(directory: Path, port: int, upstream: str) -> Path:
    parts = urlsplit(upstream)
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
* = host={parts.hostname} port={parts.port or 5432} user={parts.username or "postgres"}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {SERVER_POOL}
max_client_conn = 200
ignore_startup_parameters = {IGNORED_STARTUP_PARAMETERS}
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""
    )
    return config


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError("pgbouncer did not open its port")


@pytest.fixture(scope="module")
def pgbouncer_url(ops_database_url: str, ops_env: dict[str, str]) -> Iterator[str]:
    binary = pgbouncer_binary()
    # not under pytest's tmp dir: that is private to us, and pgbouncer may run as postgres
    with tempfile.TemporaryDirectory(prefix="dossier-pgbouncer-") as name:
        yield from _run_pgbouncer(binary, Path(name), ops_database_url)


def _run_pgbouncer(binary: str, directory: Path, ops_database_url: str) -> Iterator[str]:
    port = free_port()
    config = pgbouncer_config(directory, port, ops_database_url)
    command = [binary, str(config)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root; drop to the postgres account
        directory.chmod(0o777)
        config.chmod(0o644)
        command = [binary, "-u", "postgres", str(config)]
    log = directory / "stdout.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603  # a fixed binary and our config
            command, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log)
        database = urlsplit(ops_database_url).path
        yield f"postgresql://postgres@127.0.0.1:{port}{database}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
async def bouncer_app(pgbouncer_url: str, ops_env: dict[str, str]) -> AsyncIterator[Starlette]:
    settings = Settings.from_env(
        {**ops_env, "DATABASE_URL": pgbouncer_url, "DOSSIER_DB_PREPARED_STATEMENT_CACHE": "0"}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def bouncer_client(bouncer_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bouncer_app, client=("127.0.0.1", 50021))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_nested_query_and_mutation_run_through_pgbouncer_in_transaction_mode(
    bouncer_client: httpx.AsyncClient,
) -> None:
    alice = await login(bouncer_client, "alice")
    body = await graphql(bouncer_client, alice, NESTED)
    assert "errors" not in body, body
    nodes = body["data"]["customers"]["nodes"]
    assert nodes and any(n["contacts"]["nodes"] for n in nodes)

    admin = await login(bouncer_client, "admin")
    departments = await graphql(bouncer_client, admin, "{ departments { id name } }")
    parent = departments["data"]["departments"][0]["id"]
    created = await graphql(
        bouncer_client,
        admin,
        CREATE_DEPARTMENT,
        {"p": parent},
    )
    assert "errors" not in created, created
    assert created["data"]["createDepartment"]["name"] == "Ops via PgBouncer"


async def test_concurrent_requests_share_few_server_connections(
    bouncer_client: httpx.AsyncClient,
) -> None:
    tokens = [await login(bouncer_client, name) for name in ("alice", "bob", "carol", "dave")]
    bodies = await asyncio.gather(
        *(graphql(bouncer_client, tokens[i % len(tokens)], NESTED) for i in range(24))
    )
    assert all("data" in b and b["data"]["customers"] is not None for b in bodies), bodies
    for body in bodies:
        codes = {e["extensions"]["code"] for e in body.get("errors", [])}
        assert codes <= {"FORBIDDEN"}, body
