"""Operations tests: a demo-seeded database, the app over ASGI, and real server processes.

The server processes are what a deployment runs: `uvicorn --factory api.app:create_app` with
the `DOSSIER_*` variables in the environment, on loopback ports, against one database — the
same as two hosts behind a load balancer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.seed.demo import seed_demo
from api.settings import Settings
from db.crypto import new_key
from db.engine import create_engine
from db.migrate import upgrade_to_head
from tests.conftest import fresh_database

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "dossier-demo"
OPS_CUSTOMERS = 30
START_TIMEOUT_SECONDS = 60.0


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The variables a server process needs; every process of one deployment shares them."""
    return {
        "DOSSIER_ENV": "test",
        "DATABASE_URL": database_url,
        "DOSSIER_DATA_DIR": str(data_dir),
        "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
        "DOSSIER_BLIND_INDEX_KEY": new_key(),
        "DOSSIER_JWT_SECRET": new_key(),
        "DOSSIER_LOG_LEVEL": "WARNING",
        "DOSSIER_INPROCESS_WORKER": "0",
        **extra,
    }


async def migrate_and_seed(env: Mapping[str, str], customers: int = OPS_CUSTOMERS) -> None:
    settings = Settings.from_env(env)
    engine = create_engine(env["DATABASE_URL"])
    try:
        await upgrade_to_head(engine)
        await seed_demo(engine, settings.field_cipher, customers=customers)
    finally:
        await engine.dispose()


@pytest.fixture(scope="package")
def ops_database_url() -> Iterator[str]:
    with fresh_database("dossier_ops") as url:
        yield url


@pytest.fixture(scope="package")
async def ops_env(
    ops_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    # a low username burst so that the metrics test can reach the throttle in a few tries
    env = server_env(
        ops_database_url,
        tmp_path_factory.mktemp("ops-data"),
        DOSSIER_LOGIN_USERNAME_BURST="2",
    )
    await migrate_and_seed(env)
    return env


@pytest.fixture(scope="package")
async def ops_app(ops_env: dict[str, str]) -> AsyncIterator[Starlette]:
    # no webhook worker polling beside the pool gauges' counts (it checks out a connection)
    application = create_app(Settings.from_env({**ops_env, "DOSSIER_WEBHOOK_DELIVER": "0"}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def ops_client(ops_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=ops_app, client=("127.0.0.1", 50011))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def login(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def graphql(
    http: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name is not None:
        payload["operationName"] = operation_name
    response = await http.post(
        "/graphql", json=payload, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_until_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server not ready in {START_TIMEOUT_SECONDS} s:\n{server.output()}")


@contextlib.contextmanager
def running_server(
    command: list[str], env: Mapping[str, str], port: int, log: Path
) -> Iterator[ServerProcess]:
    """Start a server process, wait for /readyz, and stop it (SIGTERM, then SIGKILL)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
            command,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers go with it
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def uvicorn_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


# -- faults: a database of their own, whose connections tests terminate ------------------------


@pytest.fixture(scope="package")
def fault_database_url() -> Iterator[str]:
    with fresh_database("dossier_faults") as url:
        yield url


@pytest.fixture(scope="package")
async def fault_env(
    fault_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A fresh demo database that only fault tests use: terminating its connections touches
    no other test's pool."""
    env = server_env(
        fault_database_url,
        tmp_path_factory.mktemp("fault-data"),
        # no background work on the pool: the request after a termination meets a dead
        # connection itself, instead of a background task finding it first
        DOSSIER_AUDIT_INDEX_SECONDS="0",
        DOSSIER_INSIGHT_REFRESH_SECONDS="0",
    )
    await migrate_and_seed(env, customers=10)
    return env


async def terminate_connections(database_url: str, *, pools_only: bool = False) -> int:
    """`pg_terminate_backend` every other connection to the database: what a failover or an
    administrator does to every process. `pools_only`: only the pools' connections
    (`application_name = dossier`), not the policy listeners', which on losing theirs reload
    the policies through the pool and so clear its dead connections before a request can
    meet one."""
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        terminated: int = await connection.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND (NOT $1 OR application_name = 'dossier')) AS t",
            pools_only,
        )
    finally:
        await connection.close()
    return terminated
