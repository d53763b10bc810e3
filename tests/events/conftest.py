"""Events-out fixtures: a demo database of their own, an app without an in-process delivery
worker (each test runs the worker it means to), and a local webhook receiver.

The environment the settings are built from is kept (`events_env`), so `dossier deliver`
subprocesses read the same database with the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import create_app
from api.seed import DemoSummary, seed_demo
from api.settings import Settings
from api.state import AppState
from db.crypto import new_key
from events.delivery import DeliveryWorker
from tests.conftest import fresh_database, migrated_engine
from tests.graphql.conftest import GraphQLClient

_TOKENS: dict[str, str] = {}


@pytest.fixture(scope="package")
def events_env(data_dir: Path) -> Iterator[dict[str, str]]:
    with fresh_database("dossier_events") as url:
        yield {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": url,
            "DOSSIER_DATA_DIR": str(data_dir / "events"),
            "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
            "DOSSIER_BLIND_INDEX_KEY": new_key(),
            "DOSSIER_JWT_SECRET": new_key(),
            "DOSSIER_INSIGHT_REFRESH_SECONDS": "0",
            "DOSSIER_WEBHOOK_DELIVER": "0",  # tests run the workers they mean to
            "DOSSIER_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on 127.0.0.1
            "DOSSIER_WEBHOOK_RETRY_SECONDS": "0",
            "DOSSIER_WEBHOOK_MAX_ATTEMPTS": "3",
            "DOSSIER_WEBHOOK_POLL_SECONDS": "0.2",
        }


@pytest.fixture(scope="package")
def events_settings(events_env: dict[str, str]) -> Settings:
    return Settings.from_env(events_env)


@pytest.fixture(scope="package")
async def events_engine(events_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(events_settings) as engine:
        yield engine


@pytest.fixture(scope="package")
async def events_demo(events_engine: AsyncEngine, events_settings: Settings) -> DemoSummary:
    return await seed_demo(events_engine, events_settings.field_cipher, customers=40)


@pytest.fixture(scope="package")
async def events_app(
    events_settings: Settings, events_demo: DemoSummary
) -> AsyncIterator[Starlette]:
    application = create_app(events_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def gql(events_app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=events_app, client=("127.0.0.1", 50020))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, _TOKENS)


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.dossier
    return state


def worker_for(app: Starlette, **overrides: Any) -> DeliveryWorker:
    """A delivery worker on the app's own schema, policies and sessions."""
    state = state_of(app)
    settings = state.settings.webhooks
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    return DeliveryWorker(
        sessions=state.sessions,
        settings=settings,
        cipher=state.settings.field_cipher,
        schema=state.extras["schema"],
        store=state.extras["policy_store"],
    )


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until the server accepts them
    return sock


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1: it keeps every request, answers `status`."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0  # seconds each answer waits, unless `release` is set first
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def ids(self) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.received]

    def of_event(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["json"]["type"] == event]


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    import orjson

    receiver = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        receiver.received.append(
            {"headers": dict(request.headers), "body": body, "json": orjson.loads(body)}
        )
        if receiver.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.release.wait(), receiver.delay)
        return Response("ok", status_code=receiver.status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running
