"""A demo-seeded database of its own for the console (its tests change rules), served two ways:
in-process for httpx, and by a uvicorn process on a free port for the browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from tests.conftest import fresh_database
from tests.ops.conftest import (
    PASSWORD,
    ServerProcess,
    free_port,
    migrate_and_seed,
    running_server,
    server_env,
    uvicorn_command,
)

CONSOLE_CUSTOMERS = 30


@pytest.fixture(scope="package")
def console_database_url() -> Iterator[str]:
    with fresh_database("dossier_console") as url:
        yield url


@pytest.fixture(scope="package")
async def console_env(
    console_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    env = server_env(console_database_url, tmp_path_factory.mktemp("console-data"))
    await migrate_and_seed(env, customers=CONSOLE_CUSTOMERS)
    return env


@pytest.fixture(scope="package")
async def console_app(console_env: dict[str, str]) -> AsyncIterator[Starlette]:
    application = create_app(Settings.from_env(console_env))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def browser_client(console_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client over https (the session cookie is Secure outside dev)."""
    transport = httpx.ASGITransport(app=console_app, client=("127.0.0.1", 50021))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


@pytest.fixture(scope="package")
def console_server(
    console_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    port = free_port()
    log = tmp_path_factory.mktemp("console-server") / "server.log"
    with running_server(uvicorn_command(port), console_env, port, log) as server:
        yield server


ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console-screenshots"


@pytest.fixture(scope="package")
def screenshots() -> Path:
    """Where the browser tests leave a screenshot of every page: `artifacts/` (gitignored),
    which outlives the run for a person (or CI) to look at, unlike pytest's rotated tmp dirs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def api_token(base_url: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post("/auth/token", data={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


async def api_query(
    base_url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body
